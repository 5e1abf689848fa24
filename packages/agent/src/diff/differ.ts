import { basename } from 'node:path';
import picomatch from 'picomatch';
import { DEFAULT_MAX_PATCH_BYTES, DEFAULT_NODIFF, createSilentLogger } from '@fso/common';
import type { DiffOptions, DiffSkipReason, EventType, Logger, Redaction } from '@fso/common';
import type { ContentStore } from './contentStore.js';
import type { FileJobResult } from './diffFiles.js';
import { DiffError, DifferClosedError } from '../errors.js';
import { createDiffWorker } from './diffWorker.js';
import type { DiffJobResult } from './diffWorker.js';
import { redactSecretsAsync } from './redact.js';

/** The changes a diff is made for (a rename moves the stored content instead: {@link Differ.rename}). */
export type DiffChange = Exclude<EventType, 'rename'>;

/** One diff to make: `path` changed as `change` says. */
export interface DiffRequest {
  path: string;
  change: DiffChange;
  options: DiffOptions;
}

/** A diff message's content fields (DESIGN.md): a patch, or why there is none. */
export interface DiffResult {
  /** Unified diff `--- a/path` / `+++ b/path`, secrets redacted; null when `skipped`. */
  patch: string | null;
  /** `+` lines in the hunks; also given when the patch is skipped as too large to publish (else 0 when skipped). */
  added: number;
  /** `-` lines in the hunks; also given when the patch is skipped as too large to publish (else 0 when skipped). */
  removed: number;
  skipped: DiffSkipReason | null;
  /** The secrets replaced in `patch` by `[REDACTED:<kind>:<hash>]` markers; empty when none (or no patch). */
  redactions: Redaction[];
}

/** Options of {@link createDiffer}. */
export interface DifferOptions {
  /** Where the last seen content lives; the caller opens and closes it. */
  store: ContentStore;
  /** Used as given: bind `component` in the caller (`log.child({ component: 'differ' })`). */
  logger?: Logger;
  /**
   * A larger patch is skipped as `too-large` (with its line counts): it must
   * fit an MQTT message the recorder accepts, and a bigger one costs every
   * stage a multi-megabyte message. Measured once redacted and JSON-escaped
   * (a file of control characters grows sixfold). A request's
   * `options.maxPatchBytes` (`diff.maxPatchBytes`) wins. Default
   * DEFAULT_MAX_PATCH_BYTES (MAX_PAYLOAD_BYTES / 4).
   */
  maxPatchBytes?: number;
  /**
   * Globs whose content never leaves this host whatever the config says
   * (`fso-agent --nodiff`): added to DEFAULT_NODIFF and to each request's
   * `options.nodiff`.
   */
  nodiff?: readonly string[];
  /**
   * Key of the HMAC behind redaction markers (`openRedactionKey`): keep one per agent (in its
   * state dir) so a reader of the diffs cannot test guesses of a short
   * password against a marker. Without it markers use plain SHA-256.
   */
  redactionKey?: Uint8Array;
  /** Heap limit of the diff worker thread (MB); default 1024. */
  workerMemoryLimitMb?: number;
  /** A diff was made in the worker thread: the seconds it took there (see DiffWorkerOptions.onDiffed). For metrics. */
  onDiffed?: (seconds: number) => void;
}

/** Diffs important files against the content last seen of them. */
export interface Differ {
  /**
   * Diffs the file as it is now against what was last seen: a create diffs
   * from empty, a delete to empty. Requests for one path run in call order.
   * Rejects only with {@link DifferClosedError} or an unexpected I/O error
   * (a {@link DiffError}); every expected problem is a `skipped` result.
   */
  diff(request: DiffRequest): Promise<DiffResult>;
  /**
   * Stores the current content without a diff (a file first seen at start);
   * a nodiff path ({@link isNodiff}, with the config's `nodiff` globs) has
   * its stored content dropped instead.
   */
  remember(path: string, maxFileBytes: number, nodiff?: readonly string[]): Promise<void>;
  /** The file moved: its last seen content moves with it, or is dropped when `newPath` is nodiff. */
  rename(oldPath: string, newPath: string, nodiff?: readonly string[]): Promise<void>;
  /** Drops what is stored of `path`. */
  forget(path: string): Promise<void>;
  /** Ends the worker thread (diffs in flight reject with {@link DifferClosedError}); waits for store writes. Idempotent. */
  close(): Promise<void>;
}

/** Bounds the worker's watchdog for a remember job (it only reads and writes). */
const REMEMBER_TIMEOUT_MS = 30_000;

const matcherOptions = { dot: true } as const;
const defaultNodiff = picomatch([...DEFAULT_NODIFF], matcherOptions);
const nodiffMatchers = new WeakMap<readonly string[], (absPath: string) => boolean>();

/** Compiles a config's nodiff globs once: with a slash against the absolute path, without one against the base name. */
function nodiffMatcher(globs: readonly string[]): (absPath: string) => boolean {
  let matcher = nodiffMatchers.get(globs);
  if (!matcher) {
    const full = globs.filter((g) => g.includes('/'));
    const base = globs.filter((g) => !g.includes('/'));
    const matchFull = full.length > 0 ? picomatch(full, matcherOptions) : () => false;
    const matchBase = base.length > 0 ? picomatch(base, matcherOptions) : () => false;
    matcher = (absPath) => matchFull(absPath) || matchBase(basename(absPath));
    nodiffMatchers.set(globs, matcher);
  }
  return matcher;
}

/**
 * True when the content of `absPath` must never leave the host (nor be kept
 * for diffs): it matches DEFAULT_NODIFF or one of `nodiff` (the config's
 * `diff.nodiff`). Its diffs are `skipped: "nodiff"`; its events keep the hash.
 *
 * @example
 * isNodiff('/srv/app/.env'); // true
 * isNodiff('/srv/app/app.conf', ['*.conf']); // true
 */
export function isNodiff(absPath: string, nodiff: readonly string[] = []): boolean {
  return defaultNodiff(absPath) || (nodiff.length > 0 && nodiffMatcher(nodiff)(absPath));
}

/** jsdiff's file headers: what a patch without hunks is. */
function headersOnly(path: string): string {
  return `--- a${path}\n+++ b${path}\n`;
}

function skippedResult(skipped: DiffSkipReason): DiffResult {
  return { patch: null, added: 0, removed: 0, skipped, redactions: [] };
}

function fromJob(result: DiffJobResult | FileJobResult): DiffResult {
  switch (result.outcome) {
    case 'patch':
      return { patch: result.patch, added: result.added, removed: result.removed, skipped: null, redactions: [] };
    case 'too-large':
      // The patch was measured, not built: its line counts are known (docs/protocol.md).
      return { patch: null, added: result.added, removed: result.removed, skipped: 'too-large', redactions: [] };
    default:
      // A jsdiff timeout, or a worker that crashed or hung on this input.
      return skippedResult('timeout');
  }
}

/**
 * Creates the differ; its worker thread starts with the first diff.
 *
 * @example
 * const differ = createDiffer({ store, logger });
 * const { patch, added, removed, skipped } = await differ.diff({ path: '/srv/app/app.conf', change: 'modify', options: config.diff });
 * await differ.close();
 * await store.close();
 */
export function createDiffer(options: DifferOptions): Differ {
  const { store } = options;
  const log = options.logger ?? createSilentLogger();
  const maxPatchBytes = options.maxPatchBytes ?? DEFAULT_MAX_PATCH_BYTES;
  const worker = createDiffWorker({ logger: options.logger, memoryLimitMb: options.workerMemoryLimitMb, onDiffed: options.onDiffed });
  const localNodiff = options.nodiff ?? [];
  /** DEFAULT_NODIFF, this host's globs, the config's. */
  const skipsContent = (path: string, configured: readonly string[]): boolean =>
    isNodiff(path, localNodiff) || (configured.length > 0 && nodiffMatcher(configured)(path));
  const tails = new Map<string, Promise<void>>();
  let closing: Promise<void> | undefined;

  /** Runs `task` after every earlier task on any of `paths`: one promise chain per path. */
  function serialize<T>(paths: readonly string[], task: () => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(new DifferClosedError());
    const earlier = paths.map((p) => tails.get(p));
    const run = Promise.allSettled(earlier).then(() => {
      if (closing) throw new DifferClosedError();
      return task();
    });
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    for (const p of paths) tails.set(p, tail);
    void tail.then(() => {
      for (const p of paths) if (tails.get(p) === tail) tails.delete(p);
    });
    return run;
  }

  /** The store is a cache of what was seen: a failing store costs a later diff, never this one. */
  async function updateStore(path: string, content: null): Promise<void> {
    try {
      await store.delete(path);
    } catch (err) {
      log.error({ err, path }, 'cannot update the content store; the next diff of this file may be wrong');
    }
  }

  /**
   * Secrets out of the patch, in slices that let the event loop run (a
   * 4 MB patch takes ~100 ms to redact); the size check again, since markers
   * can be longer than what they replace.
   */
  async function redact(result: DiffResult, diffOptions: DiffOptions, sources: { old: string; new: string }, limit: number): Promise<DiffResult> {
    if (result.patch === null) return result;
    const { text, redactions } = await redactSecretsAsync(result.patch, diffOptions.redact, { key: options.redactionKey, sources });
    if (Buffer.byteLength(JSON.stringify(text)) > limit) return { ...skippedResult('too-large'), added: result.added, removed: result.removed };
    return { ...result, patch: text, redactions };
  }

  /** Logs what the worker noticed of the store; an unexpected I/O error rejects (a {@link DiffError}). */
  function settle(path: string, job: FileJobResult, kind: 'diff' | 'remember' = 'diff'): FileJobResult {
    // A remember replaces a damaged copy before any diff uses it (the first start after an upgrade: no checksums yet).
    if (job.storedDamaged && kind === 'diff') log.warn({ path }, 'stored content failed its checksum: diffed as if nothing were stored');
    if (job.storeError) log.error({ path, reason: job.storeError }, 'cannot update the content store; the next diff of this file may be wrong');
    if (job.outcome === 'error') throw Object.assign(new Error(job.message), job.code ? { code: job.code } : {});
    return job;
  }

  /** The worker reads both contents, stores the new one and diffs: this thread never holds a whole file. */
  async function makeDiff({ path, change, options: diffOptions }: DiffRequest): Promise<DiffResult> {
    if (skipsContent(path, diffOptions.nodiff)) {
      // Not read, not kept: a copy stored before the path became nodiff goes too.
      await updateStore(path, null);
      return skippedResult('nodiff');
    }
    const limit = diffOptions.maxPatchBytes ?? maxPatchBytes;
    const job = settle(
      path,
      await worker.runFiles({
        kind: 'diff', path, storeFile: store.fileOf(path), change, maxFileBytes: diffOptions.maxFileBytes,
        oldName: `a${path}`, newName: `b${path}`, context: diffOptions.context, timeoutMs: diffOptions.timeoutMs, maxPatchBytes: limit,
      }),
    );
    switch (job.outcome) {
      case 'skipped':
        if (job.reason === 'unreadable') log.info({ path, reason: job.detail }, 'cannot read file to diff');
        return skippedResult(job.reason);
      case 'same':
        // A modify that changed no byte (touch, chmod, rewrite of the same content)
        // is a patch without hunks, like a create or delete of an empty file.
        return { patch: headersOnly(path), added: 0, removed: 0, skipped: null, redactions: [] };
      case 'patch':
        return redact(fromJob(job), diffOptions, job.sources ?? { old: '', new: '' }, limit);
      case 'too-large':
      case 'timeout':
        return fromJob(job);
      default:
        // A worker that crashed or hung on this input (its new content was stored first).
        log.warn({ path, reason: job.outcome === 'failed' ? job.reason : job.outcome }, 'diff failed, reported as timeout');
        return skippedResult('timeout');
    }
  }

  async function rememberNow(path: string, maxFileBytes: number, nodiff: readonly string[]): Promise<void> {
    if (skipsContent(path, nodiff)) return updateStore(path, null);
    // At start most files are as stored: the worker compares first, no rewrite for each.
    const job = settle(
      path,
      await worker.runFiles({
        kind: 'remember', path, storeFile: store.fileOf(path), change: 'modify', maxFileBytes,
        oldName: '', newName: '', context: 0, timeoutMs: REMEMBER_TIMEOUT_MS, maxPatchBytes: 0,
      }),
      'remember',
    );
    if (job.outcome === 'skipped' && job.reason === 'unreadable') log.info({ path, reason: job.detail }, 'cannot read file to remember');
    else if (job.outcome === 'failed') log.warn({ path, reason: job.reason }, 'cannot keep content for diffs');
  }

  async function renameNow(oldPath: string, newPath: string, nodiff: readonly string[]): Promise<void> {
    if (!skipsContent(newPath, nodiff)) return store.rename(oldPath, newPath);
    await store.delete(oldPath);
    await store.delete(newPath);
  }

  const wrap =
    (path: string) =>
    (err: unknown): never => {
      throw err instanceof DifferClosedError ? err : new DiffError(path, { cause: err });
    };

  return {
    diff: (request) => serialize([request.path], () => makeDiff(request).catch(wrap(request.path))),
    remember: (path, maxFileBytes, nodiff = []) => serialize([path], () => rememberNow(path, maxFileBytes, nodiff).catch(wrap(path))),
    rename: (oldPath, newPath, nodiff = []) => serialize([oldPath, newPath], () => renameNow(oldPath, newPath, nodiff).catch(wrap(oldPath))),
    forget: (path) => serialize([path], () => store.delete(path).catch(wrap(path))),
    close() {
      closing ??= (async () => {
        await worker.close();
        await Promise.allSettled([...tails.values()]);
      })();
      return closing;
    },
  };
}
