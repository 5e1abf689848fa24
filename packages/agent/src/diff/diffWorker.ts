import { Worker } from 'node:worker_threads';
import type { Logger } from '@fso/common';
import { createSilentLogger } from '@fso/common';
import { decodeStored, encodeStored } from './contentStore.js';
import { runFileJob } from './diffFiles.js';
import type { FileJob, FileJobResult } from './diffFiles.js';
import { DifferClosedError } from '../errors.js';
import { lineDiff } from './lineDiff.js';
import type { LineDiffOutcome } from './lineDiff.js';

/**
 * Diffs off the agent's event loop: one long-lived worker thread, one job
 * at a time, a watchdog, and a fresh worker after a crash. The worker runs
 * {@link lineDiff} (near-linear: a 100%-changed 10 MB file takes a few
 * hundred ms there), so decoding, splitting, interning and formatting the
 * patch never block the agent's events. A file job ({@link DiffWorker.runFiles})
 * also reads the file and its stored previous content, checks and stores
 * them there (diffFiles.ts): the agent's thread never holds a whole file.
 */

/** One diff to compute. Contents are UTF-8 text (the caller has ruled out binary). */
export interface DiffJob {
  oldName: string;
  newName: string;
  oldContent: Uint8Array;
  newContent: Uint8Array;
  /** Context lines around each change. */
  context: number;
  /** Give up (`timeout`) when the diff takes longer, counted from when the worker starts it. */
  timeoutMs: number;
  /** A patch larger than this (UTF-8 bytes) is not built (`too-large`, with its line counts). */
  maxPatchBytes: number;
}

/**
 * What became of a {@link DiffJob}. `too-large`: the patch would exceed
 * `maxPatchBytes`; `added`/`removed` are its line counts. `failed`: the
 * worker crashed or hung, or the diff threw.
 */
export type DiffJobResult = LineDiffOutcome | { outcome: 'failed'; reason: string };

/** Options of {@link DiffWorker.run}. */
export interface RunOptions {
  /**
   * Hand `oldContent`'s memory to the worker instead of copying it (a 10 MB
   * file is 10 MB less to copy on this thread); `oldContent` is unusable
   * afterwards. Ignored unless `oldContent` spans its whole ArrayBuffer
   * (a small Buffer shares Node's pool with others).
   */
  transferOld?: boolean;
}

/** Options of {@link createDiffWorker}. */
export interface DiffWorkerOptions {
  logger?: Logger;
  /** Heap limit of the worker (MB); a job that needs more crashes the worker and is `failed`. Default 1024. */
  memoryLimitMb?: number;
  /**
   * Run the worker thread at nice 10 (Linux; best effort): a diff that
   * takes a core for a second must not take it from the agent's events, nor
   * from the broker and recorder on the same host. Default true.
   */
  lowPriority?: boolean;
  /**
   * A job not answered within `2 × timeoutMs + watchdogGraceMs` is `failed`
   * and its worker replaced (jsdiff's timeout does not cover splitting lines
   * or formatting the patch). Default 10 000.
   */
  watchdogGraceMs?: number;
  /**
   * A diff (a {@link DiffJob}, or a file job of kind `diff`) was answered, or
   * given up as failed: the seconds from its hand-over to the worker to then,
   * its wait in the queue left out. For metrics.
   */
  onDiffed?: (seconds: number) => void;
}

/** The worker side of {@link createDiffWorker}. */
export interface DiffWorker {
  /** Queues a job; resolves when it is done, rejects with {@link DifferClosedError} after close(). */
  run(job: DiffJob, options?: RunOptions): Promise<DiffJobResult>;
  /** Queues a file job (the worker reads, checks, stores and diffs the files itself: diffFiles.ts); like {@link run}. */
  runFiles(job: FileJob): Promise<FileJobResult>;
  /** The live worker's thread id; null before the first job, after a crash and after close(). */
  readonly threadId: number | null;
  /** Rejects queued and running jobs, terminates the thread. Idempotent. */
  close(): Promise<void>;
}

// Plain JS, run with `eval: true`: a worker file would have to be JS on disk,
// which tests running the TypeScript sources do not have. lineDiff is
// self-contained for this (see lineDiff.ts) and embedded as its source text;
// jsdiff is loaded by the absolute URL the main thread resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const os = require('node:os');
const crypto = require('node:crypto');
const { isUtf8 } = require('node:buffer');
if (workerData.lowPriority) {
  try {
    // Linux nice values are per thread: /proc/thread-self names this thread's id.
    os.setPriority(Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), 10);
  } catch {}
}
const jsdiff = import(workerData.diffUrl);
const lineDiff = (${lineDiff.toString()});
const runFileJob = (${runFileJob.toString()});
const encodeStored = (${encodeStored.toString()});
const decodeStored = (${decodeStored.toString()});
const sha256Hex = (data) => crypto.createHash('sha256').update(data).digest('hex');
const randomHex = () => crypto.randomBytes(4).toString('hex');
const decoder = new TextDecoder();
function run(d, job) {
  if (job.files) {
    return runFileJob(job, { fs, sha256Hex, randomHex, isUtf8, encodeStored, decodeStored, lineDiff, diffArrays: d.diffArrays });
  }
  const deadline = Date.now() + job.timeoutMs;
  return lineDiff({
    oldText: decoder.decode(job.oldContent), newText: decoder.decode(job.newContent),
    oldName: job.oldName, newName: job.newName, context: job.context, maxPatchBytes: job.maxPatchBytes, deadline,
  }, d.diffArrays);
}
parentPort.on('message', (job) => {
  jsdiff.then((d) => run(d, job)).then(
    (result) => parentPort.postMessage({ id: job.id, result }),
    (err) => parentPort.postMessage({ id: job.id, result: { outcome: 'failed', reason: String((err && err.message) || err) } }),
  );
});
`;

interface Pending {
  id: number;
  job: (DiffJob & { files?: false }) | (FileJob & { files: true });
  transfer: ArrayBuffer[];
  /** Typed by the job: a DiffJobResult for a DiffJob, a FileJobResult for a FileJob. */
  resolve: (result: DiffJobResult | FileJobResult) => void;
  reject: (err: Error) => void;
  /** performance.now() when it was handed to the worker. */
  startedAt?: number;
}

function isAnswer(value: unknown): value is { id: number; result: DiffJobResult | FileJobResult } {
  return typeof value === 'object' && value !== null && 'id' in value && 'result' in value;
}

/**
 * Starts nothing until the first job; then keeps one worker thread, which
 * holds the process open only while a job runs.
 *
 * @example
 * const worker = createDiffWorker({ logger });
 * const result = await worker.run({ oldName: 'a/f', newName: 'b/f', oldContent, newContent, context: 3, timeoutMs: 1000, maxPatchBytes: 4 << 20 });
 * await worker.close();
 */
export function createDiffWorker(options: DiffWorkerOptions = {}): DiffWorker {
  const log = options.logger ?? createSilentLogger();
  const memoryLimitMb = options.memoryLimitMb ?? 1024;
  const watchdogGraceMs = options.watchdogGraceMs ?? 10_000;
  const lowPriority = options.lowPriority ?? true;
  // Resolved here, where module resolution knows the agent's node_modules.
  const diffUrl = import.meta.resolve('diff');
  const queue: Pending[] = [];
  let worker: Worker | null = null;
  let current: Pending | null = null;
  let watchdog: NodeJS.Timeout | undefined;
  let nextId = 1;
  let closing: Promise<void> | undefined;

  function finish(result: DiffJobResult | FileJobResult): void {
    clearTimeout(watchdog);
    const done = current;
    current = null;
    if (done?.startedAt !== undefined && (!done.job.files || done.job.kind === 'diff')) options.onDiffed?.((performance.now() - done.startedAt) / 1000);
    done?.resolve(result);
    if (queue.length === 0) worker?.unref();
    pump();
  }

  /** Forgets the current worker (its late events are ignored) and ends its thread. */
  function discard(reason: string): void {
    const dead = worker;
    worker = null;
    if (dead) {
      log.warn({ reason, threadId: dead.threadId }, 'diff worker replaced');
      dead.terminate().catch((err: unknown) => log.warn({ err }, 'diff worker did not terminate'));
    }
    if (current) finish({ outcome: 'failed', reason });
  }

  function spawn(): Worker {
    const spawned = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { diffUrl, lowPriority },
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
    });
    let lastError = 'exited';
    spawned.on('message', (message: unknown) => {
      if (spawned === worker && current && isAnswer(message) && message.id === current.id) finish(message.result);
    });
    spawned.on('error', (err) => {
      lastError = err.message;
      log.warn({ err }, 'diff worker failed');
    });
    spawned.on('exit', (code) => {
      if (spawned === worker) discard(`diff worker ${lastError} (exit code ${code})`);
    });
    return spawned;
  }

  function pump(): void {
    if (closing || current) return;
    const next = queue.shift();
    if (!next) return;
    current = next;
    next.startedAt = performance.now();
    worker ??= spawn();
    worker.ref();
    const { job } = next;
    watchdog = setTimeout(() => discard(`no answer within ${2 * job.timeoutMs + watchdogGraceMs} ms`), 2 * job.timeoutMs + watchdogGraceMs);
    watchdog.unref();
    worker.postMessage({ id: next.id, ...job }, next.transfer);
  }

  return {
    run(job, runOptions = {}) {
      if (closing) return Promise.reject(new DifferClosedError());
      const old = job.oldContent;
      const ownsMemory = old.byteOffset === 0 && old.byteLength === old.buffer.byteLength && old.buffer instanceof ArrayBuffer;
      const transfer = runOptions.transferOld && ownsMemory && old.byteLength > 0 ? [old.buffer as ArrayBuffer] : [];
      return new Promise<DiffJobResult>((resolve, reject) => {
        queue.push({ id: nextId++, job, transfer, resolve: resolve as Pending['resolve'], reject });
        pump();
      });
    },
    runFiles(job) {
      if (closing) return Promise.reject(new DifferClosedError());
      return new Promise<FileJobResult>((resolve, reject) => {
        queue.push({ id: nextId++, job: { ...job, files: true }, transfer: [], resolve: resolve as Pending['resolve'], reject });
        pump();
      });
    },
    get threadId() {
      return worker?.threadId ?? null;
    },
    close() {
      closing ??= (async () => {
        clearTimeout(watchdog);
        const abandoned = [...(current ? [current] : []), ...queue.splice(0)];
        current = null;
        for (const pending of abandoned) pending.reject(new DifferClosedError());
        const last = worker;
        worker = null;
        await last?.terminate();
      })();
      return closing;
    },
  };
}
