#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import {
  DEFAULT_TOPIC_PREFIX,
  EXIT,
  FSO_VERSION,
  createLogger,
  onShutdown,
  portOption,
  positiveDurationOption,
  resolveBrokerUrl,
  runIfMain,
  startHealthServer,
} from '@fso/common';
import type { Logger } from '@fso/common';
import { startAlertDaemon } from './alertDaemon.js';
import { RulesFileError } from './errors.js';
import { loadRulesFile } from './rules.js';

/** Where the CLI writes, and how a test stops it. */
export interface CliIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Stops the daemon (tests); without it SIGINT/SIGTERM do, and SIGHUP reloads the rules. */
  signal?: AbortSignal;
  /** Reloads the rules (tests), as SIGHUP does. */
  reload?: EventTarget;
}

interface AlertFlags {
  rules: string;
  check?: boolean;
  broker?: string;
  topicPrefix: string;
  clientId?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  auditDir?: string;
  verifyInterval: number;
  metricsPort?: number;
  metricsHost: string;
}

/**
 * fso-alert's command line. Returns the exit code: 0 on a clean stop (or a
 * valid rules file with `--check`), 2 for an invalid rules file or usage, 1
 * when it cannot start.
 *
 * @example
 * process.exitCode = await main(['--rules', '/etc/fso/rules.yml', '--audit-dir', '/var/lib/fso/audit']);
 */
export async function main(argv: readonly string[] = process.argv.slice(2), io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const log = createLogger({ name: 'fso-alert', destination: io.stderr });
  let code: number = EXIT.ok;
  const program = new Command('fso-alert')
    .description('FSO alerts: run rules on the event stream, publish alerts on fso/alerts/{rule} and send them to webhooks, syslog and email')
    .version(FSO_VERSION)
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride()
    .showHelpAfterError()
    .requiredOption('--rules <file>', 'rules file (YAML or JSON); SIGHUP reloads it, an invalid one is refused and the running rules stay')
    .option('--check', 'validate the rules file (and read its secrets) and exit: 0 valid, 2 invalid')
    .option('--broker <url>', 'broker URL (default FSO_BROKER_URL, else mqtt://127.0.0.1:1883)')
    .option('--topic-prefix <prefix>', 'topic prefix', DEFAULT_TOPIC_PREFIX)
    .option('--client-id <id>', 'MQTT client id, stable across restarts (default fso-alert-<hostname>)')
    .option('--username <name>', 'broker user name, role alerter (default FSO_USERNAME)')
    .option('--password-file <file>', 'file holding the broker password (default FSO_PASSWORD)')
    .option('--ca <file>', "PEM of the CA that signed the broker's certificate, for mqtts:// (default FSO_CA_FILE)")
    .option('--audit-dir <dir>', "the recorder's audit directory (read only): gap records the recorder writes, and verify-failed rules")
    .option('--verify-interval <duration>', 'how often the audit trail is verified (with --audit-dir)', positiveDurationOption, 600_000)
    .option('--metrics-port <n>', 'serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free one)', portOption)
    .option('--metrics-host <address>', 'address of the metrics port', '127.0.0.1')
    .action(async (flags: AlertFlags) => {
      code = flags.check ? await check(flags, stdout) : await run(flags, io, log);
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof RulesFileError) {
      stderr.write(`fso-alert: ${err.message}\n`);
      return EXIT.usage;
    }
    stderr.write(`fso-alert: ${(err as Error).message}\n`);
    return EXIT.failed;
  }
}

async function check(flags: AlertFlags, stdout: NodeJS.WritableStream): Promise<number> {
  const ruleSet = await loadRulesFile(flags.rules);
  const targets = Object.keys(ruleSet.targets);
  stdout.write(`${ruleSet.file}: ${ruleSet.rules.length} rules (${ruleSet.rules.map((r) => r.id).join(', ')}), ${targets.length} targets${targets.length > 0 ? ` (${targets.join(', ')})` : ''}\n`);
  return EXIT.ok;
}

async function run(flags: AlertFlags, io: CliIo, log: Logger): Promise<number> {
  const daemon = await startAlertDaemon({
    rulesFile: flags.rules,
    brokerUrl: resolveBrokerUrl(flags.broker),
    topicPrefix: flags.topicPrefix,
    clientId: flags.clientId,
    username: flags.username,
    passwordFile: flags.passwordFile,
    caFile: flags.ca,
    auditDir: flags.auditDir,
    verifyIntervalMs: flags.verifyInterval,
    log,
  });
  const { metricsPort } = flags;
  const health = metricsPort === undefined
    ? undefined
    : await startHealthServer({ host: flags.metricsHost, port: metricsPort, registry: daemon.metrics, health: () => daemon.health(), logger: log }).catch(async (err: unknown) => {
        await daemon.close();
        throw err;
      });
  if (health) log.info({ url: health.url }, `metrics on ${health.url}/metrics`);
  const reload = (): void => void daemon.reload();
  await new Promise<void>((resolve) => {
    if (io.signal) {
      io.signal.addEventListener('abort', () => resolve(), { once: true });
      io.reload?.addEventListener('reload', reload);
    } else {
      process.on('SIGHUP', reload);
      onShutdown(async () => {
        process.off('SIGHUP', reload);
        await daemon.close();
        await health?.close();
      }, log);
    }
  });
  io.reload?.removeEventListener('reload', reload);
  await daemon.close();
  await health?.close();
  return EXIT.ok;
}

runIfMain(import.meta.url, 'fso-alert', main);
