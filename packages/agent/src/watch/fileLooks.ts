import { constants } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { createSilentLogger, errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import type { FileStats } from './baseline.js';
import { OPEN_FLAGS, SKIP_BY_CODE, hashFile } from './hash.js';
import { createLimiter } from './limiter.js';
import type { HashResult } from './hash.js';

/**
 * The agent's look at a path (lstat) and its hash of a small file, done by
 * synchronous system calls in a worker thread, many paths to a message.
 *
 * Measured on a burst of 80,000 changes (bench throughput): with one promise
 * per lstat, open, fstat, read and close (each a trip through libuv's thread
 * pool and a microtask) the agent used 34.7 CPU s; with the same calls made
 * synchronously, 22.4 s; with this worker, 24.7-27 s. The worker makes them
 * off the event loop, which must go on reading inotify: a slow disk stalls
 * looks, never the watcher or the agent's MQTT session. One worker answers
 * in order, so one file that never answers (a hung network mount) would
 * hold up every look behind it: a worker silent for `stallMs` is given up
 * and its looks are made on the main thread, as before the worker. The
 * worker is there for bursts only (see {@link createFileLooker}).
 * Files larger than {@link SYNC_HASH_MAX_BYTES} are hashed as before,
 * streamed in chunks on the main thread, so one big file never holds up the
 * looks queued behind it.
 */

/** A path's lstat, or that it is not there, or the error code that kept it from view. */
export type Look = { stats: FileStats } | { missing: true } | { error: string };

/** Files up to this size are hashed in the worker in one read. */
export const SYNC_HASH_MAX_BYTES = 1024 * 1024;

/** Looks at paths and hashes files; see the module comment. */
export interface FileLooker {
  lstat(path: string): Promise<Look>;
  /** As {@link hashFile}: same skip reasons, same errors rethrown. */
  hash(path: string, maxBytes: number): Promise<HashResult>;
  /**
   * Every path under `root` (below its direct entries too if `recursive`)
   * with its lstat, walked and looked at by the worker in one go: a rescan
   * of a large tree then costs the event loop one message, not one look per
   * path. Null when no worker can do it (it failed too often, or the looker
   * is closed): the caller walks the tree itself.
   */
  scan(root: string, recursive: boolean): Promise<TreeScan | null>;
  /** Ends the worker; later calls fall back to the promise API. Idempotent: a second call returns the first call's promise. */
  close(): Promise<void>;
  /** How many looks the worker answered, and how many the main thread made (a few at a time, or the worker gone). */
  readonly answered: { readonly worker: number; readonly mainThread: number };
  /** True while the worker thread is there (a burst, and `idleMs` after it). */
  readonly workerRunning: boolean;
}

/** What {@link FileLooker.scan} found: each path with its stats, and the paths that could not be read or looked at, with the error code. */
export interface TreeScan {
  found: Array<[string, FileStats]>;
  unreadable: Array<[string, string]>;
}

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK } = constants;

/** The stats the worker sent, with the fs.Stats methods the agent calls. */
class LookedStats implements FileStats {
  constructor(
    readonly dev: number,
    readonly ino: number,
    readonly mode: number,
    readonly size: number,
    readonly mtimeMs: number,
    readonly birthtimeMs: number,
  ) {}
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
}

// Expected lstat errors (the path is gone, or cannot be looked at); anything else is rethrown.
const MISSING = new Set(['ENOENT', 'ENOTDIR']);
const UNLOOKABLE = new Set(['EACCES', 'EPERM', 'ENAMETOOLONG', 'ELOOP']);

/** A worker's answer to an lstat: the stats fields, or the error code. */
type LstatAnswer = [number, number, number, number, number, number] | string;
/** A worker's answer to a hash: the result (with the seconds it took when a hash was made), a failure by code, or "too big to hash here". */
type HashAnswer = (HashResult & { seconds?: number }) | { code: string; message: string } | { large: true };

// Plain JS, run with `eval: true` (see diffWorker.ts for why). Synchronous
// calls only: each message is answered in one go, in order.
function workerMain(parentPort: import('node:worker_threads').MessagePort, fs: typeof import('node:fs'), crypto: typeof import('node:crypto'), flags: number, syncMax: number): void {
  const codeOf = (err: unknown): string => String((err as { code?: unknown }).code ?? 'EUNKNOWN');
  const lstatOne = (p: string): unknown => {
    try {
      const s = fs.lstatSync(p);
      return [s.dev, s.ino, s.mode, s.size, s.mtimeMs, s.birthtimeMs];
    } catch (err) {
      return codeOf(err);
    }
  };
  const hashOpen = (fd: number, maxBytes: number): unknown => {
    let s = fs.fstatSync(fd);
    for (let attempt = 1; ; attempt += 1) {
      if (!s.isFile()) return { sha256: null, size: null, skipped: 'not-regular' };
      if (s.size > maxBytes) return { sha256: null, size: s.size, skipped: 'too-large' };
      if (s.size > syncMax) return { large: true };
      const limit = Math.min(maxBytes, syncMax);
      let buffer = Buffer.allocUnsafe(Math.min(limit, s.size) + 1);
      let total = 0;
      const hash = crypto.createHash('sha256');
      for (;;) {
        const n = fs.readSync(fd, buffer, 0, buffer.length, total);
        if (n === 0) break;
        total += n;
        if (total > maxBytes) return { sha256: null, size: s.size, skipped: 'too-large' };
        // Grew past what is hashed here since its stat: hashed on the main thread, streamed.
        if (total > syncMax) return { large: true };
        hash.update(buffer.subarray(0, n));
        // A short read that ends where fstat said the file ends is its end (as hash.ts).
        if (n < buffer.length && total === s.size) break;
        if (n === buffer.length) buffer = Buffer.allocUnsafe(limit + 1 - total);
      }
      // Written to while it was read (a file hashed as it is being saved): read it again, so
      // the hash and the mtime reported are of one state; a later write gets its own event.
      const after = fs.fstatSync(fd);
      if ((after.mtimeMs === s.mtimeMs && after.size === total) || attempt === 3) {
        return { sha256: hash.digest('hex'), size: total, skipped: null, mtimeMs: s.mtimeMs };
      }
      s = after;
    }
  };
  const hashOne = (p: string, maxBytes: number): unknown => {
    try {
      // lstat first so devices and FIFOs are never opened (as hash.ts); fstat closes the race.
      const l = fs.lstatSync(p);
      if (!l.isFile()) return { sha256: null, size: null, skipped: 'not-regular' };
      if (l.size > syncMax && l.size <= maxBytes) return { large: true };
      const started = performance.now();
      const fd = fs.openSync(p, flags);
      try {
        const result = hashOpen(fd, maxBytes) as { sha256?: string | null; seconds?: number };
        if (typeof result.sha256 === 'string') result.seconds = (performance.now() - started) / 1000;
        return result;
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      return { code: codeOf(err), message: String((err as Error).message) };
    }
  };
  // A walk of the tree under `root` with an lstat of every entry (symbolic links not followed).
  const scanTree = (root: string, recursive: boolean): { paths: string[]; fields: Float64Array; unreadable: Array<[string, string]> } => {
    const paths: string[] = [];
    let fields = new Float64Array(6 * 1024);
    const unreadable: Array<[string, string]> = [];
    const dirs = [root];
    for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch (err) {
        if (dir !== root || codeOf(err) !== 'ENOENT') unreadable.push([dir, codeOf(err)]);
        continue;
      }
      const prefix = dir.endsWith('/') ? dir : `${dir}/`;
      for (const name of names) {
        const p = prefix + name;
        let s: import('node:fs').Stats | undefined;
        try {
          s = fs.lstatSync(p, { throwIfNoEntry: false });
        } catch (err) {
          unreadable.push([p, codeOf(err)]);
          continue;
        }
        if (!s) continue; // gone since the readdir
        if (fields.length < 6 * (paths.length + 1)) {
          const grown = new Float64Array(fields.length * 2);
          grown.set(fields);
          fields = grown;
        }
        fields.set([s.dev, s.ino, s.mode, s.size, s.mtimeMs, s.birthtimeMs], 6 * paths.length);
        paths.push(p);
        if (recursive && s.isDirectory()) dirs.push(p);
      }
    }
    return { paths, fields: fields.slice(0, 6 * paths.length), unreadable };
  };
  parentPort.on('message', (m: { id: number; op: 'lstat' | 'hash' | 'scan'; paths: string[]; maxBytes: number[] }) => {
    if (m.op === 'scan') {
      const tree = scanTree(m.paths[0] as string, m.maxBytes[0] === 1);
      parentPort.postMessage({ id: m.id, answers: [tree] }, [tree.fields.buffer as ArrayBuffer]);
      return;
    }
    const answers = m.op === 'lstat' ? m.paths.map(lstatOne) : m.paths.map((p, i) => hashOne(p, m.maxBytes[i] as number));
    parentPort.postMessage({ id: m.id, answers });
  });
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(${workerMain.toString()})(parentPort, require('node:fs'), require('node:crypto'), workerData.flags, workerData.syncMax);
`;

/** An answer made on the main thread (the worker is gone): the final value, or what to throw. */
class Settled {
  constructor(
    readonly value: unknown,
    readonly failed: boolean,
  ) {}
  unwrap<T>(): T {
    if (this.failed) throw this.value;
    return this.value as T;
  }
}

interface Waiting {
  path: string;
  maxBytes: number;
  resolve: (answer: unknown) => void;
}

interface Batch {
  op: 'lstat' | 'hash' | 'scan';
  waiting: Waiting[];
}

/** Options of {@link createFileLooker}. */
export interface FileLookerOptions {
  log?: Logger;
  /** Looks asked in one turn of the event loop that start the worker (fewer are made on the main thread); default 32. */
  burstLooks?: number;
  /** The worker ends after this long without looks (ms); default 2000. */
  idleMs?: number;
  /**
   * A worker that answers nothing for this long (ms) is given up as stuck (a
   * file system that does not answer): its looks are made again on the main
   * thread, as a death; default 10,000.
   */
  stallMs?: number;
  /** A file's SHA-256 was made: the seconds its open, reads and hash took (in the worker, or streamed on the main thread). For metrics. */
  onHashed?: (seconds: number) => void;
}

/** Worker deaths after which the looker stops respawning it and uses the promise API for good. */
const MAX_DEATHS = 3;

/**
 * Calls made in one turn of the event loop go to the worker as one
 * message. The worker (about 17 MB of memory) lives for bursts only: it
 * starts when one turn asks `burstLooks` looks or more, and ends after
 * `idleMs` without any; a few looks at a time, as a quiet host asks, are
 * made on the main thread with the promise API. If the worker dies, what it
 * had is looked at again there, and so is everything after a few deaths.
 *
 * @example
 * const looker = createFileLooker({ log });
 * const look = await looker.lstat('/etc/hosts');
 * const { sha256 } = await looker.hash('/etc/hosts', 256 * 1024 * 1024);
 */
export function createFileLooker(options: FileLookerOptions = {}): FileLooker {
  const log = options.log ?? createSilentLogger();
  const burstLooks = options.burstLooks ?? 32;
  const idleMs = options.idleMs ?? 2000;
  const stallMs = options.stallMs ?? 10_000;
  let worker: Worker | null = null;
  let idleTimer: NodeJS.Timeout | undefined;
  let stallTimer: NodeJS.Timeout | undefined;
  let deaths = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  let nextId = 1;
  const inFlight = new Map<number, Batch>();
  let queued: { lstat: Batch; hash: Batch } | null = null;
  const answered = { worker: 0, mainThread: 0 };
  // Big files are streamed on the main thread, a few at a time (bounded file descriptors).
  const streamLimit = createLimiter(16);
  const streamHash = (p: string, maxBytes: number): Promise<HashResult> =>
    streamLimit(async () => {
      const started = performance.now();
      const result = await hashFile(p, { maxBytes });
      if (result.sha256 !== null) options.onHashed?.((performance.now() - started) / 1000);
      return result;
    });

  const lookUp = async (p: string): Promise<Look> => {
    try {
      return { stats: await lstat(p) };
    } catch (err) {
      return lookOfCode(errorCode(err) ?? 'EUNKNOWN', err);
    }
  };
  /** The batch's looks made on the main thread, with the promise API. */
  const onMainThread = (batch: Batch): void => {
    if (batch.op === 'scan') {
      // Not made here: the caller walks the tree itself.
      for (const w of batch.waiting) w.resolve(new Settled(null, false));
      return;
    }
    answered.mainThread += batch.waiting.length;
    for (const w of batch.waiting) {
      const made = batch.op === 'lstat' ? lookUp(w.path) : streamHash(w.path, w.maxBytes);
      made.then(
        (value) => w.resolve(new Settled(value, false)),
        (err: unknown) => w.resolve(new Settled(err, true)),
      );
    }
  };

  /** Ends the current worker as dead (it crashed, or it is stuck): what it had is looked at again on the main thread. */
  const giveUp = (dead: Worker, reason: string, code?: number): void => {
    if (dead !== worker) return;
    worker = null;
    clearTimeout(stallTimer);
    deaths += 1;
    log.warn(
      { reason, code, deaths },
      deaths >= MAX_DEATHS ? 'file look worker failed again; looking on the main thread from now on' : 'file look worker failed; its looks are made again',
    );
    const lost = [...inFlight.values()];
    inFlight.clear();
    for (const batch of lost) onMainThread(batch);
    // A thread stuck in a system call ends when the call returns, if ever.
    dead.terminate().catch(() => undefined);
  };
  /** (Re)starts the stall watchdog while answers are due. */
  const watchStall = (w: Worker): void => {
    clearTimeout(stallTimer);
    if (inFlight.size === 0) return;
    stallTimer = setTimeout(() => giveUp(w, `no answer within ${stallMs} ms`), stallMs);
    stallTimer.unref();
  };

  const spawn = (): Worker => {
    const spawned = new Worker(WORKER_SOURCE, { eval: true, workerData: { flags: OPEN_FLAGS, syncMax: SYNC_HASH_MAX_BYTES } });
    let lastError = 'exited';
    spawned.on('message', (message: { id: number; answers: unknown[] }) => {
      const batch = inFlight.get(message.id);
      if (!batch) return;
      inFlight.delete(message.id);
      watchStall(spawned);
      if (inFlight.size === 0) {
        spawned.unref();
        idleTimer = setTimeout(() => {
          if (spawned !== worker || inFlight.size > 0) return;
          // Not a death: forgotten first, so its exit is not counted.
          worker = null;
          void spawned.terminate();
        }, idleMs);
        idleTimer.unref();
      }
      answered.worker += batch.waiting.length;
      batch.waiting.forEach((w, i) => w.resolve(message.answers[i]));
    });
    spawned.on('error', (err) => {
      lastError = err.message;
      log.warn({ err }, 'file look worker failed');
    });
    spawned.on('exit', (code) => giveUp(spawned, lastError, code));
    return spawned;
  };

  /** Hands the batch to the worker (started if need be), or makes it on the main thread if none can take it. */
  const toWorker = (batch: Batch): void => {
    if (closed || deaths >= MAX_DEATHS) {
      onMainThread(batch);
      return;
    }
    clearTimeout(idleTimer);
    const id = nextId++;
    try {
      worker ??= spawn();
      worker.ref();
      inFlight.set(id, batch);
      worker.postMessage({ id, op: batch.op, paths: batch.waiting.map((w) => w.path), maxBytes: batch.waiting.map((w) => w.maxBytes) });
      if (inFlight.size === 1) watchStall(worker);
    } catch (err) {
      // Never an uncaught throw in a setImmediate: the batch is made here instead.
      inFlight.delete(id);
      deaths += 1;
      log.warn({ err, deaths }, 'cannot hand looks to the file look worker; looking on the main thread');
      onMainThread(batch);
    }
  };

  const flush = (): void => {
    const q = queued;
    queued = null;
    if (!q) return;
    for (const batch of [q.lstat, q.hash]) {
      if (batch.waiting.length === 0) continue;
      if (!worker && batch.waiting.length < burstLooks) onMainThread(batch);
      else toWorker(batch);
    }
  };

  const enqueue = (op: 'lstat' | 'hash', path: string, maxBytes: number): Promise<unknown> =>
    new Promise((resolve) => {
      if (!queued) {
        queued = { lstat: { op: 'lstat', waiting: [] }, hash: { op: 'hash', waiting: [] } };
        setImmediate(flush);
      }
      queued[op].waiting.push({ path, maxBytes, resolve });
    });

  return {
    answered,
    get workerRunning() {
      return worker !== null;
    },
    async lstat(p) {
      const answer = (await enqueue('lstat', p, 0)) as LstatAnswer | Settled;
      if (answer instanceof Settled) return answer.unwrap<Look>();
      if (typeof answer === 'string') return lookOfCode(answer, undefined);
      const [dev, ino, mode, size, mtimeMs, birthtimeMs] = answer;
      return { stats: new LookedStats(dev, ino, mode, size, mtimeMs, birthtimeMs) };
    },
    async hash(p, maxBytes) {
      const answer = (await enqueue('hash', p, maxBytes)) as HashAnswer | Settled;
      if (answer instanceof Settled) return answer.unwrap<HashResult>();
      if ('large' in answer) return streamHash(p, maxBytes);
      if ('code' in answer) {
        const skipped = SKIP_BY_CODE[answer.code];
        if (skipped === undefined) throw Object.assign(new Error(answer.message), { code: answer.code });
        return { sha256: null, size: null, skipped };
      }
      const { seconds, ...result } = answer;
      if (seconds !== undefined) options.onHashed?.(seconds);
      return result;
    },
    async scan(root, recursive) {
      const answer = (await new Promise<unknown>((resolve) => toWorker({ op: 'scan', waiting: [{ path: root, maxBytes: recursive ? 1 : 0, resolve }] }))) as
        | { paths: string[]; fields: Float64Array; unreadable: Array<[string, string]> }
        | Settled;
      if (answer instanceof Settled) return null;
      const { paths, fields, unreadable } = answer;
      const found = paths.map((p, i): [string, FileStats] => {
        const at = 6 * i;
        return [p, new LookedStats(fields[at] as number, fields[at + 1] as number, fields[at + 2] as number, fields[at + 3] as number, fields[at + 4] as number, fields[at + 5] as number)];
      });
      return { found, unreadable };
    },
    close() {
      if (!closing) {
        closed = true;
        clearTimeout(idleTimer);
        clearTimeout(stallTimer);
        const last = worker;
        worker = null;
        const pending = [...inFlight.values()];
        inFlight.clear();
        for (const batch of pending) onMainThread(batch);
        // A second call waits for the same termination (chokidar's habit), not for nothing.
        closing = last ? last.terminate().then(() => undefined) : Promise.resolve();
      }
      return closing;
    },
  };
}

let shared: FileLooker | undefined;

/** One looker for the process, made at first use (reconcilers not handed one: tests, tools). */
export function defaultFileLooker(): FileLooker {
  shared ??= createFileLooker();
  return shared;
}

function lookOfCode(code: string, err: unknown): Look {
  if (MISSING.has(code)) return { missing: true };
  if (UNLOOKABLE.has(code)) return { error: code };
  throw err ?? Object.assign(new Error(`lstat failed: ${code}`), { code });
}
