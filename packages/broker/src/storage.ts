import { mkdir } from 'node:fs/promises';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import createLevelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import type { Logger } from '@fso/common';
import { BrokerStorageError } from './errors.js';

/** How long {@link Storage.close} waits for writes still in flight before it closes the database anyway. */
const DRAIN_TIMEOUT_MS = 2000;

/** The on-disk persistence of one broker run. */
export interface Storage {
  readonly dataDir: string;
  /** What aedes takes as its `persistence` option. */
  readonly persistence: object;
  /**
   * Waits for the writes aedes started (a last will published while the
   * broker closed its clients, a QoS 1 message being queued for an offline
   * session), then closes the database so the dir can be reopened at once.
   */
  close(): Promise<void>;
}

/**
 * Opens (creating it 0700 if missing) the LevelDB database in `dataDir` that
 * keeps retained messages, persistent sessions, their subscriptions and their
 * queued QoS 1/2 messages across restarts.
 *
 * @throws {BrokerStorageError} when the dir cannot be created or the database
 *   cannot be opened (not a directory, no permission, locked by another broker).
 */
export async function openStorage(dataDir: string, log: Logger): Promise<Storage> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new BrokerStorageError(dataDir, err);
  }
  const db = new Level(dataDir);
  try {
    await db.open();
  } catch (err) {
    throw new BrokerStorageError(dataDir, err);
  }
  const pending = new Set<Promise<unknown>>();
  const persistence = trackPending(createLevelPersistence(db), pending);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const drained = await drain(pending, DRAIN_TIMEOUT_MS);
      if (!drained) log.warn({ dataDir, pending: pending.size }, 'closing the broker database with writes still in flight');
      try {
        await db.close();
      } catch (err) {
        throw new BrokerStorageError(dataDir, err);
      }
    })();
    return closing;
  };
  log.debug({ dataDir }, 'broker database open');
  return { dataDir, persistence, close };
}

/**
 * Wraps every method of `persistence` so the promises it returns are kept in
 * `pending` until they settle. aedes does not wait for some of its writes
 * (its Client#close publishes the last will and forgets it), so without this
 * closing the database would fail them or lose them.
 */
function trackPending<T extends object>(persistence: T, pending: Set<Promise<unknown>>): T {
  return new Proxy(persistence, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      // aedes requires setup() to be an AsyncFunction (it checks constructor.name): leave it as is.
      if (typeof value !== 'function' || property === 'setup') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = Reflect.apply(value, target, args);
        if (result instanceof Promise) {
          pending.add(result);
          const forget = (): void => {
            pending.delete(result);
          };
          result.then(forget, forget);
        }
        return result;
      };
    },
  });
}

/** Waits until no tracked write is in flight, or `timeoutMs` passed; true when drained. */
async function drain(pending: Set<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pending.size > 0) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...pending]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left);
      }),
    ]);
    clearTimeout(timer);
    // A settled write may start the next one in its continuation (enqueue after lookup).
    await nextMacrotask();
  }
  return true;
}
