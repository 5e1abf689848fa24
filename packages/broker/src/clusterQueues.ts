import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';

// aedes-persistence-redis 11.2.2's own code and libraries, resolved from its folder: the queue this
// module writes is read back by that code (outgoingStream, the QoS 2 paths), so it must encode with
// the same msgpack-lite and the same packet class, and name its keys the same way.
const upstream = createRequire(createRequire(import.meta.url).resolve('aedes-persistence-redis'));
const msgpack = upstream('msgpack-lite') as { encode(value: unknown): Buffer; decode(buffer: Buffer): unknown };
const { Packet } = upstream('aedes-persistence') as { Packet: new (packet: object) => object };
const CallBackPersistence = (upstream('aedes-persistence/callBackPersistence.js') as { CallBackPersistence: new (factory: (opts: unknown) => object, opts: unknown) => object })
  .CallBackPersistence;
const hashLru = upstream('hashlru') as (max: number) => MessageIdCache;
const AsyncRedisPersistence = upstream('./asyncPersistence.js') as new (opts: { conn: Redis; maxSessionDelivery: number }) => UpstreamPersistence;

/** What aedes hands the outgoing-queue methods (aedes 1.2 lib/client.js, lib/handlers/*.js). */
interface QueuedPacket {
  cmd?: string;
  qos?: number;
  messageId?: number;
  brokerId?: string;
  brokerCounter?: number;
}

interface UpstreamPersistence {
  outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: QueuedPacket): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: QueuedPacket): Promise<unknown>;
}

/** hashlru 2, which aedes-persistence-redis uses for the same map. */
interface MessageIdCache {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  remove(key: string): void;
}

/** The scripts below, as ioredis commands (`defineCommand`). */
interface QueueCommands {
  fsoEnqueue(numberOfKeys: number, ...keysThenArgs: Array<string | Buffer | number>): Promise<unknown>;
  fsoPubackBuffer(list: string, packetKey: string, countKey: string): Promise<Buffer | null>;
}

// The key names of aedes-persistence-redis 11.2.2 (asyncPersistence.js, outgoingKey, outgoingIdKey, packetKey, packetCountKey).
const outgoingKey = (clientId: string): string => `outgoing:${encodeURIComponent(clientId)}`;
const outgoingIdKey = (clientId: string, messageId: number | undefined): string => `outgoing-id:${encodeURIComponent(clientId)}:${messageId}`;
const packetKey = (brokerId: string | undefined, brokerCounter: number | undefined): string => `packet:${brokerId}:${brokerCounter}`;
const countKeyOf = (packet: string): string => `${packet}:offlineCount`;

/**
 * A QoS 1/2 message queued for persistent subscribers, in one round trip: the
 * packet, its count of subscribers, and its key at the tail of each one's list.
 * KEYS: packet key, count key, then one list per subscriber. ARGV: the packet.
 */
const ENQUEUE = `
redis.call('MSET', KEYS[1], ARGV[1], KEYS[2], #KEYS - 2)
for i = 3, #KEYS do
  redis.call('RPUSH', KEYS[i], KEYS[1])
end`;

/**
 * A PUBACK, in one round trip: the packet as last sent, its key out of the
 * session's list (the first match: a key is in a list once per delivery, and
 * PUBACKs come about in the list's order, see firstMatchLrem in cluster.ts),
 * and the packet and its count deleted once its last subscriber acknowledged.
 * KEYS: the session's list, the packet key, the count key. Returns the packet, or nil.
 */
const PUBACK = `
local packet = redis.call('GET', KEYS[2])
redis.call('LREM', KEYS[1], 1, KEYS[2])
if packet and redis.call('DECR', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
end
return packet`;

/**
 * aedes-persistence-redis 11.2.2 with the QoS 1 queue of a persistent session
 * in fewer Redis round trips. Upstream, each message for the recorder cost its
 * node about six commands in turn, each waiting for the one before (measured:
 * docs/scaling.md, "Where the cluster's time goes"), and a PUBACK four:
 * - the enqueue: MSET, then one RPUSH per subscriber, now one script
 *   (https://github.com/moscajs/aedes-persistence-redis/blob/v11.2.2/asyncPersistence.js#L426-L454);
 * - a PUBACK: GET, LREM, DECR, DEL, now one script
 *   (https://github.com/moscajs/aedes-persistence-redis/blob/v11.2.2/asyncPersistence.js#L463-L505).
 * The data in Redis is the same, key for key and byte for byte, so the
 * upstream code still reads it: a session's replay after a reconnect or a
 * node's SIGKILL (outgoingStream), and QoS 2 (a PUBREL re-keys the message,
 * upstream's updateWithClientData), which stays upstream's code. This
 * persistence is created without `packetTTL`, so upstream's EXPIREs never ran.
 */
class QuickQueuePersistence extends AsyncRedisPersistence {
  readonly #db: Redis & QueueCommands;
  /** PUBACK packet id → packet key, for QoS 1 deliveries; upstream's own map (private) keeps QoS 2's. */
  readonly #messageIds = hashLru(100_000);

  constructor(db: Redis & QueueCommands, conn: Redis, maxSessionDelivery: number) {
    super({ conn, maxSessionDelivery });
    this.#db = db;
  }

  override async outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: QueuedPacket): Promise<void> {
    if (!subs || subs.length === 0) return;
    const key = packetKey(packet.brokerId, packet.brokerCounter);
    const lists = subs.map((sub) => outgoingKey(sub.clientId));
    await this.#db.fsoEnqueue(2 + lists.length, key, countKeyOf(key), ...lists, msgpack.encode(new Packet(packet)));
  }

  override async outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void> {
    const idKey = outgoingIdKey(client.id, packet.messageId);
    if (!isQos1Publish(packet)) {
      // Upstream maps this id now: a QoS 1 mapping of it left here (a session gone before its PUBACK) would shadow it.
      this.#messageIds.remove(idKey);
      return super.outgoingUpdate(client, packet);
    }
    // As upstream: the packet stored again with its packet id, which a replay sends it with (MQTT-4.4.0-1).
    const key = packetKey(packet.brokerId, packet.brokerCounter);
    this.#messageIds.set(idKey, key);
    if ((await this.#db.set(key, msgpack.encode(packet))) !== 'OK') throw new Error('no such packet');
  }

  override async outgoingClearMessageId(client: { id: string }, packet: QueuedPacket): Promise<unknown> {
    const idKey = outgoingIdKey(client.id, packet.messageId);
    const key = this.#messageIds.get(idKey);
    if (key === undefined) return super.outgoingClearMessageId(client, packet);
    this.#messageIds.remove(idKey);
    // Upstream, a packet already gone (its count at 0) left the list entry and DECRed a key named ''; here the entry goes.
    const stored = await this.#db.fsoPubackBuffer(outgoingKey(client.id), key, countKeyOf(key));
    if (stored === null) return undefined;
    // aedes emits it as the 'ack' event's packet.
    const acknowledged = msgpack.decode(stored) as QueuedPacket;
    acknowledged.messageId = packet.messageId;
    return acknowledged;
  }
}

/** A publish aedes is about to send at QoS 1 (or downgraded to 0 by the subscription), with its packet id. */
function isQos1Publish(packet: QueuedPacket): boolean {
  return packet.cmd === 'publish' && packet.qos !== 2 && 'brokerId' in packet && 'messageId' in packet;
}

/**
 * aedes's persistence for a cluster node: aedes-persistence-redis 11 on
 * `conn`, with its QoS 1 queue on the scripts above, run on `db` (`conn` may
 * be a proxy of it, see firstMatchLrem).
 */
export function createClusterPersistence(db: Redis, conn: Redis, maxSessionDelivery: number): object {
  db.defineCommand('fsoEnqueue', { lua: ENQUEUE });
  db.defineCommand('fsoPuback', { numberOfKeys: 3, lua: PUBACK });
  const commands = db as Redis & QueueCommands;
  return new CallBackPersistence(() => new QuickQueuePersistence(commands, conn, maxSessionDelivery), {});
}
