import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { withRetainedIndex } from './retainedIndex.js';

const require = createRequire(import.meta.url);
/** aedes-persistence's Packet (aedes-packet): what aedes expects a queued packet to be. */
const memoryPersistence = require('aedes-persistence') as (() => object) & { Packet: new (packet: object) => QueuedPacket };
const { Packet } = memoryPersistence;

/** The fields of a queued packet this store reads. */
interface QueuedPacket {
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
  cmd?: string;
}

/** One client's queue: packets in enqueue order, and an index by the packet id the broker gave each. */
interface ClientQueue {
  /** `brokerId:brokerCounter` → packet; a Map iterates in insertion order, which is delivery order. */
  packets: Map<string, QueuedPacket>;
  /** MQTT packet id → key in `packets`, for packets handed to the client and not yet acknowledged. */
  byMessageId: Map<number, string>;
}

const keyOf = (p: QueuedPacket): string => `${p.brokerId ?? ''}:${p.brokerCounter ?? 0}`;

/**
 * The outgoing queues of persistent sessions (clean session off): what
 * aedes stores per subscriber for every QoS 1/2 message until that
 * subscriber acknowledges it. The same contract as aedes-persistence's
 * in-memory store, indexed.
 *
 * Why: aedes-persistence 11 keeps each client's queue as an array and finds
 * a packet by a linear scan, once to give it a packet id (outgoingUpdate)
 * and once more, plus a splice, when it is acknowledged
 * (outgoingClearMessageId). The recorder is one persistent session that
 * receives every message of the fleet; with tens of thousands in flight each
 * delivery and each PUBACK scanned them all, so throughput fell as the
 * backlog grew (issue 15: in memory the broker drained 1,000 agents slower
 * than with LevelDB). Here each step is a Map operation.
 *
 * Why in memory even with `--data-dir`: FSO's durability is end to end. An
 * agent keeps every event in its outbox until the recorder's ack, so a
 * message queued in the broker for the recorder is resent by its agent if
 * the broker dies; writing each one to LevelDB three times (enqueue, packet
 * id, clear) bought nothing for FSO's own traffic and cost most of the
 * broker's CPU. The queues are saved when the broker closes and read back
 * when it opens (as Mosquitto saves its in-memory store at exit), so a clean
 * restart keeps them; a crash loses what was queued for sessions that are
 * not FSO recorders (a `mosquitto_sub -c`, fso-alert) — see docs/scaling.md.
 */
export class OutgoingQueues {
  readonly #clients = new Map<string, ClientQueue>();

  #queue(clientId: string): ClientQueue {
    let queue = this.#clients.get(clientId);
    if (!queue) {
      queue = { packets: new Map(), byMessageId: new Map() };
      this.#clients.set(clientId, queue);
    }
    return queue;
  }

  /** Queues `packet` for the session `sub.clientId`. */
  async outgoingEnqueue(sub: { clientId: string }, packet: object): Promise<void> {
    const copy = new Packet(packet);
    this.#queue(sub.clientId).packets.set(keyOf(copy), copy);
  }

  /** Queues `packet` for every session of `subs`. */
  async outgoingEnqueueCombi(subs: ReadonlyArray<{ clientId: string }>, packet: object): Promise<void> {
    for (const sub of subs) {
      const copy = new Packet(packet);
      this.#queue(sub.clientId).packets.set(keyOf(copy), copy);
    }
  }

  /**
   * Records the packet id a queued packet was sent with, or (QoS 2) replaces
   * a packet by the PUBREL of the same packet id. Throws `no such packet`
   * like aedes-persistence when it has neither.
   */
  async outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void> {
    const queue = this.#queue(client.id);
    const key = keyOf(packet);
    const queued = packet.brokerId === undefined ? undefined : queue.packets.get(key);
    if (queued) {
      // A packet id is reused once acknowledged, and a resend after a reconnect may give another one.
      if (queued.messageId !== undefined && queue.byMessageId.get(queued.messageId) === key) queue.byMessageId.delete(queued.messageId);
      queued.messageId = packet.messageId;
      if (packet.messageId !== undefined) queue.byMessageId.set(packet.messageId, key);
      return;
    }
    const byId = packet.messageId === undefined ? undefined : queue.byMessageId.get(packet.messageId);
    const current = byId === undefined ? undefined : queue.packets.get(byId);
    if (byId !== undefined && current && current.brokerId !== packet.brokerId) {
      // Same place in the queue (a Map keeps a key's position when its value is replaced).
      queue.packets.set(byId, packet);
      return;
    }
    throw new Error('no such packet');
  }

  /** Removes and returns the packet acknowledged with `packet.messageId`, if queued. */
  async outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<QueuedPacket | undefined> {
    const queue = this.#clients.get(client.id);
    if (!queue || packet.messageId === undefined) return undefined;
    const key = queue.byMessageId.get(packet.messageId);
    if (key === undefined) return undefined;
    queue.byMessageId.delete(packet.messageId);
    const queued = queue.packets.get(key);
    queue.packets.delete(key);
    if (queue.packets.size === 0) this.#clients.delete(client.id);
    return queued;
  }

  /** The session's queue in order, as a snapshot (aedes replays it on reconnect). */
  outgoingStream(client: { id: string }): Readable {
    return Readable.from([...(this.#clients.get(client.id)?.packets.values() ?? [])]);
  }

  /**
   * Every queue as JSON (payloads in base64), for the broker to keep across a
   * clean restart: written when it closes, read back when it opens.
   */
  toJSON(): string {
    const sessions: Array<[string, object[]]> = [];
    for (const [clientId, queue] of this.#clients) {
      sessions.push([clientId, [...queue.packets.values()].map((p) => {
        const { payload, ...rest } = p as QueuedPacket & { payload?: Buffer };
        return { ...rest, payload: (payload ?? Buffer.alloc(0)).toString('base64') };
      })]);
    }
    return JSON.stringify(sessions);
  }

  /** Puts back queues saved by {@link OutgoingQueues.toJSON} (packet ids included: aedes resends them as DUP). */
  restore(json: string): number {
    const sessions = JSON.parse(json) as Array<[string, Array<QueuedPacket & { payload: string }>]>;
    let n = 0;
    for (const [clientId, packets] of sessions) {
      const queue = this.#queue(clientId);
      for (const saved of packets) {
        const packet = new Packet({ ...saved, payload: Buffer.from(saved.payload, 'base64') });
        packet.messageId = saved.messageId;
        queue.packets.set(keyOf(packet), packet);
        if (packet.messageId !== undefined) queue.byMessageId.set(packet.messageId, keyOf(packet));
        n++;
      }
    }
    return n;
  }

  /** Packets queued, all sessions together (for tests and metrics). */
  get size(): number {
    let n = 0;
    for (const q of this.#clients.values()) n += q.packets.size;
    return n;
  }
}

const OUTGOING_METHODS = new Set(['outgoingEnqueue', 'outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId', 'outgoingStream']);

/**
 * `persistence` with its outgoing queues kept in `queues` instead: retained
 * messages, sessions, subscriptions and wills stay where `persistence` keeps
 * them (LevelDB with `--data-dir`, memory without).
 */
export function withOutgoingQueues<T extends object>(persistence: T, queues: OutgoingQueues): T {
  return new Proxy(persistence, {
    get(target, property, receiver) {
      if (typeof property === 'string' && OUTGOING_METHODS.has(property)) {
        const method = Reflect.get(queues, property, queues) as (...args: unknown[]) => unknown;
        return method.bind(queues);
      }
      return Reflect.get(target, property, receiver);
    },
  });
}

/** aedes's in-memory persistence (aedes-persistence) with {@link OutgoingQueues} and the retained index (retainedIndex.ts): the broker's store without `--data-dir`. */
export function createMemoryPersistence(): object {
  return withRetainedIndex(withOutgoingQueues(memoryPersistence(), new OutgoingQueues()));
}
