/**
 * A stream between a client's connection and aedes that reads each MQTT
 * packet's fixed header as the bytes arrive, before aedes parses anything:
 *
 * - a packet announcing more than `maxPacketBytes` (or a first packet, the
 *   CONNECT, over `maxConnectBytes`) closes the connection at its header, so
 *   its payload is never buffered (aedes has no such limit: moscajs/aedes#831);
 * - a first packet that is not a CONNECT, or a remaining length over four
 *   bytes (MQTT-2.2.3), closes it too;
 * - a SUBSCRIBE or UNSUBSCRIBE carrying more topic filters than
 *   `maxSubscriptions` closes it as the filters are counted, before aedes
 *   sees the whole packet (aedes does work per filter: 50,000 filters in one
 *   packet stalled it for seconds);
 * - PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets draw from a token bucket: when
 *   it is empty the guard stops reading the socket until a token is back, so
 *   a flooding client is slowed by TCP backpressure to the rate (nothing is
 *   dropped, nothing forged).
 */
import { Duplex } from 'node:stream';
import { FilterCounter } from './filterCounter.js';

/** Limits enforced by {@link GuardedConnection}. */
export interface PacketLimits {
  /** Largest remaining length (variable header + payload) of any packet. */
  maxPacketBytes: number;
  /** Largest remaining length of the first packet (CONNECT: ids, credentials, will). */
  maxConnectBytes: number;
  /** PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets per second per connection (burst: one second's worth); 0 for no limit. */
  maxPublishRate: number;
  /** Most topic filters in one SUBSCRIBE or UNSUBSCRIBE. */
  maxSubscriptions: number;
}

/** Why a connection was cut. */
export interface PacketViolation {
  reason: 'packet-too-large' | 'not-connect' | 'malformed-length' | 'too-many-filters';
  /** The packet type (high nibble of the first byte). */
  packetType: number;
  /** The remaining length the header announced, when it got that far. */
  announcedBytes?: number;
  limitBytes?: number;
  /** For `too-many-filters`: the filters counted when the limit was passed, and the limit. */
  filters?: number;
  limitFilters?: number;
}

/** Callbacks of a guarded connection (logging lives with the caller). */
export interface GuardEvents {
  /** `connection` is being destroyed for `violation`. */
  onViolation(violation: PacketViolation, connection: GuardedConnection): void;
  /** The publish rate was exceeded and reading is paused (at most once per {@link THROTTLE_REPORT_MS}). */
  onThrottle?(connection: GuardedConnection): void;
}

/** How often a connection that keeps hitting the publish rate is reported. */
export const THROTTLE_REPORT_MS = 10_000;

const CONNECT = 1;
const PUBLISH = 3;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;

type Phase = 'type' | 'length' | 'body';

/** The guarded side of a client connection; aedes reads and writes this instead of the socket. */
export class GuardedConnection extends Duplex {
  /** The client's address, for log lines (aedes sees this stream, not the socket). */
  readonly remoteAddress: string | undefined;
  /** `mqtt`, `mqtts`, `ws` or `wss`. */
  readonly transport: string;

  readonly #inner: Duplex;
  readonly #limits: PacketLimits;
  readonly #events: GuardEvents;
  #phase: Phase = 'type';
  #first = true;
  #packetType = 0;
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #remaining = 0;
  /** Set while the body of a SUBSCRIBE or UNSUBSCRIBE is read. */
  #filterCount: FilterCounter | null = null;
  #tokens: number;
  #refilledAt = Date.now();
  /** Bytes held back while throttled, starting at a PUBLISH's first byte. */
  #held: Buffer | null = null;
  #throttleTimer: NodeJS.Timeout | undefined;
  #throttled = false;
  #reportedAt = -Infinity;
  #wantsData = true;
  #innerEnded = false;
  /** The callback of a write waiting for the socket to drain. */
  #pendingWrite: ((error?: Error | null) => void) | undefined;
  /** The socket is corked until the end of this turn of the event loop (see {@link #batch}). */
  #batching = false;

  constructor(inner: Duplex, limits: PacketLimits, events: GuardEvents, info: { remoteAddress?: string; transport: string }) {
    super({ allowHalfOpen: false });
    this.#inner = inner;
    this.#limits = limits;
    this.#events = events;
    this.#tokens = limits.maxPublishRate;
    this.remoteAddress = info.remoteAddress;
    this.transport = info.transport;
    inner.on('data', (chunk: Buffer) => this.#receive(chunk));
    inner.on('end', () => {
      this.#innerEnded = true;
      if (this.#held === null) this.push(null);
    });
    inner.on('error', (err) => this.destroy(err));
    // After a clean 'end', what is still buffered here must reach aedes (a PUBLISH then DISCONNECT then FIN).
    inner.on('close', () => {
      if (!this.#innerEnded) this.destroy();
    });
    inner.on('drain', () => this.#flushed(null));
  }

  override _read(): void {
    this.#wantsData = true;
    if (!this.#throttled) this.#inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#inner.destroyed) {
      callback(new Error('connection closed'));
      return;
    }
    this.#batch();
    if (this.#inner.write(chunk)) callback();
    else this.#pendingWrite = callback;
  }

  /**
   * Packets written in one turn of the event loop reach the socket as one
   * writev at its end: in a burst the broker writes a PUBLISH to the
   * recorder and a PUBACK to the agent per change, and one writev(2) per
   * packet was a third of its busy time (Mosquitto, the bench's yardstick,
   * batches its writes the same way). The data leaves in the same turn, so
   * nothing waits for a timer.
   */
  #batch(): void {
    if (this.#batching) return;
    this.#batching = true;
    this.#inner.cork();
    setImmediate(() => this.#flushBatch());
  }

  /** Hands the turn's packets to the socket now (also before it is ended or destroyed: a refusal's CONNACK must go out). */
  #flushBatch(): void {
    if (!this.#batching) return;
    this.#batching = false;
    if (!this.#inner.destroyed) this.#inner.uncork();
  }

  /**
   * mqtt-packet corks this stream while it writes a packet in pieces (fixed
   * header, length, topic, id, payload): handed on one by one, every piece
   * was a write(2) of its own, a third of the broker's CPU in a burst. The
   * corked pieces go to the socket together, with the turn's other packets.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.#inner.destroyed) {
      callback(new Error('connection closed'));
      return;
    }
    this.#batch();
    let flowing = true;
    for (const { chunk } of chunks) flowing = this.#inner.write(chunk);
    if (flowing) callback();
    else this.#pendingWrite = callback;
  }

  #flushed(error: Error | null): void {
    const callback = this.#pendingWrite;
    this.#pendingWrite = undefined;
    callback?.(error);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#flushBatch();
    this.#inner.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.#throttleTimer);
    this.#held = null;
    this.#flushed(new Error('connection closed'));
    this.#flushBatch();
    this.#inner.destroy();
    callback(error);
  }

  #receive(chunk: Buffer): void {
    if (this.destroyed) return;
    if (this.#held !== null) {
      // Only reachable if data was already in flight when reading paused; it waits its turn.
      this.#held = Buffer.concat([this.#held, chunk]);
      return;
    }
    this.#scan(chunk);
  }

  /** Walks `chunk` header by header; passes on what is allowed, stops at a violation or an empty bucket. */
  #scan(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.#phase === 'body') {
        const skip = Math.min(this.#remaining, chunk.length - i);
        if (this.#filterCount && !this.#filterCount.feed(chunk, i, i + skip)) {
          const { filters } = this.#filterCount;
          return this.#violate({ reason: 'too-many-filters', packetType: this.#packetType, filters, limitFilters: this.#limits.maxSubscriptions });
        }
        i += skip;
        this.#remaining -= skip;
        if (this.#remaining === 0) {
          this.#phase = 'type';
          this.#filterCount = null;
        }
        continue;
      }
      const byte = chunk[i] as number;
      if (this.#phase === 'type') {
        this.#packetType = byte >> 4;
        if (this.#first && this.#packetType !== CONNECT) return this.#violate({ reason: 'not-connect', packetType: this.#packetType });
        const rated = this.#packetType === PUBLISH || this.#packetType === SUBSCRIBE || this.#packetType === UNSUBSCRIBE;
        if (rated && !this.#takeToken()) {
          this.#hold(chunk, i);
          return;
        }
        this.#phase = 'length';
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
        i += 1;
        continue;
      }
      // phase 'length': the remaining length, 7 bits per byte, at most 4 bytes (MQTT-2.2.3).
      this.#length += (byte & 0x7f) * this.#multiplier;
      this.#multiplier *= 128;
      this.#lengthBytes += 1;
      i += 1;
      if (byte & 0x80) {
        if (this.#lengthBytes === 4) return this.#violate({ reason: 'malformed-length', packetType: this.#packetType });
        continue;
      }
      const limit = this.#first ? this.#limits.maxConnectBytes : this.#limits.maxPacketBytes;
      if (this.#length > limit) {
        return this.#violate({ reason: 'packet-too-large', packetType: this.#packetType, announcedBytes: this.#length, limitBytes: limit });
      }
      this.#first = false;
      this.#remaining = this.#length;
      this.#phase = this.#remaining === 0 ? 'type' : 'body';
      const filtered = this.#packetType === SUBSCRIBE || this.#packetType === UNSUBSCRIBE;
      this.#filterCount = filtered && this.#remaining > 0 ? new FilterCounter(this.#packetType === SUBSCRIBE, this.#limits.maxSubscriptions) : null;
    }
    this.#forward(chunk);
  }

  #forward(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.push(bytes)) {
      this.#wantsData = false;
      this.#inner.pause();
    }
  }

  #takeToken(): boolean {
    const rate = this.#limits.maxPublishRate;
    if (rate <= 0) return true;
    const now = Date.now();
    this.#tokens = Math.min(rate, this.#tokens + ((now - this.#refilledAt) / 1000) * rate);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  /** Passes `chunk` up to `at`, keeps the rest, stops reading until a token is back. */
  #hold(chunk: Buffer, at: number): void {
    this.#forward(chunk.subarray(0, at));
    this.#held = chunk.subarray(at);
    this.#inner.pause();
    const now = Date.now();
    if (now - this.#reportedAt >= THROTTLE_REPORT_MS) {
      this.#reportedAt = now;
      this.#events.onThrottle?.(this);
    }
    this.#throttled = true;
    const waitMs = Math.ceil(((1 - this.#tokens) / this.#limits.maxPublishRate) * 1000);
    this.#throttleTimer = setTimeout(() => this.#release(), Math.max(1, waitMs));
  }

  #release(): void {
    const held = this.#held;
    this.#held = null;
    if (held === null || this.destroyed) return;
    this.#scan(held);
    if (this.#held !== null) return; // throttled again
    this.#throttled = false;
    if (this.#innerEnded) this.push(null);
    else if (this.#wantsData) this.#inner.resume();
  }

  #violate(violation: PacketViolation): void {
    this.#events.onViolation(violation, this);
    this.destroy();
  }
}
