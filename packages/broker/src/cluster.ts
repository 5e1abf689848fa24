import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from '@fso/common';
import { createClusterPersistence } from './clusterQueues.js';
import { BrokerClusterError } from './errors.js';
import { drain, trackPending } from './storage.js';

const require = createRequire(import.meta.url);
const mqemitterRedis = require('mqemitter-redis') as (opts: RedisOptions) => object;

/** What a broker node of a cluster takes from Redis. */
export interface ClusterStore {
  readonly redisUrl: string;
  /** aedes's `mq`: publishes reach the subscribers of every node (mqemitter-redis). */
  readonly mq: object;
  /** aedes's `persistence`: retained messages, sessions, subscriptions and queues shared by every node (aedes-persistence-redis). */
  readonly persistence: object;
  /** Closes the Redis connections (after aedes closed, which closes `mq`). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Connects a broker node to the cluster's Redis (issue 15 §2): Aedes's own
 * clustering, where every node shares the message bus and the persistence,
 * so an agent on one node and the recorder on another see each other, a
 * retained config pushed on one node is what an agent on another receives,
 * and a persistent session's queue follows its client to whichever node it
 * reconnects to. The in-memory indexes of a single broker
 * (outgoingQueues.ts, retainedIndex.ts) are not used: their state would be
 * one node's only.
 *
 * @throws {BrokerClusterError} when Redis does not answer within 5 s.
 */
export async function openCluster(redisUrl: string, log: Logger): Promise<ClusterStore> {
  const connect = (): Redis => new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: null, connectTimeout: 5000 });
  const db = connect();
  const all = [db];
  try {
    await Promise.all(all.map((c) => c.connect()));
    await db.ping();
  } catch (err) {
    for (const c of all) c.disconnect();
    throw new BrokerClusterError(redisUrl, err);
  }
  for (const c of all) c.on('error', (err: Error) => log.warn({ err, redis: redisUrl }, 'redis connection error; ioredis reconnects'));
  // mqemitter-redis opens its own two connections (a subscribed connection cannot publish); aedes closes them with mq.
  // No ready check: ioredis's INFO on a connection that already sent SUBSCRIBE (queued before it connected)
  // is refused in subscriber mode, and the refusal surfaced as an uncaught exception (seen under load in CI).
  const mq = mqemitterRedis(redisOptionsOf(redisUrl));
  // aedes does not wait for some writes (a client's will on close): keep them, so close() can let them finish first.
  const pending = new Set<Promise<unknown>>();
  // maxSessionDelivery: a reconnecting session gets its whole queue (`LRANGE 0 -1`), not the first 1,001 (the
  // default, 1000, is LRANGE's last index): the rest were never sent, and their entries stayed ahead of every LREM.
  // deliveryWindow.ts paces that replay. A QoS 1 enqueue and PUBACK are one round trip each (clusterQueues.ts).
  const persistence = trackPending(createClusterPersistence(db, firstMatchLrem(db), -1), pending);
  log.info({ redis: redisUrl }, 'cluster node: message bus and persistence in redis');
  let closing: Promise<void> | undefined;
  return {
    redisUrl,
    mq,
    persistence,
    close: () => {
      closing ??= (async () => {
        if (!(await drain(pending, 2000))) log.warn({ redis: redisUrl, pending: pending.size }, 'leaving the cluster with writes still in flight');
        await Promise.allSettled(all.map((c) => c.quit()));
      })();
      return closing;
    },
  };
}

/**
 * `db` with its LREM on a client's outgoing list (`outgoing:<clientId>`)
 * stopping at the first match. aedes-persistence-redis 11 removes an
 * acknowledged packet with `LREM outgoing:<id> 0 packet:<broker>:<n>`: a
 * count of 0 reads the whole list, whatever it finds at its head. The
 * recorder's list is every message in flight to it (17,561 at 2,000
 * events/s in the fleet benchmark), so each PUBACK cost a scan of it: 12.9 s
 * of Redis's 13.4 s of command time, 160 µs a call. A packet is in a list
 * once per delivery, and acks come in about the order of the list, so a
 * count of 1 removes the same entry after a few steps. (Upstream:
 * moscajs/aedes-persistence-redis has no issue on it yet; its #10 is the
 * general slowness of this persistence under many clients.)
 */
export function firstMatchLrem(db: Redis): Redis {
  return new Proxy(db, {
    get(target, property, receiver) {
      if (property === 'lrem') {
        return (key: string, count: number, value: string | Buffer) =>
          target.lrem(key, count === 0 && typeof key === 'string' && key.startsWith('outgoing:') ? 1 : count, value);
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** ioredis options from a `redis://[user:password@]host[:port][/db]` URL, without the ready check. */
function redisOptionsOf(redisUrl: string): RedisOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: url.port === '' ? 6379 : Number(url.port),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.pathname.length > 1 ? { db: Number(url.pathname.slice(1)) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    enableReadyCheck: false,
  };
}
