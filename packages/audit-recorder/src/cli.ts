#!/usr/bin/env node
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { DEFAULT_TOPIC_PREFIX, EXIT, FSO_VERSION, createLogger, errorCode, onShutdown, resolveBrokerUrl, portOption, runIfMain, startHealthServer } from '@fso/common';
import type { Logger } from '@fso/common';
import { Command, CommanderError, Option } from 'commander';
import { TailFilterError, followAuditRecords, formatRecord, openTrailIndex, toEcs, parseSince, pathHistory, queryAuditRecords, readAuditRecords, treeFromTrail, verifyAuditDir } from '@fso/audit-trail';
import type { AuditQuery, AuditQueryResult, AuditRecordFilter, AuditRecordLine, TrailEntry, TreeOptions } from '@fso/audit-trail';
import { startRecorder } from './recorder.js';

/** Where {@link main} reads its signal from and writes to; defaults to the process's. */
export interface CliIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Stops `record` and `tail -f` when aborted; without it, SIGINT/SIGTERM do. */
  signal?: AbortSignal;
}

interface TailFlags {
  dir: string;
  follow?: boolean;
  agent?: string;
  type?: string;
  path?: string;
  since?: string;
  json?: boolean;
  format?: TailFormat;
}

/** What `tail` prints per record: a readable line, the raw JSONL line, or an ECS document (one JSON object a line). */
const TAIL_FORMATS = ['text', 'json', 'ecs'] as const;
type TailFormat = (typeof TAIL_FORMATS)[number];

/**
 * The `fso-audit` command line: `record`, `tail` and `verify`. Resolves to
 * the exit code: 0 on success, 1 when the recorder fails or verify finds
 * tampering, 2 for usage errors.
 *
 * @example
 * process.exitCode = await main(['verify', '--dir', './audit']);
 */
export async function main(argv: readonly string[] = process.argv.slice(2), io: CliIo = {}): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const log = createLogger({ name: 'fso-audit', destination: io.stderr });
  let code: number = EXIT.ok;
  const program = new Command('fso-audit')
    .description('FSO audit trail: record every message to JSONL, follow it, verify its hash chains')
    .version(FSO_VERSION)
    .configureOutput({ writeOut: (s) => stdout.write(s), writeErr: (s) => stderr.write(s) })
    .exitOverride()
    .showHelpAfterError();

  program
    .command('record')
    .description('subscribe to everything under the prefix and append it to DIR/*.jsonl')
    .requiredOption('--dir <dir>', 'audit directory (created 0700)')
    .option('--broker <url>', 'broker URL (default FSO_BROKER_URL, else mqtt://127.0.0.1:1883)')
    .option('--topic-prefix <prefix>', 'topic prefix', DEFAULT_TOPIC_PREFIX)
    .option('--client-id <id>', 'MQTT client id, stable across restarts (default fso-audit-<hostname>)')
    .option('--username <name>', 'broker user name (default FSO_USERNAME)')
    .option('--password-file <file>', 'file holding the broker password (default FSO_PASSWORD)')
    .option('--ca <file>', "PEM of the CA that signed the broker's certificate, for mqtts:// and wss:// (default FSO_CA_FILE)")
    .option('--metrics-port <n>', 'serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free one)', portOption)
    .option('--metrics-host <address>', 'address of the metrics port', '127.0.0.1')
    .action(async (flags: RecordFlags) => {
      code = await record(flags, io, log);
    });

  program
    .command('tail')
    .description('print audit records (events and diffs), oldest first')
    .requiredOption('--dir <dir>', 'audit directory')
    .option('-f, --follow', 'keep printing new records, across day files, until Ctrl-C')
    .option('--agent <id>', 'only this agent')
    .option('--type <type>', 'create, modify, delete, rename, or a record kind: event, diff, status, config, gap')
    .option('--path <glob>', 'only records whose path or oldPath matches this glob')
    .option('--since <time>', 'only records received since an ISO time or a duration ago (10m, 24h)')
    .addOption(new Option('--format <format>', 'text (one readable line), json (the raw JSONL lines) or ecs (Elastic Common Schema, one JSON document a line: with -f, a forwarder for Filebeat, Vector, Logstash)').choices(TAIL_FORMATS))
    .addOption(new Option('--json', 'print the raw JSONL lines (same as --format json)').conflicts('format'))
    .action(async (flags: TailFlags) => {
      code = await tail(flags, io, log);
    });

  program
    .command('query')
    .description('search the trail (events and diffs, oldest first): filters, a page and the count; or one path\'s history; or an agent\'s tree as the trail replays it')
    .requiredOption('--dir <dir>', 'audit directory')
    .option('--agent <id>', 'only this agent (required with --tree)')
    .option('--type <type>', 'create, modify, delete, rename, or a record kind: event, diff, status, config, gap')
    .option('--path <glob>', 'only records whose path or oldPath matches this glob')
    .option('--text <text>', 'only records whose path or oldPath contains this text')
    .option('--since <time>', 'received since an ISO time or a duration ago (10m, 24h)')
    .option('--until <time>', 'received before an ISO time or a duration ago')
    .option('--limit <n>', 'at most this many records (default 100)')
    .option('--offset <n>', 'skip this many matching records first (default 0)')
    .option('--count', 'print only how many records match')
    .option('--history <path>', "every event and diff of this path, through its renames, oldest first")
    .option('--tree', 'the paths the agent\'s trail says exist (replayed from its events), with kind, size and sha256')
    .option('--under <dir>', 'with --tree: only this directory and what is below it')
    .option('--json', 'print the raw JSONL lines (with --tree: one JSON object per path)')
    .option('--index <dir>', 'search through an index kept in this directory (built, or caught up with the trail, first); without it the trail is scanned')
    .action(async (flags: QueryFlags) => {
      code = await query(flags, io);
    });

  program
    .command('verify')
    .description("check every audit file's hash chain; exit 1 naming the first broken line")
    .requiredOption('--dir <dir>', 'audit directory')
    .action(async (flags: { dir: string }) => {
      await assertDir(flags.dir);
      const result = await verifyAuditDir(flags.dir);
      if (result.ok) {
        stdout.write(`audit trail intact: ${result.files} files, ${result.lines} lines\n`);
      } else {
        const f = result.failure;
        stderr.write(`audit trail broken: ${f?.file} line ${f?.line}: ${f?.reason} (${result.lines} lines intact before it)\n`);
        code = EXIT.failed;
      }
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    stderr.write(`fso-audit: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof TailFilterError ? EXIT.usage : EXIT.failed;
  }
}

interface RecordFlags {
  dir: string;
  broker?: string;
  topicPrefix: string;
  clientId?: string;
  username?: string;
  passwordFile?: string;
  ca?: string;
  metricsPort?: number;
  metricsHost: string;
}

async function record(flags: RecordFlags, io: CliIo, log: Logger): Promise<number> {
  const { metricsPort } = flags;
  const recorder = await startRecorder({
    brokerUrl: resolveBrokerUrl(flags.broker),
    dir: flags.dir,
    topicPrefix: flags.topicPrefix,
    clientId: flags.clientId,
    username: flags.username,
    passwordFile: flags.passwordFile,
    caFile: flags.ca,
    logger: log,
  });
  const health = metricsPort === undefined
    ? undefined
    : await startHealthServer({ host: flags.metricsHost, port: metricsPort, registry: recorder.metrics, health: () => recorder.health(), logger: log }).catch(async (err: unknown) => {
        await recorder.close();
        throw err;
      });
  if (health) log.info({ url: health.url }, `metrics on ${health.url}/metrics`);
  const stopped = new Promise<void>((resolve) => {
    if (io.signal) io.signal.addEventListener('abort', () => resolve(), { once: true });
    else onShutdown(() => recorder.close(), log);
  });
  const failure = await Promise.race([recorder.failed, stopped.then(() => undefined)]);
  await recorder.close();
  await health?.close();
  // A failed recorder never lies: it stopped acking, and the exit code says so.
  return failure ? EXIT.failed : EXIT.ok;
}

async function tail(flags: TailFlags, io: CliIo, log: Logger): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  await assertDir(flags.dir);
  const filter: AuditRecordFilter = {
    agent: flags.agent,
    type: flags.type,
    path: flags.path,
    since: flags.since === undefined ? undefined : parseSince(flags.since),
  };
  let signal = io.signal;
  if (flags.follow && !signal) {
    const controller = new AbortController();
    onShutdown(async () => controller.abort(), log);
    signal = controller.signal;
  }
  const format: TailFormat = flags.format ?? (flags.json ? 'json' : 'text');
  const render: (line: AuditRecordLine) => string =
    format === 'json' ? (l) => l.text : format === 'ecs' ? (l) => JSON.stringify(toEcs(l.record)) : (l) => formatRecord(l.record);
  const records = flags.follow ? followAuditRecords(flags.dir, filter, { signal }) : readAuditRecords(flags.dir, filter);
  for await (const line of records) {
    // A forwarder (`-f --format ecs | vector`) replays a whole trail first: wait for
    // the reader downstream instead of buffering the trail in memory.
    if (!stdout.write(`${render(line)}\n`)) {
      await once(stdout, 'drain', { signal }).catch((err: unknown) => {
        if (!signal?.aborted) throw err; // Stopped while the reader stalls: end like a stopped -f.
      });
    }
  }
  return EXIT.ok;
}

interface QueryFlags {
  dir: string;
  agent?: string;
  type?: string;
  path?: string;
  text?: string;
  since?: string;
  until?: string;
  limit?: string;
  offset?: string;
  count?: boolean;
  history?: string;
  tree?: boolean;
  under?: string;
  json?: boolean;
  index?: string;
}

/** The three searches, by the linear scan or through an index. */
interface Searches {
  query(q: AuditQuery): Promise<AuditQueryResult>;
  history(target: string, options: { agent?: string }): Promise<AuditRecordLine[]>;
  tree(options: TreeOptions): Promise<Map<string, TrailEntry>>;
}

/** Runs `use` with the searches `--index` asks for: the index, caught up first, closed after. */
async function withSearches(flags: QueryFlags, use: (searches: Searches) => Promise<number>): Promise<number> {
  if (flags.index === undefined) {
    return use({
      query: (q) => queryAuditRecords(flags.dir, q),
      history: (target, options) => pathHistory(flags.dir, target, options),
      tree: (options) => treeFromTrail(flags.dir, options),
    });
  }
  const index = await openTrailIndex({ auditDir: flags.dir, indexDir: flags.index });
  try {
    await index.catchUp();
    return await use(index);
  } finally {
    await index.close();
  }
}

function wholeNumber(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new TailFilterError(flag, `${JSON.stringify(value)} is not a whole number`);
  return Number(value);
}

async function query(flags: QueryFlags, io: CliIo): Promise<number> {
  await assertDir(flags.dir);
  const limit = wholeNumber('--limit', flags.limit, 100);
  const offset = wholeNumber('--offset', flags.offset, 0);
  const until = flags.until === undefined ? undefined : parseSince(flags.until);
  if (flags.tree && !flags.agent) throw new TailFilterError('--tree', 'give --agent <id>: paths are per host');
  return withSearches(flags, (searches) => search(searches, flags, io, { limit, offset, until }));
}

async function search(searches: Searches, flags: QueryFlags, io: CliIo, page: { limit: number; offset: number; until: Date | undefined }): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const { limit, offset, until } = page;
  if (flags.tree && flags.agent) {
    const tree = await searches.tree({ agent: flags.agent, under: flags.under, until });
    for (const p of [...tree.keys()].sort()) {
      const e = tree.get(p) as TrailEntry;
      stdout.write(flags.json ? `${JSON.stringify({ path: p, ...e })}\n` : `${e.kind.padEnd(9)} ${String(e.size ?? '-').padStart(10)} ${e.sha256 ?? '-'.padEnd(64)} ${p}\n`);
    }
    stderr.write(`${tree.size} paths\n`);
    return EXIT.ok;
  }
  if (flags.history !== undefined) {
    const history = await searches.history(flags.history, { agent: flags.agent });
    for (const { text, record: r } of history.slice(offset, offset + limit)) stdout.write(`${flags.json ? text : formatRecord(r)}\n`);
    stderr.write(`${Math.min(limit, Math.max(0, history.length - offset))} of ${history.length} records\n`);
    return EXIT.ok;
  }
  const filter: AuditQuery = {
    agent: flags.agent, type: flags.type, path: flags.path, text: flags.text,
    since: flags.since === undefined ? undefined : parseSince(flags.since), until, limit: flags.count ? 0 : limit, offset,
  };
  const { total, records } = await searches.query(filter);
  if (flags.count) {
    stdout.write(`${total}\n`);
    return EXIT.ok;
  }
  for (const { text, record: r } of records) stdout.write(`${flags.json ? text : formatRecord(r)}\n`);
  stderr.write(`${records.length} of ${total} records${offset > 0 ? ` (from ${offset + 1})` : ''}\n`);
  return EXIT.ok;
}

async function assertDir(dir: string): Promise<void> {
  const stats = await stat(dir).catch((err: unknown) => {
    throw new Error(errorCode(err) === 'ENOENT' ? `no audit directory at ${dir}` : `cannot read ${dir}: ${String(err)}`);
  });
  if (!stats.isDirectory()) throw new Error(`${dir} is not a directory`);
}

runIfMain(import.meta.url, 'fso-audit', main);
