/**
 * Notices when the kernel's inotify queue has overflowed.
 *
 * Linux queues at most `fs.inotify.max_queued_events` notifications per
 * inotify instance; past that it drops every further one and queues a single
 * IN_Q_OVERFLOW. libuv reads the queue but throws IN_Q_OVERFLOW away (its
 * watch descriptor, -1, matches no handle), so neither Node's fs.watch nor
 * chokidar can tell. What is visible: libuv reads the whole queue in one go
 * and calls every fs.watch listener of the process before the event loop
 * moves on, so the notifications that arrive between two turns of the loop
 * are one read of the queue. A full queue arrives as a batch of about
 * `max_queued_events`; a loop that keeps up sees batches of a few hundred.
 *
 * Every fs.watch of a process shares one inotify instance, so one monitor
 * counts for every watched root.
 */
import { readFile } from 'node:fs/promises';

/** Where Linux says how many notifications one inotify instance queues. */
export const MAX_QUEUED_EVENTS_FILE = '/proc/sys/fs/inotify/max_queued_events';
/** The kernel's default for `fs.inotify.max_queued_events`. */
export const DEFAULT_MAX_QUEUED_EVENTS = 16_384;
/** How often the monitor notes that the event loop is alive (ms). */
const TICK_MS = 100;

/** What the monitor saw: a batch large enough that the queue may have overflowed. */
export interface OverflowSuspicion {
  /** Notifications received in one read of the queue. */
  notifications: number;
  /**
   * The last moment the event loop was known to read the queue (ms since the
   * epoch): changes after it may be missing.
   */
  sinceMs: number;
  /** When the batch was read (ms since the epoch). */
  atMs: number;
}

/** Options of {@link createOverflowMonitor}. */
export interface OverflowMonitorOptions {
  /** A batch of at least this many notifications counts as an overflow. */
  threshold: number;
  onOverflow: (suspicion: OverflowSuspicion) => void;
}

/** Counts watch notifications per turn of the event loop. */
export interface OverflowMonitor {
  readonly threshold: number;
  /** Call once per fs.watch notification (every directory watch's listener calls it). */
  note(): void;
  /** Stops the liveness tick. */
  close(): void;
}

/**
 * The kernel's queue size for new inotify instances, or null where there is
 * no inotify (not Linux, or /proc not mounted).
 */
export async function readMaxQueuedEvents(file = MAX_QUEUED_EVENTS_FILE): Promise<number | null> {
  try {
    const value = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
    return Number.isSafeInteger(value) && value > 0 ? value : null;
  } catch {
    return null;
  }
}

/**
 * The batch size that counts as an overflow for a queue of `maxQueuedEvents`:
 * half of it. A full queue holds exactly `maxQueuedEvents` notifications, but
 * libuv skips those of watches closed meanwhile, so the batch can come out
 * smaller; a loop that falls half a queue behind is worth a rescan anyway.
 */
export function overflowThreshold(maxQueuedEvents: number): number {
  return Math.max(1, Math.floor(maxQueuedEvents / 2));
}

/**
 * Starts counting.
 *
 * @example
 * const monitor = createOverflowMonitor({ threshold: overflowThreshold(16384), onOverflow: (s) => rescanEverything(s) });
 * watcher.on('raw', () => monitor.note());
 */
export function createOverflowMonitor(options: OverflowMonitorOptions): OverflowMonitor {
  let count = 0;
  let scheduled = false;
  let lastBatchMs = Date.now();
  let lastTickMs = lastBatchMs;
  /** The last tick that came on time: the loop was alive (and reading the queue) then. */
  let lastAliveMs = lastBatchMs;
  const tick = setInterval(() => {
    const now = Date.now();
    // A late tick ran after a stall (busy loop, SIGSTOP): the timers phase comes before the
    // poll phase that reads the queue, so the loop was last known alive at the tick before.
    if (now - lastTickMs <= 2 * TICK_MS) lastAliveMs = now;
    lastTickMs = now;
  }, TICK_MS);
  tick.unref();

  // setImmediate runs after the poll phase that delivered the batch: everything counted is one read.
  const check = (): void => {
    const notifications = count;
    count = 0;
    scheduled = false;
    const atMs = Date.now();
    if (notifications >= options.threshold) {
      // The loop read the queue at the later of the two; one tick earlier is on the safe side.
      options.onOverflow({ notifications, sinceMs: Math.min(atMs, Math.max(lastBatchMs, lastAliveMs - TICK_MS)), atMs });
    }
    lastBatchMs = atMs;
  };

  return {
    threshold: options.threshold,
    note() {
      count += 1;
      if (!scheduled) {
        scheduled = true;
        setImmediate(check);
      }
    },
    close() {
      clearInterval(tick);
    },
  };
}
