#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  BrokerConnectError,
  ConfigValidationError,
  DEFAULT_TOPIC_PREFIX,
  EXIT,
  FSO_ROLES,
  FSO_VERSION,
  InvalidAgentIdError,
  createLogger,
  createTopics,
  onShutdown,
  positiveDurationOption,
} from '@fso/common';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { formatAgentsTable, formatConfigSource, formatPushResult, pushExitCode } from './cliOutput.js';
import { readConfigFile } from './configFile.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from './connection.js';
import type { ConnectionOptions } from './connection.js';
import type { FsoRole } from '@fso/common';
import { BrokerTimeoutError, ConfigFileError, OperationAbortedError, TokenError } from './errors.js';
import { getConfig } from './getConfig.js';
import { listAgents } from './listAgents.js';
import { DEFAULT_PUSH_TIMEOUT_MS, pushConfig } from './pushConfig.js';
import { mintToken } from './token.js';

/** Where {@link main} writes, and what stops it; defaults are the process's own. */
export interface CliIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  signal?: AbortSignal;
}

interface GlobalOptions {
  broker?: string;
  topicPrefix?: string;
  connectTimeout: number;
  username?: string;
  passwordFile?: string;
  ca?: string;
}

const prefixOption = (value: string): string => {
  try {
    return createTopics(value).prefix;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
};

/**
 * Runs `fso-controller` with the user's arguments (without `node` and the
 * script) and resolves the exit code: 0 applied, 1 rejected, 2 bad usage or
 * config file, 3 time-out, 4 broker unreachable (see {@link EXIT}).
 *
 * @example
 * process.exitCode = await main(['push', '--agent', 'web-01', '--file', 'cfg.json']);
 */
export async function main(argv: readonly string[], io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const logger = createLogger({ name: 'fso-controller', level: process.env.FSO_LOG_LEVEL ?? 'warn', destination: stderr });
  let code: number = EXIT.ok;

  const program = new Command('fso-controller')
    .description('Push live config to FSO agents, show the config in force, list agents.')
    .version(FSO_VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .option('--broker <url>', 'MQTT broker URL (default: $FSO_BROKER_URL or mqtt://127.0.0.1:1883)')
    .option('--topic-prefix <prefix>', 'topic prefix', prefixOption, DEFAULT_TOPIC_PREFIX)
    .option('--username <name>', 'MQTT username (default $FSO_USERNAME)')
    .option('--password-file <file>', 'file holding the MQTT password or token (default $FSO_PASSWORD)')
    .option('--ca <file>', "PEM of the CA that signed the broker's certificate, for mqtts:// and wss:// (default $FSO_CA_FILE)")
    .addOption(
      new Option('--connect-timeout <seconds>', 'give up connecting to the broker after this long')
        .argParser(positiveDurationOption)
        .default(DEFAULT_CONNECT_TIMEOUT_MS, String(DEFAULT_CONNECT_TIMEOUT_MS / 1000)),
    );
  const connection = (cmd: Command): ConnectionOptions => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    return {
      brokerUrl: g.broker, topicPrefix: g.topicPrefix, connectTimeoutMs: g.connectTimeout, logger, signal: io.signal,
      username: g.username, passwordFile: g.passwordFile, caFile: g.ca,
    };
  };

  program
    .command('push')
    .description('validate a config file, publish it retained, wait for the agents to apply it')
    .addOption(new Option('--agent <id>', "the agent's own config topic").conflicts('default'))
    .addOption(new Option('--default', 'the default config topic (agents without their own config)').conflicts('agent'))
    .requiredOption('--file <config.json>', 'the agent config (fso.config/1) to push')
    .addOption(
      new Option('--timeout <seconds>', 'how long to wait for the agents to answer')
        .argParser(positiveDurationOption)
        .default(DEFAULT_PUSH_TIMEOUT_MS, String(DEFAULT_PUSH_TIMEOUT_MS / 1000)),
    )
    .action(async (opts: { agent?: string; default?: boolean; file: string; timeout: number }, cmd: Command) => {
      if (!opts.agent && !opts.default) cmd.error('error: give --agent <id> or --default', { exitCode: EXIT.usage });
      const result = await pushConfig({
        ...connection(cmd),
        target: opts.agent ? { agentId: opts.agent } : { default: true },
        config: await readConfigFile(opts.file),
        source: opts.file,
        timeoutMs: opts.timeout,
      });
      stdout.write(formatPushResult(result, opts.timeout));
      code = pushExitCode(result);
    });

  program
    .command('get')
    .description('print the config in force for an agent (JSON on stdout, its source on stderr)')
    .requiredOption('--agent <id>', 'agent id')
    .action(async (opts: { agent: string }, cmd: Command) => {
      const found = await getConfig({ ...connection(cmd), agentId: opts.agent });
      stderr.write(formatConfigSource(found));
      if (found.config === null) {
        stderr.write(`no retained config holds what agent ${found.agentId} runs\n`);
        code = EXIT.failed;
        return;
      }
      stdout.write(`${JSON.stringify(found.config, null, 2)}\n`);
    });

  program
    .command('agents')
    .description('list agents: online/offline, config revision and state, last seen')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const agents = await listAgents(connection(cmd));
      stdout.write(opts.json ? `${JSON.stringify(agents, null, 2)}\n` : formatAgentsTable(agents));
    });

  program
    .command('token')
    .description('mint a login token (JWT) for fso-broker --jwt-*; prints it on stdout (use it as the MQTT password)')
    .addOption(new Option('--role <role>', 'what the token may do').choices(FSO_ROLES).makeOptionMandatory())
    .option('--agent-id <id>', 'for role agent: the agent it speaks for')
    .addOption(new Option('--ttl <duration>', 'lifetime (e.g. 24h, 7d, 30m)').argParser(positiveDurationOption).default(86_400_000, '24h'))
    .addOption(new Option('--secret-file <file>', 'HS256 secret (the broker\'s --jwt-secret-file)').conflicts('privateKeyFile'))
    .option('--private-key-file <file>', 'PEM P-256 (ES256) or Ed25519 (EdDSA) private key; the broker holds the public half')
    .requiredOption('--issuer <iss>', "the broker's --jwt-issuer")
    .option('--subject <sub>', 'sub claim (default: the agent id, else the role)')
    .action(async (opts: { role: FsoRole; agentId?: string; ttl: number; secretFile?: string; privateKeyFile?: string; issuer: string; subject?: string }) => {
      try {
        const token = await mintToken({ ...opts, ttlMs: opts.ttl });
        stdout.write(`${token}\n`);
      } catch (err) {
        if (!(err instanceof TokenError)) throw err;
        stderr.write(`error: ${err.message}\n`);
        code = EXIT.usage;
      }
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    return reportError(err, stderr);
  }
}

/** Prints why the command failed and picks its exit code. */
function reportError(err: unknown, stderr: NodeJS.WritableStream): number {
  // commander has already printed its own message (or the help).
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (err instanceof ConfigValidationError) {
    stderr.write(`invalid config in ${err.source}:\n${err.issues.map((i) => `  ${i}\n`).join('')}nothing was published\n`);
    return EXIT.usage;
  }
  const message = err instanceof Error ? err.message : String(err);
  stderr.write(`error: ${message}\n`);
  if (err instanceof ConfigFileError || err instanceof InvalidAgentIdError) return EXIT.usage;
  if (err instanceof BrokerConnectError || err instanceof BrokerTimeoutError) return EXIT.unreachable;
  if (err instanceof OperationAbortedError) return EXIT.interrupted;
  // AgentNotFoundError and anything unexpected.
  return EXIT.failed;
}

function isBin(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isBin()) {
  const abort = new AbortController();
  const running = main(process.argv.slice(2), { signal: abort.signal });
  onShutdown(async () => {
    abort.abort();
    process.exitCode = await running;
  }, createLogger({ name: 'fso-controller' }));
  process.exitCode = await running;
}
