import type { EventType, FsoEvent, HashSkipReason, Logger, Origin } from '@fso/common';
import { entryFromStats, kindOf, sameInode } from './baseline.js';
import type { Baseline, Entry, FileStats } from './baseline.js';
import type { FileLooker } from './fileLooks.js';
import type { BaselineOp } from '../delivery/journal.js';
import { createLimiter } from './limiter.js';

/**
 * One change the reconciler decided on, ready to become an event message:
 * the event's own fields (from the zod schema, so never declared twice) and
 * what only the agent keeps, times as epoch ms rather than timestamps.
 */
export interface Change
  extends Pick<FsoEvent, 'type' | 'path' | 'oldPath' | 'kind' | 'size' | 'sha256' | 'origin'>,
    // Always set here (null when hashed); optional in the schema, an FSO addition to DESIGN.md.
    Required<Pick<FsoEvent, 'hashSkipped'>> {
  /** The entry's mtime, epoch ms (the event's `mtime` is its timestamp). */
  mtimeMs: number | null;
  /** When the agent first saw the change (the watcher's event), epoch ms. */
  observedAtMs: number;
  /** What the change did to the baseline, to be journaled with the event. */
  ops: BaselineOp[];
}

/** What the reconciler decided; the emitter hashes and reports it. */
export interface EmitRequest {
  type: EventType;
  path: string;
  oldPath?: string;
  stats: FileStats;
  observedAtMs: number;
  origin: Origin;
  /** Record without reporting (a first start). */
  quiet?: boolean;
  /** The path is gone already: report what was seen of it. */
  vanished?: boolean;
  /** A rename whose content changed too: hash it again. */
  rehash?: boolean;
}

/** Options of {@link ChangeEmitter}. */
export interface ChangeEmitterOptions {
  baseline: Baseline;
  hashMaxBytes: number;
  looker: FileLooker;
  log: Logger;
  sink: ChangeSink;
}

/** Where decided changes are reported. */
export interface ChangeSink {
  /** A change, in decision order, one at a time: the next waits for a promise returned (who-data being looked up). */
  change(change: Change): void | Promise<void>;
  /** A path was recorded without an event (a quiet scan: an agent's first start, a pattern change). */
  recorded?(path: string, entry: Entry): void;
}

/**
 * Hashes what the reconciler decided (at most 256 files asked at once: the
 * looker hashes them in one message to its worker, and streams big ones a
 * few at a time) and reports the changes in decision order, each with the
 * baseline ops it made.
 */
export class ChangeEmitter {
  readonly #o: ChangeEmitterOptions;
  readonly #hashLimit = createLimiter(256);
  #chain: Promise<void> = Promise.resolve();
  /** Changes emitted and not reported yet, and who waits for fewer. */
  #backlog = 0;
  #belowWaiters: Array<{ limit: number; resolve: () => void }> = [];
  /** path → the report of its last change still hashing (see {@link settling}). */
  readonly #settling = new Map<string, Promise<void>>();

  constructor(options: ChangeEmitterOptions) {
    this.#o = options;
  }

  /**
   * Resolves once fewer than `limit` changes wait to be reported: the
   * reconciler pauses on it, so a first start on 100,000 files never holds
   * 100,000 pending hashes (their promises and stats) at once.
   */
  below(limit: number): Promise<void> {
    if (this.#backlog < limit) return Promise.resolve();
    return new Promise((resolve) => this.#belowWaiters.push({ limit, resolve }));
  }

  #track(task: () => void | Promise<void>): () => Promise<void> {
    this.#backlog += 1;
    return async () => {
      try {
        await task();
      } finally {
        this.#backlog -= 1;
        if (this.#belowWaiters.length > 0) {
          const ready = this.#belowWaiters.filter((w) => this.#backlog < w.limit);
          this.#belowWaiters = this.#belowWaiters.filter((w) => this.#backlog >= w.limit);
          for (const w of ready) w.resolve();
        }
      }
    };
  }

  /** Resolves once everything emitted so far was reported. */
  drained(): Promise<void> {
    return this.#chain;
  }

  /**
   * The report of `p`'s last emitted change, while it is still hashing: the
   * baseline holds the stats it was decided on until then, not the size and
   * mtime it will settle on (the state that was hashed, maybe newer).
   */
  settling(p: string): Promise<void> | undefined {
    return this.#settling.get(p);
  }

  /** Reports a delete (the baseline forgets the path at once). */
  emitDelete(p: string, entry: Entry, observedAtMs: number, origin: Origin): void {
    this.#o.baseline.delete(p);
    const change: Change = {
      type: 'delete', path: p, kind: entry.kind, size: null, mtimeMs: null, sha256: null,
      hashSkipped: entry.kind === 'file' ? 'vanished' : 'not-regular', origin, observedAtMs, ops: [['del', p]],
    };
    this.#chain = this.#chain.then(this.#track(() => this.#o.sink.change(change))).catch((err: unknown) => this.#o.log.error({ err }, 'emit failed'));
  }

  /** Hashes (bounded concurrency) and reports in decision order; updates the baseline. */
  emit(d: EmitRequest): void {
    const kind = kindOf(d.stats);
    const regular = d.stats.isFile();
    const known = d.type === 'rename' ? this.#o.baseline.get(d.path) : undefined;
    const wantsHash = regular && !d.vanished && (d.type !== 'rename' || d.rehash === true || !known?.sha256);
    const hashing = wantsHash ? this.#hashLimit(() => this.#o.looker.hash(d.path, this.#o.hashMaxBytes)) : undefined;
    if (!d.vanished) this.#o.baseline.set(d.path, entryFromStats(d.stats, known?.sha256 ?? null));
    const run = async (): Promise<void> => {
      let sha256: string | null = null;
      let skipped: HashSkipReason | null;
      let size: number | null = kind === 'directory' ? null : d.stats.size;
      let mtimeMs = d.stats.mtimeMs;
      if (!regular) skipped = 'not-regular';
      else if (d.vanished) skipped = 'vanished';
      else if (hashing) {
        const hashed = await hashing;
        sha256 = hashed.sha256;
        skipped = hashed.skipped;
        size = hashed.size ?? size;
        // Written to since the lstat: report the state that was hashed, not a mix of two.
        if (hashed.mtimeMs !== undefined && hashed.mtimeMs > mtimeMs) mtimeMs = hashed.mtimeMs;
      } else {
        sha256 = known?.sha256 ?? null;
        skipped = sha256 === null ? 'unreadable' : null;
      }
      const current = this.#o.baseline.get(d.path);
      const settled =
        current && sameInode(current, d.stats) ? { ...current, sha256, mtimeMs: Math.max(current.mtimeMs, mtimeMs), size: size ?? current.size } : undefined;
      if (settled) this.#o.baseline.set(d.path, settled);
      const ops: BaselineOp[] = d.type === 'rename' && d.oldPath ? [['mv', d.oldPath, d.path]] : [];
      if (settled) ops.push(['set', d.path, settled]);
      if (d.quiet) {
        if (settled) this.#o.sink.recorded?.(d.path, settled);
        return;
      }
      await this.#o.sink.change({
        type: d.type, path: d.path, ...(d.oldPath ? { oldPath: d.oldPath } : {}), kind, size, mtimeMs,
        sha256, hashSkipped: sha256 === null ? (skipped ?? 'unreadable') : null, origin: d.origin, observedAtMs: d.observedAtMs, ops,
      });
    };
    const done = this.#chain.then(this.#track(run)).catch((err: unknown) => this.#o.log.error({ err, path: d.path }, 'emit failed'));
    this.#chain = done;
    if (!hashing) return;
    this.#settling.set(d.path, done);
    void done.then(() => {
      if (this.#settling.get(d.path) === done) this.#settling.delete(d.path);
    });
  }
}
