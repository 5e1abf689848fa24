import type { Client } from 'aedes';

/** The fields of a packet aedes delivers, hands to the persistence or has acknowledged, that the window reads. */
interface WindowPacket {
  readonly qos?: number;
  readonly messageId?: number;
  readonly brokerId?: string;
  readonly brokerCounter?: number;
}

type Deliver = (packet: WindowPacket, callback: () => void) => void;

/** What aedes's Client has that the window reads or replaces (aedes 1.2 lib/client.js). */
interface WindowedClient {
  deliverQoS: Deliver;
  clean: boolean;
  conn: NodeJS.EventEmitter;
}

const keyOf = (p: WindowPacket): string => `${p.brokerId ?? ''}:${p.brokerCounter ?? 0}`;

/** One connection's QoS 1/2 deliveries: what is on the wire unacknowledged, and what waits for room. */
class ClientWindow {
  /** Live deliveries handed to aedes whose write has not finished yet (aedes calls back after the write). */
  #writing = 0;
  /** Packets of a session's replay handed to aedes, not yet given a packet id (`brokerId:brokerCounter`). */
  readonly #replaying = new Set<string>();
  /** Packet ids sent and not yet acknowledged (PUBACK, or PUBREC…PUBCOMP). */
  readonly #unacked = new Set<number>();
  /** Live deliveries waiting for room, in arrival order. */
  readonly #held: WindowPacket[] = [];
  /** The session's replay, waiting for room to send its next packet. */
  readonly #replayWaiters: Array<{ key: string; resolve: () => void }> = [];
  #closed = false;

  constructor(
    readonly size: number,
    readonly deliver: Deliver,
    /** Held live deliveries, every window of the broker together. */
    readonly tally: { waiting: number },
  ) {}

  get #full(): boolean {
    return this.#writing + this.#replaying.size + this.#unacked.size >= this.size;
  }

  /** A live delivery: sent now if there is room and nothing waits before it, else held. */
  offer(packet: WindowPacket, callback: () => void): void {
    if (this.#held.length > 0 || this.#replayWaiters.length > 0 || this.#full) {
      this.#held.push(packet);
      this.tally.waiting++;
      // The packet is in the session's queue in the persistence already (aedes queues every
      // QoS 1/2 publish for each persistent subscriber before it delivers it), so the publish
      // may complete: holding its callback would stall every delivery of the node (mqemitter's
      // concurrency) behind one slow subscriber. Later, as aedes does: called back at once, mqemitter
      // hands the next message in the same stack, and a burst overflowed it (seen in the fleet benchmark).
      setImmediate(callback);
      return;
    }
    this.#send(packet, callback);
  }

  #send(packet: WindowPacket, callback: () => void): void {
    this.#writing++;
    this.deliver(packet, () => {
      this.#writing--;
      callback();
      this.#pump();
    });
  }

  /** Resolves once the replay may hand aedes one more packet, and counts that packet until it gets its packet id. */
  async roomForReplay(packet: WindowPacket): Promise<void> {
    const key = keyOf(packet);
    if (this.#closed || (!this.#full && this.#replayWaiters.length === 0)) {
      this.#replaying.add(key);
      return;
    }
    await new Promise<void>((resolve) => this.#replayWaiters.push({ key, resolve }));
  }

  /** aedes gave a packet its id and is about to write it (persistence.outgoingUpdate). */
  sent(packet: WindowPacket): void {
    this.#replaying.delete(keyOf(packet));
    // A delivery downgraded to QoS 0 by the subscription still passes through outgoingUpdate; no ack will come for it.
    if ((packet.qos ?? 0) > 0 && packet.messageId !== undefined) this.#unacked.add(packet.messageId);
  }

  /** The persistence finished clearing packet id `messageId` (a PUBACK or PUBCOMP). */
  acked(messageId: number | undefined): void {
    if (messageId !== undefined && this.#unacked.delete(messageId)) this.#pump();
  }

  /** The connection closed: what was held stays in the session's queue, which the next connection replays. */
  close(): void {
    this.#closed = true;
    this.tally.waiting -= this.#held.length;
    this.#held.length = 0;
    // The replay goes on to aedes, whose writes fail on the closed connection and end it.
    for (const waiter of this.#replayWaiters.splice(0)) waiter.resolve();
  }

  #pump(): void {
    // The replay first: it sends what was queued before this connection, older than anything held.
    while (!this.#full && this.#replayWaiters.length > 0) {
      const waiter = this.#replayWaiters.shift() as { key: string; resolve: () => void };
      // Counted now, so the loop (and the held loop below) sees the room it takes.
      this.#replaying.add(waiter.key);
      waiter.resolve();
    }
    while (!this.#closed && !this.#full && this.#replayWaiters.length === 0 && this.#held.length > 0) {
      const packet = this.#held.shift() as WindowPacket;
      this.tally.waiting--;
      this.#send(packet, () => undefined);
    }
  }
}

/** The in-flight windows of a broker's persistent sessions, from {@link createDeliveryWindows}. */
export interface DeliveryWindows {
  /** Most QoS 1/2 messages sent to one persistent session and not yet acknowledged. */
  readonly size: number;
  /** Messages waiting for room, every session together (live deliveries; a reconnected session's queue is read as room comes). */
  readonly waiting: number;
  /** Puts `client`'s deliveries behind its window; call from preConnect, before aedes restores its subscriptions. */
  attach(client: Client): void;
  /** `persistence` with the hooks that tell the windows what was sent and acknowledged, and that pace a session's replay. */
  wrap<T extends object>(persistence: T): T;
}

/**
 * Bounds what is in flight to each persistent session (clean session off): at
 * most `size` QoS 1/2 messages sent and not yet acknowledged; further
 * messages wait, in order, and are sent as acknowledgements free the window.
 * MQTT 3.1.1 lets a server limit its in-flight messages (§4.4, its
 * non-normative comment); Mosquitto's max_inflight_messages does the same.
 *
 * Why: aedes 1.2 has no window. It writes every message to a subscriber as
 * fast as the socket takes it, and the subscriber's PUBACKs come back as fast
 * as the broker reads them. In a cluster, a PUBACK costs four Redis round
 * trips and a delivery one, so a recorder taking the whole fleet's traffic
 * had 65,535 messages unacknowledged within 50 s of a 10,000/s burst
 * (measured: docs/scaling.md). Packet ids are 16 bits; aedes hands them out in
 * turn, so the next one was still in flight (MQTT-2.3.1-2 asks for an unused
 * one), and aedes-persistence-redis, which maps a PUBACK's packet id to the
 * packet, lost the first packet's mapping: its entry stayed in the session's
 * Redis list for good, ahead of every later LREM. The single broker's
 * outgoingQueues.ts indexes by packet id the same way.
 *
 * What waits is already in the session's queue in the persistence (aedes
 * queues a QoS 1/2 publish for every persistent subscriber before it
 * delivers it), so a held message is only a note of what to send next: when
 * the connection closes it is dropped, and the session's next connection,
 * on this node or another, replays the queue, paced by the same window.
 * Clean sessions are not windowed: aedes keeps nothing of theirs by packet
 * id, and a message for them lives only in this process.
 */
export function createDeliveryWindows(size: number): DeliveryWindows {
  const windows = new WeakMap<object, ClientWindow>();
  const tally = { waiting: 0 };
  const windowOf = (client: unknown): ClientWindow | undefined =>
    typeof client === 'object' && client !== null ? windows.get(client) : undefined;

  return {
    size,
    get waiting() {
      return tally.waiting;
    },
    attach: (client) => {
      const c = client as unknown as WindowedClient;
      const deliver = c.deliverQoS;
      const window = new ClientWindow(size, (packet, callback) => deliver.call(c, packet, callback), tally);
      windows.set(client, window);
      c.conn.once('close', () => window.close());
      c.deliverQoS = (packet, callback) => {
        // clean is known once CONNECT is handled, after preConnect: read it at each delivery.
        if (c.clean || (packet.qos ?? 0) === 0) deliver.call(c, packet, callback);
        else window.offer(packet, callback);
      };
    },
    wrap: (persistence) =>
      new Proxy(persistence, {
        get(target, property, receiver) {
          const value: unknown = Reflect.get(target, property, receiver);
          if (typeof value !== 'function') return value;
          const method = value as (...args: unknown[]) => unknown;
          if (property === 'outgoingUpdate') {
            return (client: unknown, packet: WindowPacket, ...rest: unknown[]): unknown => {
              windowOf(client)?.sent(packet);
              return Reflect.apply(method, target, [client, packet, ...rest]);
            };
          }
          if (property === 'outgoingClearMessageId') {
            return async (client: unknown, packet: WindowPacket, ...rest: unknown[]): Promise<unknown> => {
              try {
                return await Reflect.apply(method, target, [client, packet, ...rest]);
              } finally {
                // Freed once the persistence forgot the id, so the next use of it cannot meet the old mapping.
                windowOf(client)?.acked(packet.messageId);
              }
            };
          }
          if (property === 'outgoingStream') {
            return (client: unknown, ...rest: unknown[]): unknown => {
              const stream = Reflect.apply(method, target, [client, ...rest]) as AsyncIterable<WindowPacket>;
              const window = windowOf(client);
              return window ? paced(stream, window) : stream;
            };
          }
          return value;
        },
      }),
  };
}

/** A session's replay (aedes's emptyQueue on connect), one packet at a time as the window has room. */
async function* paced(stream: AsyncIterable<WindowPacket>, window: ClientWindow): AsyncGenerator<WindowPacket> {
  for await (const packet of stream) {
    await window.roomForReplay(packet);
    yield packet;
  }
}
