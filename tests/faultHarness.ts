/**
 * Process helpers for the fault-injection tests (tests/faults.e2e.test.ts):
 * the broker, the recorder and the agent run as real child processes from
 * their built bins (packages/<pkg>/dist/cli.js), so a test can SIGKILL one
 * and restart it on the same state. Also: free ports, a paced file
 * generator, and the audit-file tally that counts lost and duplicated records.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ackSchema, createTopics } from '@fso/common';
import { createCollector, readAuditLines, waitForProgress } from './helpers.js';
import type { AuditLine } from './helpers.js';

const run = promisify(execFile);

/**
 * Where the built bins are: this repo, or FSO_FAULT_ROOT (a built copy of it,
 * so a run measures one fixed commit while others rebuild this tree).
 */
const REPO = process.env.FSO_FAULT_ROOT ?? fileURLToPath(new URL('..', import.meta.url));

/** The built bins the fault tests run (`pnpm build` first). */
export const BINS = {
  broker: path.join(REPO, 'packages/broker/dist/cli.js'),
  recorder: path.join(REPO, 'packages/audit-recorder/dist/cli.js'),
  agent: path.join(REPO, 'packages/agent/dist/cli.js'),
} as const;

/** Throws with the command to run when a bin has not been built. */
export function assertBuilt(): void {
  const missing = Object.values(BINS).filter((bin) => !existsSync(bin));
  if (missing.length > 0) throw new Error(`not built: ${missing.join(', ')} (run \`pnpm build\` from the repo root first)`);
}

/** A port nobody listens on right now (the broker CLI has no "0 → print the port" mode). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** One JSON log line of a daemon (FSO_LOG_FORMAT=json). */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** How a child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A daemon running as a child process. */
export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** `Date.now()` just before the spawn. */
  readonly startedAt: number;
  /** Settles when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Parsed JSON log lines so far (stderr). */
  logs(): LogLine[];
  /** stderr and stdout as text (for failure messages). */
  output(): string;
  /** Waits for a log line matching `predicate`; fails early if the process exits. */
  waitForLog(predicate: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<Exit>;
}

const running = new Set<Daemon>();
const spawned: Daemon[] = [];
// A test worker that dies (a time-out) must not leave daemons behind holding ports and mounts.
process.once('exit', () => {
  for (const daemon of running) {
    try {
      process.kill(daemon.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** Spawns `node script ...args` with JSON logs; the harness remembers it for {@link killAll}. */
export function spawnDaemon(name: string, script: string, args: string[]): Daemon {
  const startedAt = Date.now();
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: process.env.FSO_LOG_LEVEL ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`cannot spawn ${name}`);
  let text = '';
  let partial = '';
  const lines: LogLine[] = [];
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    const chunk = d.toString();
    text += chunk;
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        // Not JSON (a CLI's own message on stderr): kept in output().
      }
    }
  });
  let exitedWith: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedWith = { code, signal };
      running.delete(daemon);
      resolve(exitedWith);
    });
  });
  const daemon: Daemon = {
    name,
    pid: child.pid,
    child,
    startedAt,
    exited,
    logs: () => lines,
    output: () => text,
    async waitForLog(predicate, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = lines.find(predicate);
        if (found) return found;
        const tail = `\n--- ${name} output (last 3000 chars) ---\n${text.slice(-3000)}`;
        if (exitedWith) throw new Error(`${name} exited (${JSON.stringify(exitedWith)}) before ${what}${tail}`);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${name}: ${what}${tail}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async kill(signal) {
      if (!exitedWith) process.kill(child.pid as number, signal);
      return exited;
    },
  };
  running.add(daemon);
  spawned.push(daemon);
  return daemon;
}

/** Writes the output of every daemon spawned since the last call into `dir` (kept for a failed test), and forgets them. */
export async function saveLogs(dir?: string): Promise<void> {
  const daemons = spawned.splice(0);
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await Promise.all(daemons.map((d, i) => writeFile(path.join(dir, `${i}-${d.name}-${d.pid}.log`), d.output())));
}

/**
 * How `daemon` exited. Its exit may wait on a volume of work (the recorder
 * stops once the disk is full), so this waits while `progress()` keeps
 * changing and fails, naming `what`, once it stalls.
 */
export async function waitForExit(daemon: Daemon, what: string, progress: () => number | string | Promise<number | string>): Promise<Exit> {
  let exit: Exit | undefined;
  void daemon.exited.then((e) => (exit = e));
  return waitForProgress(() => exit, progress, `${daemon.name} to exit: ${what}`, { intervalMs: 200 });
}

/** SIGKILLs every daemon this harness started that still runs (afterEach). */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((d) => d.kill('SIGKILL')));
}

const listening = async (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** `fso-audit verify --dir DIR` as a child process: its exit code and output. */
export async function verify(dir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BINS.recorder, 'verify', '--dir', dir]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** `fso-broker --port P --data-dir DIR`, resolved once the port accepts connections. */
export async function startBrokerProcess(options: { port: number; dataDir: string }): Promise<Daemon> {
  const broker = spawnDaemon('broker', BINS.broker, ['--port', String(options.port), '--data-dir', options.dataDir]);
  const deadline = Date.now() + 15_000;
  while (!(await listening(options.port))) {
    const exit = await Promise.race([broker.exited, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 50))]);
    if (exit) throw new Error(`broker exited ${JSON.stringify(exit)} before listening on ${options.port}: ${broker.output()}`);
    if (Date.now() > deadline) throw new Error(`broker not listening on ${options.port} after 15 s: ${broker.output()}`);
  }
  return broker;
}

/** `fso-audit record --dir DIR`, resolved once it has subscribed. */
export async function startRecorderProcess(options: { dir: string; brokerUrl: string; clientId?: string }): Promise<Daemon> {
  const recorder = spawnDaemon('recorder', BINS.recorder, [
    'record', '--dir', options.dir, '--broker', options.brokerUrl, '--client-id', options.clientId ?? 'fault-recorder',
  ]);
  await recorder.waitForLog((l) => l.msg === 'recording', 'recording');
  return recorder;
}

/** Options of {@link startAgentProcess}. */
export interface AgentProcessOptions {
  id: string;
  watch: string;
  stateDir: string;
  brokerUrl: string;
  resendAfter?: string;
  pairWindow?: string;
  important?: string;
}

/** `fso-agent --id ID --watch DIR --state-dir STATE`, resolved once its root is scanned and watched. */
export async function startAgentProcess(options: AgentProcessOptions): Promise<Daemon> {
  const agent = spawnDaemon('agent', BINS.agent, [
    '--id', options.id, '--watch', options.watch, '--state-dir', options.stateDir, '--broker', options.brokerUrl,
    '--resend-after', options.resendAfter ?? '2s', '--pair-window', options.pairWindow ?? '200ms',
    ...(options.important ? ['--important', options.important] : []),
  ]);
  await agent.waitForLog((l) => l.msg === 'watching', 'its watch to be ready', 60_000);
  return agent;
}

export type { AuditLine } from './helpers.js';

/** Every complete line of the `kind` audit files of `dir`, oldest day first (a torn last line is left out). */
export function readAudit(dir: string, kind: 'events' | 'diffs' = 'events'): Promise<AuditLine[]> {
  return readAuditLines(dir, kind);
}

/** The `record: "event"` lines of `dir`. */
export async function readEvents(dir: string): Promise<AuditLine[]> {
  return (await readAudit(dir)).filter((l) => l.record === 'event');
}

/** One change the generator made, as the trail must show it. */
export interface ExpectedChange {
  type: 'create' | 'modify' | 'delete' | 'rename';
  path: string;
  oldPath?: string;
}

/** What the audit trail holds compared with what the generator did. */
export interface Tally {
  expected: number;
  /** Expected changes with no matching event. */
  lost: ExpectedChange[];
  /** Event ids recorded more than once (extra copies). */
  duplicatedById: number;
  /** (agentId, epoch, seq) recorded more than once (extra copies). */
  duplicatedBySeq: number;
  /** Expected changes recorded more than once: [change, copies]. */
  duplicatedByPath: Array<[ExpectedChange, number]>;
  /**
   * Modifies of a created path that changed its content (another sha256 than
   * the event before): a writer that creates a file empty and writes it later
   * (writeFile under load) really did modify it. Reported, not an error.
   */
  contentModifies: AuditLine[];
  /**
   * Modifies of a created path with a later mtime but the sha256 the event
   * before already reported: a real write (the mtime moved), whose content
   * the create had reported early (it hashed after its lstat). Reported, not
   * an error; see docs/reliability.md.
   */
  sameContentModifies: AuditLine[];
  /** Events that match no expected change (and are none of the modifies above). */
  unexpected: AuditLine[];
  /** `gap` records: seq ranges the recorder says can never arrive. */
  gaps: AuditLine[];
  /** Largest `receivedAt` among the matched events (ms). */
  lastReceivedMs: number;
}

const changeKey = (c: Record<string, unknown> | ExpectedChange): string =>
  `${String(c.type)}\u0000${String(c.path)}\u0000${c.oldPath === undefined ? '' : String(c.oldPath)}`;

/** Compares the events of an audit dir with the generator's changes. */
export async function tally(dir: string, expected: readonly ExpectedChange[], agentId?: string): Promise<Tally> {
  const all = await readAudit(dir);
  const events = all.filter((l) => l.record === 'event' && (agentId === undefined || l.agentId === agentId));
  const ids = new Map<string, number>();
  const seqs = new Map<string, number>();
  const byChange = new Map<string, AuditLine[]>();
  for (const e of events) {
    ids.set(String(e.id), (ids.get(String(e.id)) ?? 0) + 1);
    const seqKey = `${String(e.agentId)}/${String(e.epoch)}/${String(e.seq)}`;
    seqs.set(seqKey, (seqs.get(seqKey) ?? 0) + 1);
    const key = changeKey(e);
    byChange.set(key, [...(byChange.get(key) ?? []), e]);
  }
  const extra = (counts: Map<string, number>): number => [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
  const lost: ExpectedChange[] = [];
  const duplicatedByPath: Array<[ExpectedChange, number]> = [];
  const matched = new Set<string>();
  let lastReceivedMs = 0;
  for (const change of expected) {
    const key = changeKey(change);
    matched.add(key);
    const found = byChange.get(key) ?? [];
    if (found.length === 0) lost.push(change);
    if (found.length > 1) duplicatedByPath.push([change, found.length]);
    for (const e of found) lastReceivedMs = Math.max(lastReceivedMs, Date.parse(e.receivedAt));
  }
  const created = new Set(expected.filter((c) => c.type === 'create').map((c) => c.path));
  const before = new Map<string, AuditLine>();
  const contentModifies: AuditLine[] = [];
  const sameContentModifies: AuditLine[] = [];
  const unexpected: AuditLine[] = [];
  for (const e of [...events].sort((a, b) => Number(a.seq) - Number(b.seq))) {
    const p = String(e.path);
    const previous = before.get(p);
    before.set(p, e);
    if (matched.has(changeKey(e))) continue;
    const laterWrite = e.type === 'modify' && created.has(p) && previous !== undefined;
    if (laterWrite && previous.sha256 !== e.sha256) contentModifies.push(e);
    else if (laterWrite && Date.parse(String(e.mtime)) > Date.parse(String(previous.mtime))) sameContentModifies.push(e);
    else unexpected.push(e);
  }
  return {
    expected: expected.length,
    lost,
    duplicatedById: extra(ids),
    duplicatedBySeq: extra(seqs),
    duplicatedByPath,
    contentModifies,
    sameContentModifies,
    unexpected,
    gaps: all.filter((l) => l.record === 'gap'),
    lastReceivedMs,
  };
}

/** A one-line summary of a tally for failure messages. */
export function describeTally(t: Tally): string {
  const sample = <T>(list: T[]): string => JSON.stringify(list.slice(0, 5));
  return [
    `expected ${t.expected}`,
    `lost ${t.lost.length} ${t.lost.length > 0 ? sample(t.lost) : ''}`,
    `duplicated by id ${t.duplicatedById}, by seq ${t.duplicatedBySeq}`,
    `duplicated by path ${t.duplicatedByPath.length} ${t.duplicatedByPath.length > 0 ? sample(t.duplicatedByPath) : ''}`,
    `content modifies ${t.contentModifies.length}, same-content modifies ${t.sameContentModifies.length}`,
    `unexpected ${t.unexpected.length} ${t.unexpected.length > 0 ? sample(t.unexpected.map((e) => [e.type, e.path, e.origin, e.seq])) : ''}`,
    `gaps ${t.gaps.length} ${t.gaps.length > 0 ? sample(t.gaps) : ''}`,
  ].join('; ');
}

/**
 * How long a fault test may take in all (vitest's timeout): the generous cap.
 * The waits inside fail much sooner, on a stall, saying what never arrived.
 */
export const FAULT_TEST_TIMEOUT_MS = 600_000;

/**
 * Waits until every expected change is in the trail, for as long as more of
 * them keep arriving: it fails (with the tally) once none has arrived for
 * `stallMs`, not after a fixed budget that a loaded machine can overrun
 * while records still flow (issue 12).
 */
export async function waitForAll(dir: string, expected: readonly ExpectedChange[], what: string, stallMs = 30_000): Promise<Tally> {
  let last: Tally | undefined;
  try {
    return await waitForProgress(
      async () => {
        last = await tally(dir, expected);
        return last.lost.length === 0 ? last : undefined;
      },
      () => `${last ? last.expected - last.lost.length : 0} of ${expected.length} recorded`,
      what,
      { stallMs, intervalMs: 200 },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${last ? describeTally(last) : 'no tally'}`);
  }
}

/** The names `prefix-0.txt` … `prefix-(n-1).txt` under `dir`. */
export function fileNames(dir: string, prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => path.join(dir, `${prefix}-${i}.txt`));
}

/** Options of {@link createFiles}. */
export interface CreateOptions {
  /** Files written in parallel at a time; default 100. */
  chunk?: number;
  /** Pause between chunks (pacing, so a test can act mid-stream); default none. */
  pauseMs?: number;
  /** Runs after each chunk with the count written so far. */
  onProgress?: (written: number) => void | Promise<void>;
}

/** Creates `files` (content: their name), a chunk at a time, yielding to the event loop between chunks. */
export async function createFiles(files: readonly string[], options: CreateOptions = {}): Promise<void> {
  const chunk = options.chunk ?? 100;
  for (let i = 0; i < files.length; i += chunk) {
    await Promise.all(files.slice(i, i + chunk).map((f) => writeFile(f, `content of ${path.basename(f)}\n`)));
    await options.onProgress?.(Math.min(i + chunk, files.length));
    await new Promise((resolve) => (options.pauseMs ? setTimeout(resolve, options.pauseMs) : setImmediate(resolve)));
  }
}

/** Mid-stream: 50 files every 100 ms (about 500/s, less than the pipeline carries), 6 s for 3,000. */
export const PACED: CreateOptions = { chunk: 50, pauseMs: 100 };
/** A daemon is killed mid-stream once this many event records are in the audit files. */
export const KILL_AT_RECORDS = 300;

/**
 * Runs the paced generator over `files` and, meanwhile, SIGKILLs `daemon` as
 * soon as the trail holds {@link KILL_AT_RECORDS} events. Resolves with the
 * number of records there were when it was killed.
 */
export async function createWhileKilling(files: readonly string[], daemon: Daemon, auditDir: string): Promise<number> {
  const killing = (async () => {
    let n = 0;
    const records = await waitForProgress(
      async () => {
        n = (await readEvents(auditDir)).length;
        return n >= KILL_AT_RECORDS ? n : undefined;
      },
      () => `${n} records`,
      `${KILL_AT_RECORDS} records before killing the ${daemon.name}`,
      { intervalMs: 50 },
    );
    const exit = await daemon.kill('SIGKILL');
    if (exit.signal !== 'SIGKILL') throw new Error(`${daemon.name} ended ${JSON.stringify(exit)} before the SIGKILL`);
    return records;
  })();
  killing.catch(() => undefined); // awaited below; not unhandled while the generator runs
  await createFiles(files, PACED);
  return killing;
}

/** One measured fault run, as docs/reliability.md tabulates it. */
export interface Figure {
  fault: string;
  behaviour: string;
  expected: number;
  lost: number;
  duplicated: number;
  recoverMs: number | null;
  [extra: string]: unknown;
}

/**
 * Prints a figure line (`[figures] {...}`) and, when FSO_FAULT_FIGURES names
 * a file, appends it there as JSON (how docs/reliability.md was filled in).
 */
export function reportFigure(figure: Figure): void {
  const line = JSON.stringify({ ...figure, at: new Date().toISOString() });
  process.stdout.write(`[figures] ${line}\n`);
  const file = process.env.FSO_FAULT_FIGURES;
  if (file) appendFileSync(file, `${line}\n`);
}

/**
 * Waits until the trail of `agentId` has settled: the recorder's retained ack
 * covers the highest seq recorded (no hole left to resend) and no event
 * record has arrived for `quietMs`. Late duplicates, if any, are then in the
 * files. It waits as long as records or acks keep coming, and fails once
 * neither has moved for `stallMs` (issue 12: a fixed 30 s ran out under load
 * after a 10,000-file burst).
 */
export async function waitForSettled(options: { dir: string; brokerUrl: string; agentId: string; quietMs?: number; stallMs?: number }): Promise<void> {
  const quietMs = options.quietMs ?? 3000;
  const acks = await createCollector(options.brokerUrl, createTopics().ack(options.agentId));
  try {
    let count = -1;
    let stableSince = Date.now();
    let state = 'no record read yet';
    await waitForProgress(
      async () => {
        const events = (await readEvents(options.dir)).filter((e) => e.agentId === options.agentId);
        if (events.length !== count) {
          count = events.length;
          stableSince = Date.now();
        }
        // Acks are cumulative: the highest of the newest epoch counts. Not the last one to arrive: the
        // retained ack is delivered after the subscription is made, and may come after a newer live one.
        const parsed = acks.messages.map((m) => ackSchema.safeParse(m.json)).flatMap((a) => (a.success ? [a.data] : []));
        const epoch = parsed.at(-1)?.epoch;
        const best = parsed.filter((a) => a.epoch === epoch).sort((a, b) => b.seq - a.seq)[0];
        const ack = best ? { success: true as const, data: best } : undefined;
        const maxSeq = ack?.success ? Math.max(0, ...events.filter((e) => e.epoch === ack.data.epoch).map((e) => Number(e.seq))) : undefined;
        state = `${count} records, ack ${ack?.success ? ack.data.seq : 'none'} of max seq ${maxSeq ?? '?'}`;
        return ack?.success === true && maxSeq !== undefined && ack.data.seq >= maxSeq && Date.now() - stableSince >= quietMs;
      },
      () => state,
      `the trail of ${options.agentId} to settle (ack covering every record, ${quietMs} ms without a new one)`,
      { stallMs: options.stallMs ?? 30_000, intervalMs: 250 },
    );
  } finally {
    await acks.close();
  }
}

/** The events file of today (the recorder names files by the UTC day of `receivedAt`). */
export async function eventsFileOf(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => /^events-\d{4}-\d{2}-\d{2}\.jsonl$/.test(n)).sort();
  const last = names.at(-1);
  if (!last) throw new Error(`no events file in ${dir}`);
  return path.join(dir, last);
}

/** Time from a daemon's (re)start to the last expected record, 0 when all were there before it. */
export function recoverMs(t: Tally, restarted: Daemon): number {
  return Math.max(0, t.lastReceivedMs - restarted.startedAt);
}

/** How many times an agent logged a resend round for lack of ack progress. */
export function resendRounds(agent: Daemon): number {
  return agent.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('no ack progress')).length;
}

/** Counts `items` by `key`. */
export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}
