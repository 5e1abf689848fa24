#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_TOPIC_PREFIX, FSO_VERSION, createLogger, createTopics, onShutdown, toError } from '@fso/common';
import { DEFAULT_BROKER_HOST, DEFAULT_BROKER_PORT, startBroker } from './broker.js';
import { BrokerListenError, BrokerStorageError } from './errors.js';

/** Exit codes of `fso-broker`. */
const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

interface CliOptions {
  host: string;
  port: number;
  wsPort?: number;
  dataDir?: string;
  topicPrefix: string;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new InvalidArgumentError('use an integer from 0 to 65535 (0 picks a free port)');
  }
  return port;
}

function createProgram(): Command {
  return new Command('fso-broker')
    .description('The FSO MQTT broker (Aedes): MQTT over TCP and, with --ws-port, over WebSocket.')
    .version(FSO_VERSION)
    .addOption(new Option('--host <address>', 'address to listen on').default(DEFAULT_BROKER_HOST))
    .addOption(new Option('--port <port>', 'MQTT over TCP port (0: a free one)').default(DEFAULT_BROKER_PORT).argParser(parsePort))
    .addOption(new Option('--ws-port <port>', 'also serve MQTT over WebSocket on this port').argParser(parsePort))
    .addOption(
      new Option('--data-dir <dir>', 'keep retained messages and persistent sessions in this dir (default: in memory)'),
    )
    .addOption(
      new Option('--topic-prefix <prefix>', 'topic prefix the FSO clients use (shown at start; the broker carries any topic)').default(
        DEFAULT_TOPIC_PREFIX,
      ),
    )
    .exitOverride()
    .showHelpAfterError('(run fso-broker --help for the options)');
}

/**
 * Runs `fso-broker` with `argv` (the arguments after the program name).
 * Resolves once the broker listens (0; SIGINT/SIGTERM then close it and exit)
 * or could not start: 1 when a port is taken or the data dir is unusable,
 * 2 on bad arguments.
 *
 * @example
 * process.exitCode = await main(['--port', '1883', '--ws-port', '9001', '--data-dir', '/var/lib/fso-broker']);
 */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw err;
  }
  const options = program.opts<CliOptions>();
  let topics;
  try {
    topics = createTopics(options.topicPrefix);
  } catch (err) {
    process.stderr.write(`fso-broker: ${toError(err).message}\n`);
    return EXIT.usage;
  }

  const log = createLogger({ name: 'fso-broker' });
  let broker;
  try {
    broker = await startBroker({
      host: options.host,
      port: options.port,
      wsPort: options.wsPort,
      dataDir: options.dataDir === undefined ? undefined : path.resolve(options.dataDir),
      logger: log,
    });
  } catch (err) {
    if (err instanceof BrokerListenError || err instanceof BrokerStorageError) {
      process.stderr.write(`fso-broker: ${err.message}\n`);
      return EXIT.failed;
    }
    log.fatal({ err }, 'broker failed to start');
    return EXIT.failed;
  }
  onShutdown(() => broker.close(), log);
  log.info(
    { topicPrefix: topics.prefix },
    `FSO topics under ${topics.all()} (try: mosquitto_sub -h ${options.host} -p ${broker.port} -t '${topics.all()}' -v)`,
  );
  return EXIT.ok;
}

/** True when this file is the program node was started with (not imported by a test). */
function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`fso-broker: ${toError(err).message}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
