import { mkdir } from 'node:fs/promises';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import createLevelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import type { Logger } from '@fso/common';
import { BrokerStorageError } from './errors.js';
import { OutgoingQueues, withOutgoingQueues } from './outgoingQueues.js';
import { withRetainedIndex } from './retainedIndex.js';

/** Where the in-memory outgoing queues are saved at close (outside aedes-persistence-level's key space). */
const QUEUES_KEY = '~fso:outgoing-queues';

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
 * keeps retained messages, persistent sessions and their subscriptions across
 * restarts. The QoS 1/2 messages queued for persistent sessions are kept in
 * memory (see {@link OutgoingQueues}): FSO's agents resend what the recorder
 * has not acknowledged.
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
  const queues = new OutgoingQueues();
  try {
    const saved = await db.get(QUEUES_KEY);
    if (typeof saved === 'string') {
      const restored = queues.restore(saved);
      // Read once: a crash after this start must not replay them a second time.
      await db.del(QUEUES_KEY);
      log.info({ dataDir, restored }, 'queued messages of persistent sessions restored');
    }
  } catch (err) {
    if ((err as { code?: string }).code !== 'LEVEL_NOT_FOUND') {
      await db.close().catch(() => undefined);
      throw new BrokerStorageError(dataDir, err);
    }
  }
  // Outgoing queues in memory (outgoingQueues.ts says why); inside keepPublishOrder, which orders their enqueues too.
  const persistence = trackPending(keepPublishOrder(withRetainedIndex(withOutgoingQueues(createLevelPersistence(db), queues))), pending);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const drained = await drain(pending, DRAIN_TIMEOUT_MS);
      if (!drained) log.warn({ dataDir, pending: pending.size }, 'closing the broker database with writes still in flight');
      try {
        if (queues.size > 0) await db.put(QUEUES_KEY, queues.toJSON());
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

/** The fields aedes sets on a packet it publishes that {@link keepPublishOrder} reads. */
interface PublishedPacket {
  readonly qos: number;
  /** Numbered by aedes's publish(), one up from the previous publish; its dedupe compares it. */
  readonly brokerCounter: number;
}

/** A publish whose last write before delivery is in flight. */
interface Turn {
  readonly counter: number;
  /** Set once that write settled: hands its outcome back to aedes. */
  finish?: () => void;
}

/**
 * Makes the writes that aedes waits for before it delivers a publish settle in
 * publish order, so subscribers see publishes in the order aedes numbered them.
 *
 * aedes numbers each publish (`brokerCounter`), stores it (storeRetained when
 * retained, then outgoingEnqueueCombi for QoS > 0, which queues it for every
 * persistent session) and only then delivers it. Each client's dedupe drops a
 * packet numbered at or below the last one it delivered (aedes lib/client.js
 * `dedupe`). LevelDB writes run on libuv's thread pool and complete in any
 * order, so in a burst of QoS 1 publishes with one persistent session about
 * 3 % were delivered late and dropped, for every subscriber, although each
 * publisher had its PUBACK (moscajs/aedes#955: the maintainers want the
 * persistence to keep the order; PR #972, a dedupe history window, is unmerged).
 *
 * The writes still run concurrently; only the settling of a publish's last
 * write is held until every publish numbered before it settled. A publish
 * takes its turn at its first write: storeRetained, called while aedes
 * numbers it, or outgoingEnqueueCombi, called a few microtasks later, before
 * any later publish's write can have completed (subscriptionsByTopic, in
 * between, is an in-memory trie match). A turn taken by storeRetained for a
 * QoS 1/2 publish ends in its outgoingEnqueueCombi; only a failing
 * subscriptionsByTopic could stop the chain in between, and the trie fails
 * only past 100 topic levels, which limits.ts does not allow.
 *
 * QoS 0 publishes that are not retained write nothing and cannot be ordered
 * from here (moscajs/aedes#994).
 */
function keepPublishOrder<T extends object>(persistence: T): T {
  /** Turns by counter, lowest first. */
  const turns: Turn[] = [];
  const byCounter = new Map<number, Turn>();

  const take = (counter: number): Turn => {
    const known = byCounter.get(counter);
    if (known) return known;
    const turn: Turn = { counter };
    byCounter.set(counter, turn);
    let at = turns.length;
    while (at > 0 && (turns[at - 1]?.counter ?? 0) > counter) at--;
    turns.splice(at, 0, turn);
    return turn;
  };
  const release = (): void => {
    while (turns[0]?.finish) {
      const turn = turns.shift();
      if (!turn) return;
      byCounter.delete(turn.counter);
      turn.finish?.();
    }
  };
  /** Settles like `write`, once every earlier turn settled. */
  const inTurn = <R>(turn: Turn, write: Promise<R>): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      write.then(
        (value) => {
          turn.finish = () => resolve(value);
          release();
        },
        (err: unknown) => {
          turn.finish = () => reject(err);
          release();
        },
      );
    });
  /** A turn that ends without a delivery (its publish failed): later ones stop waiting for it. */
  const drop = (turn: Turn): void => {
    turn.finish = () => undefined;
    release();
  };

  return new Proxy(persistence, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || (property !== 'storeRetained' && property !== 'outgoingEnqueueCombi')) return value;
      return (...args: unknown[]): unknown => {
        const write: unknown = Reflect.apply(value, target, args);
        const packet = (property === 'storeRetained' ? args[0] : args[1]) as Partial<PublishedPacket> | undefined;
        const counter = packet?.brokerCounter;
        if (!(write instanceof Promise) || typeof counter !== 'number') return write;
        const turn = take(counter);
        // A retained QoS 1/2 publish goes on to outgoingEnqueueCombi, which ends its turn;
        // if storing it failed, aedes drops it and later publishes must not wait for it.
        if (property === 'storeRetained' && (packet?.qos ?? 0) > 0) {
          return write.catch((err: unknown) => {
            drop(turn);
            throw err;
          });
        }
        return inTurn(turn, write);
      };
    },
  });
}

/**
 * Wraps every method of `persistence` so the promises it returns are kept in
 * `pending` until they settle. aedes does not wait for some of its writes
 * (its Client#close publishes the last will and forgets it), so without this
 * closing the database would fail them or lose them.
 */
export function trackPending<T extends object>(persistence: T, pending: Set<Promise<unknown>>): T {
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
export async function drain(pending: Set<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
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
