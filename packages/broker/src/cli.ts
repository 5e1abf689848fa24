#!/usr/bin/env node
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_TOPIC_PREFIX, EXIT, FSO_VERSION, createLogger, createTopics, onShutdown, portOption, positiveDurationOption, runIfMain, startHealthServer, toError } from '@fso/common';
import type { HealthServer, Logger } from '@fso/common';
import { DEFAULT_BROKER_HOST, DEFAULT_BROKER_PORT, DEFAULT_BROKER_TLS_PORT, startBroker } from './broker.js';
import type { Broker, BrokerOptions } from './broker.js';
import { AuthFileError, BrokerInsecureError, BrokerListenError, BrokerStorageError, KeyFileError, UserCommandError } from './errors.js';
import { DEFAULT_LIMITS } from './limits.js';
import { addSessionCommands } from './sessionCli.js';
import { addUserCommands } from './userCli.js';
import type { UserCliIo } from './userCli.js';

interface CliOptions {
  host: string;
  port?: number;
  wsPort?: number;
  dataDir?: string;
  redis?: string;
  topicPrefix: string;
  auth?: string;
  jwtSecretFile?: string;
  jwtPublicKeyFile?: string;
  jwtIssuer?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  insecure?: boolean;
  maxPacketBytes: number;
  maxConnections: number;
  maxPublishRate: number;
  maxTopicLevels: number;
  maxSubscriptions: number;
  maxInflight: number;
  connectTimeout: number;
  metricsPort?: number;
  metricsHost: string;
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('use a whole number');
  return Number(text);
}

/** `16777216`, `64k`, `16MiB`: bytes, with binary k/M suffixes. */
function parseBytes(text: string): number {
  const match = /^(\d+)\s*(k|kb|kib|m|mb|mib)?$/i.exec(text.trim());
  if (!match) throw new InvalidArgumentError('use a byte count like 16777216, 512k or 16MiB');
  const unit = (match[2] ?? '').toLowerCase();
  return Number(match[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
}

/** `2000` or `2000/s`. */
function parseRate(text: string): number {
  const match = /^(\d+)(\/s)?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError('use messages per second, like 2000 or 2000/s (0: no limit)');
  return Number(match[1]);
}

function createProgram(io: UserCliIo): Command {
  const program = new Command('fso-broker')
    .description(
      'The FSO MQTT broker (Aedes): MQTT over TCP and, with --ws-port, over WebSocket; with --tls-cert, mqtts and wss.\n' +
        'Logins (--auth and/or --jwt-*) get per-role access; without any, only loopback is served unless --insecure.',
    )
    .version(FSO_VERSION)
    .enablePositionalOptions()
    .addOption(new Option('--host <address>', 'address to listen on (beyond loopback needs --auth or --jwt-*)').default(DEFAULT_BROKER_HOST))
    .addOption(
      new Option('--port <port>', `MQTT port (default: ${DEFAULT_BROKER_PORT}, ${DEFAULT_BROKER_TLS_PORT} with TLS; 0: a free one)`).argParser(portOption),
    )
    .addOption(new Option('--ws-port <port>', 'also serve MQTT over WebSocket on this port').argParser(portOption))
    .addOption(new Option('--metrics-port <port>', 'serve /metrics (Prometheus), /healthz and /readyz on this port').argParser(portOption))
    .addOption(new Option('--metrics-host <address>', 'address of the metrics port').default('127.0.0.1'))
    .addOption(new Option('--data-dir <dir>', 'keep retained messages and persistent sessions in this dir (default: in memory)'))
    .addOption(new Option('--redis <url>', 'run as a node of a cluster: message bus, retained messages and sessions in this Redis (redis://host:6379); not with --data-dir').conflicts('dataDir'))
    .addOption(new Option('--topic-prefix <prefix>', 'topic prefix the access rules apply to').default(DEFAULT_TOPIC_PREFIX))
    .addOption(new Option('--auth <file>', 'users file (fso-broker user add); re-read on SIGHUP'))
    .addOption(new Option('--jwt-secret-file <file>', 'accept HS256 tokens signed with this secret as passwords').conflicts('jwtPublicKeyFile'))
    .addOption(new Option('--jwt-public-key-file <file>', 'accept ES256/EdDSA tokens verified with this PEM public key'))
    .addOption(new Option('--jwt-issuer <iss>', 'the iss every token must carry (required with --jwt-*)'))
    .addOption(new Option('--tls-cert <file>', 'PEM certificate chain: serve mqtts (and wss)'))
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert'))
    .addOption(new Option('--tls-ca <file>', 'PEM CA bundle: require client certificates signed by it (mutual TLS)'))
    .addOption(new Option('--insecure', 'allow a non-loopback --host without authentication'))
    .addOption(new Option('--max-packet-bytes <bytes>', 'largest MQTT packet, refused at its header').default(DEFAULT_LIMITS.maxPacketBytes, '16MiB + 64k').argParser(parseBytes))
    .addOption(new Option('--max-connections <n>', 'open connections, all listeners together').default(DEFAULT_LIMITS.maxConnections).argParser(parseCount))
    .addOption(
      new Option('--max-publish-rate <n>', 'PUBLISH (and SUBSCRIBE, UNSUBSCRIBE) packets per second per client; faster clients are slowed (0: off)')
        .default(DEFAULT_LIMITS.maxPublishRate)
        .argParser(parseRate),
    )
    .addOption(new Option('--max-topic-levels <n>', 'levels in a topic or filter').default(DEFAULT_LIMITS.maxTopicLevels).argParser(parseCount))
    .addOption(
      new Option('--max-subscriptions <n>', 'subscriptions per client (0x80 beyond); a SUBSCRIBE with more filters closes the connection')
        .default(DEFAULT_LIMITS.maxSubscriptions)
        .argParser(parseCount),
    )
    .addOption(
      new Option('--max-inflight <n>', 'QoS 1/2 messages sent to a persistent session and not yet acknowledged; more wait in its queue (0: 32,768 with --redis, no window without)')
        .default(DEFAULT_LIMITS.maxInflight)
        .argParser(parseCount),
    )
    .addOption(
      new Option('--connect-timeout <seconds>', 'close connections that have not sent CONNECT by then')
        .default(DEFAULT_LIMITS.connectTimeoutMs, String(DEFAULT_LIMITS.connectTimeoutMs / 1000))
        .argParser(positiveDurationOption),
    )
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .showHelpAfterError('(run fso-broker --help for the options)');
  addUserCommands(program, io);
  addSessionCommands(program, io);
  for (const command of program.commands) {
    command.exitOverride().configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) });
    for (const sub of command.commands) sub.exitOverride().configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) });
  }
  return program;
}

/** Broker options from the flags; throws {@link UserCommandError} for combinations that make no sense. */
function brokerOptions(options: CliOptions, log: Logger): BrokerOptions {
  const jwtFile = options.jwtSecretFile ?? options.jwtPublicKeyFile;
  if (jwtFile !== undefined && options.jwtIssuer === undefined) throw new UserCommandError('--jwt-issuer is required with --jwt-secret-file or --jwt-public-key-file');
  if (jwtFile === undefined && options.jwtIssuer !== undefined) throw new UserCommandError('--jwt-issuer needs --jwt-secret-file or --jwt-public-key-file');
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new UserCommandError('--tls-cert and --tls-key go together');
  if (options.tlsCa !== undefined && options.tlsCert === undefined) throw new UserCommandError('--tls-ca needs --tls-cert and --tls-key');
  return {
    host: options.host,
    port: options.port,
    wsPort: options.wsPort,
    dataDir: options.dataDir === undefined ? undefined : path.resolve(options.dataDir),
    ...(options.redis === undefined ? {} : { redisUrl: options.redis }),
    logger: log,
    topicPrefix: options.topicPrefix,
    insecure: options.insecure,
    auth: {
      authFile: options.auth,
      jwt: jwtFile === undefined ? undefined : { secretFile: options.jwtSecretFile, publicKeyFile: options.jwtPublicKeyFile, issuer: options.jwtIssuer as string },
    },
    tls: options.tlsCert === undefined ? undefined : { certFile: options.tlsCert, keyFile: options.tlsKey as string, caFile: options.tlsCa },
    limits: {
      maxPacketBytes: options.maxPacketBytes,
      maxConnections: options.maxConnections,
      maxPublishRate: options.maxPublishRate,
      maxTopicLevels: options.maxTopicLevels,
      maxSubscriptions: options.maxSubscriptions,
      maxInflight: options.maxInflight,
      connectTimeoutMs: options.connectTimeout,
    },
  };
}

/** Starts the broker from the flags; resolves an exit code once it listens (0) or could not start. */
async function serve(options: CliOptions, io: UserCliIo): Promise<number> {
  let topics;
  try {
    topics = createTopics(options.topicPrefix);
  } catch (err) {
    io.stderr.write(`fso-broker: ${toError(err).message}\n`);
    return EXIT.usage;
  }
  const log = createLogger({ name: 'fso-broker' });
  let broker: Broker;
  try {
    broker = await startBroker(brokerOptions(options, log));
  } catch (err) {
    if (err instanceof UserCommandError || err instanceof BrokerInsecureError || err instanceof RangeError) {
      io.stderr.write(`fso-broker: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof BrokerListenError || err instanceof BrokerStorageError || err instanceof AuthFileError || err instanceof KeyFileError) {
      io.stderr.write(`fso-broker: ${err.message}\n`);
      return EXIT.failed;
    }
    log.fatal({ err }, 'broker failed to start');
    return EXIT.failed;
  }
  let health: HealthServer | undefined;
  if (options.metricsPort !== undefined) {
    try {
      health = await startHealthServer({ host: options.metricsHost, port: options.metricsPort, registry: broker.metrics, health: () => broker.health(), logger: log });
      log.info({ url: health.url }, `metrics on ${health.url}/metrics`);
    } catch (err) {
      io.stderr.write(`fso-broker: cannot serve metrics on ${options.metricsHost}:${options.metricsPort}: ${toError(err).message}\n`);
      await broker.close();
      return EXIT.failed;
    }
  }
  onShutdown(async () => {
    await broker.close();
    await health?.close();
  }, log);
  process.on('SIGHUP', () => {
    broker.reload().catch((err: unknown) => log.error({ reason: toError(err).message }, 'reload failed: keeping the previous auth and TLS files'));
  });
  const host = options.host;
  log.info(
    { topicPrefix: topics.prefix },
    `FSO topics under ${topics.all()} (try: mosquitto_sub -h ${host} -p ${broker.port} -t '${topics.all()}' -v)`,
  );
  return EXIT.ok;
}

/**
 * Runs `fso-broker` with `argv` (the arguments after the program name).
 * Without a subcommand it starts the broker and resolves once it listens (0;
 * SIGINT/SIGTERM then close it, SIGHUP reloads the auth and TLS files) or
 * could not start: 1 when a port is taken or a data dir, auth, key or
 * certificate file is unusable, 2 on bad arguments (including a non-loopback
 * --host without authentication). `user add|remove|list` edit an auth file;
 * `session list|release` show and release the client ids bound to logins in
 * a data dir (1: the data dir is unusable or a broker runs with it, 2: no such binding).
 *
 * @example
 * process.exitCode = await main(['--host', '0.0.0.0', '--auth', '/etc/fso/auth.json', '--tls-cert', 'c.pem', '--tls-key', 'k.pem']);
 */
export async function main(argv: string[], io: Partial<UserCliIo> = {}): Promise<number> {
  const streams: UserCliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, ...io };
  const program = createProgram(streams);
  let code: number = EXIT.ok;
  program.action(async (options: CliOptions) => {
    code = await serve(options, streams);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof UserCommandError) {
      streams.stderr.write(`fso-broker: ${err.message}\n`);
      return EXIT.usage;
    }
    if (err instanceof AuthFileError || err instanceof BrokerStorageError) {
      streams.stderr.write(`fso-broker: ${err.message}\n`);
      return EXIT.failed;
    }
    throw err;
  }
}

/** True when this file is the program node was started with (not imported by a test). */
runIfMain(import.meta.url, 'fso-broker', main);
