#!/usr/bin/env node
import { DEFAULT_TOPIC_PREFIX, EXIT, FSO_VERSION, createLogger, onShutdown, portOption, positiveDurationOption, resolveBrokerUrl, runIfMain, startHealthServer } from '@fso/common';
import { Command, CommanderError } from 'commander';
import { DEFAULT_CONSOLE_PORT, startConsole } from './console.js';
import { ConsoleStartError } from './errors.js';

/** Where {@link main} writes, and what stops it; defaults are the process's own. */
export interface CliIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Stops the console when aborted; without it, SIGINT/SIGTERM do. */
  signal?: AbortSignal;
  /** Told the console's URL once it listens (tests, `pnpm start`). */
  onListening?: (url: string) => void;
}

interface Flags {
  auditDir: string;
  indexDir?: string;
  broker?: string;
  wsUrl?: string;
  host: string;
  port: number;
  topicPrefix: string;
  ca?: string;
  insecure?: boolean;
  verifyInterval: number;
  metricsPort?: number;
  metricsHost: string;
}

/** The broker's WebSocket URL when none is given: the broker's host, port 8883 (`fso-broker --ws-port 8883`). */
export function defaultWsUrl(brokerUrl: string): string {
  const broker = new URL(brokerUrl);
  return `${broker.protocol === 'mqtts:' ? 'wss' : 'ws'}://${broker.hostname.includes(':') ? `[${broker.hostname}]` : broker.hostname}:8883`;
}

/**
 * The `fso-console` command line: serves the web console until Ctrl-C.
 * Resolves to the exit code: 0 after a clean stop, 1 when it cannot start, 2 for usage errors.
 *
 * @example
 * process.exitCode = await main(['--audit-dir', './audit', '--broker', 'mqtt://127.0.0.1:1883', '--port', '8080']);
 */
export async function main(argv: readonly string[] = process.argv.slice(2), io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const log = createLogger({ name: 'fso-console', destination: io.stderr });
  const program = new Command('fso-console')
    .description('FSO web console: the fleet, the live stream, search, configs and integrity in a browser, on the broker\'s own logins')
    .version(FSO_VERSION)
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride()
    .showHelpAfterError()
    .requiredOption('--audit-dir <dir>', 'the audit directory of `fso-audit record` (read only)')
    .option('--index-dir <dir>', 'where to keep the index of the trail that makes searches fast (not the audit dir; built and kept current by the console)')
    .option('--broker <url>', 'broker URL that checks logins (default FSO_BROKER_URL, else mqtt://127.0.0.1:1883)')
    .option('--ws-url <url>', "the broker's MQTT-over-WebSocket URL, for the browser (default: the broker's host, port 8883)")
    .option('--host <address>', 'address to listen on (beyond loopback needs a broker with logins, or --insecure)', '127.0.0.1')
    .option('--port <n>', 'HTTP port (0: any free one)', portOption, DEFAULT_CONSOLE_PORT)
    .option('--topic-prefix <prefix>', 'topic prefix', DEFAULT_TOPIC_PREFIX)
    .option('--ca <file>', "PEM of the CA that signed the broker's certificate, for mqtts:// (default FSO_CA_FILE)")
    .option('--insecure', 'allow a non-loopback --host in front of a broker without logins')
    .option('--metrics-port <n>', 'serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free one)', portOption)
    .option('--metrics-host <address>', 'address of the metrics port', '127.0.0.1')
    .option('--verify-interval <duration>', 'how often the trail is verified again when it changed', positiveDurationOption, 30_000)
    .action(async (flags: Flags) => {
      const brokerUrl = resolveBrokerUrl(flags.broker);
      const consoleServer = await startConsole({
        auditDir: flags.auditDir,
        ...(flags.indexDir === undefined ? {} : { indexDir: flags.indexDir }),
        brokerUrl,
        wsUrl: flags.wsUrl ?? defaultWsUrl(brokerUrl),
        host: flags.host,
        port: flags.port,
        topicPrefix: flags.topicPrefix,
        ...(flags.ca === undefined ? {} : { caFile: flags.ca }),
        ...(flags.insecure ? { insecure: true } : {}),
        verifyIntervalMs: flags.verifyInterval,
        logger: log,
      });
      const health = flags.metricsPort === undefined
        ? undefined
        : await startHealthServer({ host: flags.metricsHost, port: flags.metricsPort, registry: consoleServer.metrics, health: () => consoleServer.health(), logger: log }).catch(async (err: unknown) => {
            await consoleServer.close();
            throw new ConsoleStartError(`cannot serve metrics: ${(err as Error).message}`, { cause: err });
          });
      if (health) log.info({ url: health.url }, `metrics on ${health.url}/metrics`);
      stderr.write(`fso-console: open ${consoleServer.url} in a browser\n`);
      io.onListening?.(consoleServer.url);
      await new Promise<void>((resolve) => {
        if (io.signal) io.signal.addEventListener('abort', () => resolve(), { once: true });
        else onShutdown(async () => resolve(), log);
      });
      await consoleServer.close();
      await health?.close();
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof ConsoleStartError) {
      stderr.write(`fso-console: ${err.message}\n`);
      return EXIT.failed;
    }
    throw err;
  }
  return EXIT.ok;
}

runIfMain(import.meta.url, 'fso-console', main);
