/**
 * A bound on password checks in progress. Each scrypt check costs 32 MiB and
 * ~0.1 s of a libuv thread-pool thread (4 threads, shared with file I/O), so
 * a burst of CONNECTs must not start them all at once: a few run, a few wait
 * their turn, and the rest are refused at once so their clients retry later.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CheckQueueFullError } from './errors.js';

/** Runs password checks a few at a time. */
export interface CheckQueue {
  /**
   * Runs `task` once fewer than `concurrency` tasks run, after the ones
   * already waiting.
   *
   * @throws {CheckQueueFullError} at once when `maxWaiting` tasks already wait.
   */
  run<T>(task: () => Promise<T>): Promise<T>;
  /**
   * Takes as long as {@link run} of a task of `taskMs` would take now, and is
   * refused when it would be, without running anything or taking a place:
   * what an unknown username costs, so timing does not tell which usernames exist.
   *
   * @throws {CheckQueueFullError} when {@link run} would throw.
   */
  imitate(taskMs: number): Promise<void>;
  /** Tasks running now. */
  readonly running: number;
  /** Tasks waiting for a turn now. */
  readonly waiting: number;
}

/**
 * A queue running at most `concurrency` tasks at once with at most
 * `maxWaiting` more waiting, first come first served.
 *
 * @example
 * const checks = createCheckQueue(2, 32);
 * const ok = await checks.run(() => verifyPassword(password, user.password));
 */
export function createCheckQueue(concurrency: number, maxWaiting: number): CheckQueue {
  let running = 0;
  const waiting: Array<() => void> = [];
  const isFull = (): boolean => running >= concurrency && waiting.length >= maxWaiting;

  const acquire = async (): Promise<void> => {
    if (running < concurrency) {
      running += 1;
      return;
    }
    if (isFull()) throw new CheckQueueFullError(running, waiting.length);
    // The releasing task hands its place over: `running` stays as it is.
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };

  return {
    get running() {
      return running;
    },
    get waiting() {
      return waiting.length;
    },
    run: async (task) => {
      await acquire();
      try {
        return await task();
      } finally {
        release();
      }
    },
    imitate: async (taskMs) => {
      if (isFull()) throw new CheckQueueFullError(running, waiting.length);
      // A free place: the task alone. Else about half of the running ones' time, then one
      // turn per `concurrency` tasks ahead, then the task.
      const turns = running < concurrency ? 0 : 0.5 + Math.floor(waiting.length / concurrency);
      await sleep(Math.round(taskMs * (1 + turns)), undefined, { ref: false });
    },
  };
}
