#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import {
  ConfigValidationError,
  DEFAULT_TOPIC_PREFIX,
  EXIT,
  FSO_VERSION,
  assertAgentId,
  collect,
  createLogger,
  diffOptionsSchema,
  formatIssues,
  onShutdown,
  parseAgentConfig,
  parseDuration,
  portOption,
  resolveBrokerUrl,
  startHealthServer,
  toError,
} from '@fso/common';
import type { AgentConfig, HealthServer } from '@fso/common';
import { startAgent } from './agent.js';
import { WHO_MODES } from './who/whoSource.js';
import type { WhoMode } from './who/whoSource.js';

interface AgentFlags {
  id: string;
  watch: string[];
  include: string[];
  important: string[];
  exclude: string[];
  nodiff: string[];
  recursive: boolean;
  stateDir?: string;
  config?: string;
  broker?: string;
  topicPrefix: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  resendAfter: string;
  pairWindow: string;
  rescanInterval?: string;
  outboxMax: string;
  metricsPort?: number;
  who: string;
  metricsHost: string;
}

/** `512k`, `256m`, `1g` or plain bytes. */
function parseBytes(text: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text.trim());
  if (!match) throw new TypeError(`invalid size ${JSON.stringify(text)}: use e.g. 512k, 256m, 1g`);
  const factor = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Number(match[1]) * factor;
}

/** The config the flags describe (revision 0), or the `--config` file's. */
async function initialConfig(flags: AgentFlags): Promise<AgentConfig | undefined> {
  if (flags.config) {
    let text: string;
    try {
      text = await readFile(flags.config, 'utf8');
    } catch (err) {
      throw new ConfigValidationError(flags.config, [`cannot read: ${(err as Error).message}`]);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ConfigValidationError(flags.config, [`not JSON: ${(err as Error).message}`]);
    }
    return parseAgentConfig(value, flags.config);
  }
  if (flags.watch.length === 0) return undefined;
  return parseAgentConfig(
    {
      schema: 'fso.config/1',
      revision: 0,
      watch: flags.watch.map((dir) => ({
        path: path.resolve(dir),
        recursive: flags.recursive,
        ...(flags.include.length > 0 ? { include: flags.include } : {}),
        exclude: flags.exclude,
        important: flags.important,
      })),
    },
    'command-line flags',
  );
}

/**
 * Runs `fso-agent`; resolves with the exit code (see {@link EXIT}) once the
 * agent has stopped (0, on SIGINT/SIGTERM) or failed to start (1; 2 for bad
 * flags or a bad config file).
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('fso-agent')
    .description('Watch directories and publish every change to the FSO broker.')
    .version(FSO_VERSION)
    .requiredOption('--id <id>', 'agent id (^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)')
    .option('--watch <dir>', 'directory to watch (repeatable)', collect, [])
    .option('--include <glob>', 'only files matching (repeatable; default **/*)', collect, [])
    .option('--exclude <glob>', 'ignore paths matching (repeatable)', collect, [])
    .option('--important <glob>', 'publish unified diffs of files matching (repeatable)', collect, [])
    .option('--nodiff <glob>', 'never publish the content of files matching, only hashes (repeatable; added to the built-in **/*.key, **/.env, …)', collect, [])
    .option('--no-recursive', 'watch only the top level of each directory')
    .option('--state-dir <dir>', 'agent state (epoch, outbox, baselines, saved config); default ~/.local/state/fso/<id>')
    .option('--config <file>', 'start with this config file (fso.config/1) instead of the flags')
    .option('--broker <url>', 'broker URL (default FSO_BROKER_URL or mqtt://127.0.0.1:1883)')
    .option('--topic-prefix <prefix>', 'MQTT topic prefix', DEFAULT_TOPIC_PREFIX)
    .option('--username <name>', 'MQTT username (or FSO_USERNAME)')
    .option('--password-file <file>', 'file holding the MQTT password or token (or FSO_PASSWORD)')
    .option('--ca <file>', "PEM of the CA that signed the broker's certificate, for mqtts:// and wss:// (or FSO_CA_FILE)")
    .option('--resend-after <duration>', 'resend unacknowledged messages after this long without an ack', '10s')
    .option('--pair-window <duration>', 'how long a new path waits to be renamed over a file (an atomic save), and at most a vanished path for its rename partner', '100ms')
    .option('--rescan-interval <duration>', 'also compare the whole tree with the baseline this often (default: off)')
    .option('--outbox-max <bytes>', 'most bytes of unacknowledged messages kept on disk (suffix k, m, g)', '256m')
    .option('--metrics-port <port>', 'serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free one; default: not served)', portOption)
    .option('--metrics-host <address>', 'address of the metrics port', '127.0.0.1')
    .option('--who <mode>', 'who made each change: auto (fanotify where the host allows it, else Linux audit through a running auditd, else who: null and why), fanotify, audit (each required), off', 'auto')
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    return err instanceof CommanderError && err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const flags = program.opts<AgentFlags>();
  const log = createLogger({ name: 'fso-agent' });
  let config: AgentConfig | undefined;
  let durations: { resendIntervalMs: number; pairWindowMs: number; rescanIntervalMs?: number; outboxMaxBytes: number };
  let nodiff: string[];
  try {
    const parsedNodiff = diffOptionsSchema.safeParse({ nodiff: flags.nodiff });
    if (!parsedNodiff.success) throw new ConfigValidationError('--nodiff', formatIssues(parsedNodiff.error));
    nodiff = parsedNodiff.data.nodiff;
    durations = {
      outboxMaxBytes: parseBytes(flags.outboxMax),
      resendIntervalMs: parseDuration(flags.resendAfter),
      pairWindowMs: parseDuration(flags.pairWindow),
      ...(flags.rescanInterval ? { rescanIntervalMs: parseDuration(flags.rescanInterval) } : {}),
    };
    assertAgentId(flags.id);
    if (!(WHO_MODES as readonly string[]).includes(flags.who)) throw new ConfigValidationError('--who', [`"${flags.who}" is not a mode: use ${WHO_MODES.join(', ')}`]);
    config = await initialConfig(flags);
  } catch (err) {
    log.error({ err: (err as Error).message }, 'cannot start');
    process.stderr.write(`fso-agent: ${(err as Error).message}\n`);
    return EXIT.usage;
  }
  const stateDir = flags.stateDir ?? path.join(os.homedir(), '.local', 'state', 'fso', flags.id);
  let agent;
  try {
    agent = await startAgent({
      agentId: flags.id, brokerUrl: resolveBrokerUrl(flags.broker), stateDir, topicPrefix: flags.topicPrefix,
      initialConfig: config, logger: log, username: flags.username, passwordFile: flags.passwordFile, caFile: flags.ca, nodiff, ...durations,
      who: flags.who as WhoMode,
    });
  } catch (err) {
    log.error({ err }, 'cannot start');
    process.stderr.write(`fso-agent: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
  log.info({ stateDir, epoch: agent.epoch }, 'agent started');
  const running = agent;
  let health: HealthServer | undefined;
  if (flags.metricsPort !== undefined) {
    try {
      health = await startHealthServer({ host: flags.metricsHost, port: flags.metricsPort, registry: running.metrics, health: () => running.health(), logger: log });
      log.info({ url: health.url }, `metrics on ${health.url}/metrics`);
    } catch (err) {
      process.stderr.write(`fso-agent: cannot serve metrics on ${flags.metricsHost}:${flags.metricsPort}: ${toError(err).message}\n`);
      await running.close();
      return EXIT.failed;
    }
  }
  return new Promise<number>((resolve) => {
    onShutdown(async () => {
      // Served until the agent is closed: /readyz says "stopping" meanwhile.
      await running.close();
      await health?.close();
      resolve(EXIT.ok);
    }, log);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(EXIT.failed),
  );
}
