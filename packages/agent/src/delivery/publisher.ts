import type { MqttClient } from 'mqtt';
import { isoNow } from '@fso/common';
import type { FsoDiff, FsoEvent, FsoGap, Logger } from '@fso/common';
import { journalLine } from './journal.js';
import type { BaselineOp } from './journal.js';
import { entryBytes } from './outbox.js';
import type { Outbox, OutboxEntry } from './outbox.js';
import { Fifo } from './fifo.js';

/** An event, diff or gap message before the publisher stamps it. */
export type Unstamped<T> = Omit<T, 'id' | 'seq' | 'epoch' | 'agentId' | 'emittedAt'>;

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  client: MqttClient;
  outbox: Outbox;
  agentId: string;
  epoch: string;
  log: Logger;
  /** Resend what stays unacknowledged this long without ack progress; default 10 s. */
  resendIntervalMs?: number;
  /** At most this many messages are resent in one round. */
  resendBatch?: number;
  /** At most this many publishes await their PUBACK at once; default 1000. */
  window?: number;
  /** The outbox is full and a message was given up (the status must say so); called once per message given up. */
  onOverflow?: () => void;
  /**
   * A message was handed to the broker: `resend` when a message of its seq was
   * sent before (by this process, or by the one before a restart: the outbox's
   * messages at start count as sent), else its first send. For metrics.
   */
  onSent?: (entry: OutboxEntry, resend: boolean) => void;
}

/** Numbers, keeps and publishes every event and diff message (DESIGN.md guarantee 1). */
export interface Publisher {
  /** The last seq handed out. */
  readonly lastSeq: number;
  /**
   * Stamps id/seq/epoch and queues the message; returns its id at once.
   * `baseline` (the ops the change made to a root's baseline) is journaled in the same fsync.
   */
  publish<T extends FsoEvent | FsoDiff | FsoGap>(topic: string, message: Unstamped<T>, baseline?: { root: string; ops: readonly BaselineOp[] }): string;
  /** Journals baseline ops that go with no message (a silent first-start record). */
  journal(root: string, ops: readonly BaselineOp[]): void;
  /** The recorder acknowledged everything up to `seq`. */
  acknowledge(seq: number): void;
  /** When the oldest message not yet acknowledged was stamped (its `emittedAt`, ms since the epoch); null when every message is. */
  oldestPendingMs(): number | null;
  /** Resends everything unacknowledged (after a reconnect). */
  resendPending(): void;
  /** Resolves once queued messages are in the outbox and handed to the broker (PUBACK), or after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
  /** Stops the resend timer and flushes; idempotent: a second call returns the first call's promise. */
  close(): Promise<void>;
}

/** The `emittedAt` the publisher stamped on an entry's message, ms since the epoch; null if unreadable (a damaged outbox line). */
function stampOf(entry: OutboxEntry): number | null {
  try {
    const { emittedAt } = JSON.parse(entry.payload) as { emittedAt?: unknown };
    const ms = typeof emittedAt === 'string' ? Date.parse(emittedAt) : Number.NaN;
    return Number.isNaN(ms) ? null : ms;
  } catch {
    return null;
  }
}

/**
 * Creates the publisher: messages are appended to the outbox (fsync'd, in
 * groups) before they are published at QoS 1, and stay there until the
 * recorder's ack covers them.
 */
export function createPublisher(options: PublisherOptions): Publisher {
  const { client, outbox, agentId, epoch, log } = options;
  let seq = outbox.lastSeq;
  let queue: Array<{ seq: number; topic: string; message: Record<string, unknown> }> = [];
  let journalQueue: string[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let flushScheduled = false;
  let inFlight = 0;
  let closed = false;
  let closing: Promise<void> | undefined;
  const drained: Array<() => void> = [];
  let lastAckSeen = outbox.ackedSeq;
  let overflowing = false;
  /** The highest seq handed to the broker: a send of a seq up to it is a resend. The outbox's entries at start were sent by the process before. */
  let sentUpTo = outbox.lastSeq;
  /** The oldest pending entry's stamp, parsed once per entry (a scrape reads it, not every message). */
  let oldestStamp: { seq: number; ms: number | null } | undefined;

  // A bounded window of publishes awaiting PUBACK; the rest wait (already durable)
  // in `waiting`, so a burst never piles up unbounded in MQTT.js's memory.
  const windowSize = options.window ?? 1000;
  const waiting = new Fifo<OutboxEntry>();
  const waitingSeqs = new Set<number>();
  // A reconnect starts a new generation: PUBACKs of the old connection no longer count.
  let generation = 0;

  const pump = (): void => {
    while (inFlight < windowSize && waiting.size > 0 && client.connected) {
      const entry = waiting.shift() as OutboxEntry;
      waitingSeqs.delete(entry.seq);
      if (entry.seq <= outbox.ackedSeq) continue; // the recorder has it already
      const sentIn = generation;
      inFlight += 1;
      const resend = entry.seq <= sentUpTo;
      if (!resend) sentUpTo = entry.seq;
      options.onSent?.(entry, resend);
      client.publish(entry.topic, entry.payload, { qos: 1 }, (err) => {
        if (sentIn !== generation) return;
        inFlight -= 1;
        if (err) log.warn({ err: err.message, seq: entry.seq }, 'publish failed; it stays in the outbox');
        pump();
        if (inFlight === 0 && waiting.size === 0) drained.splice(0).forEach((resolve) => resolve());
      });
    }
  };

  /**
   * Nowhere to keep `seq` (the outbox is full, or could not be written): it is given up
   * loudly; the status announces the range and the recorder writes a gap record, so the
   * trail shows what is missing.
   */
  const giveUp = (lostSeq: number, why: 'full' | 'unwritable' = 'full'): void => {
    if (why === 'full' && (outbox.lost().length === 0 || !overflowing)) {
      log.error({ pendingBytes: outbox.pendingBytes, seq: lostSeq }, 'outbox full: changes are being lost (is the recorder running?)');
    }
    overflowing = true;
    outbox.markLost(lostSeq);
    options.onOverflow?.();
  };

  const send = (entry: OutboxEntry): void => {
    if (waitingSeqs.has(entry.seq)) return;
    waiting.push(entry);
    waitingSeqs.add(entry.seq);
    pump();
  };

  const flushQueue = async (): Promise<void> => {
    const batch = queue;
    const journal = journalQueue;
    queue = [];
    journalQueue = [];
    if (batch.length === 0 && journal.length === 0) return;
    const emittedAt = isoNow();
    // The limit counts this batch too: a burst published within one turn would all be kept past it.
    let bytes = outbox.pendingBytes;
    const entries: OutboxEntry[] = [];
    const overLimit: number[] = [];
    for (const b of batch) {
      if (bytes >= outbox.maxBytes) {
        overLimit.push(b.seq);
        continue;
      }
      const entry = { seq: b.seq, topic: b.topic, payload: JSON.stringify({ ...b.message, emittedAt }) };
      bytes += entryBytes(entry);
      entries.push(entry);
    }
    try {
      await outbox.append(entries, journal);
    } catch (err) {
      // Not kept, so never published: announced as lost rather than left a silent hole.
      if (entries.length > 0) {
        log.error({ err, fromSeq: entries[0]?.seq, toSeq: entries[entries.length - 1]?.seq }, 'outbox could not be written: these changes are announced as lost');
      }
      for (const entry of entries) giveUp(entry.seq, 'unwritable');
      throw err;
    } finally {
      // Given up only now: a lost seq recorded before the lower seqs of its batch are on disk
      // would, after a crash in between, leave those lower seqs neither kept nor announced.
      for (const seq of overLimit) giveUp(seq);
    }
    for (const entry of entries) send(entry);
  };

  const schedule = (): void => {
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      flushing = flushing.then(flushQueue).catch((err: unknown) => {
        // The outbox could not keep them: never publish what could be lost.
        log.error({ err }, 'cannot write the outbox; messages are not published');
      });
    });
  };

  const resendTimer = setInterval(() => {
    if (outbox.pendingCount > 0 && outbox.ackedSeq === lastAckSeen && client.connected) {
      const pending = outbox.pending();
      log.info({ pending: pending.length, ackedSeq: outbox.ackedSeq }, 'no ack progress; resending the oldest unacknowledged messages');
      for (const entry of pending.slice(0, options.resendBatch ?? 5000)) send(entry);
    }
    lastAckSeen = outbox.ackedSeq;
  }, options.resendIntervalMs ?? 10_000);
  resendTimer.unref();

  return {
    get lastSeq() {
      return seq;
    },
    publish(topic, message, baseline) {
      if (closed) throw new Error('publisher is closed');
      seq += 1;
      if (baseline) for (const op of baseline.ops) journalQueue.push(journalLine(seq, baseline.root, op));
      const id = `${epoch}-${seq}`;
      if (outbox.full) {
        giveUp(seq);
        schedule();
        return id;
      }
      if (overflowing) {
        overflowing = false;
        log.warn({ lost: outbox.lost() }, 'outbox has room again');
      }
      // DESIGN.md's field order: schema, id, agentId, epoch, seq, then the rest.
      const { schema, ...rest } = message;
      queue.push({ seq, topic, message: { schema, id, agentId, epoch, seq, ...rest } });
      schedule();
      return id;
    },
    journal(root, ops) {
      if (closed || ops.length === 0) return;
      for (const op of ops) journalQueue.push(journalLine(null, root, op));
      schedule();
    },
    acknowledge(ackSeq) {
      outbox.acknowledge(ackSeq);
    },
    oldestPendingMs() {
      const oldest = outbox.oldest();
      if (!oldest) return null;
      if (oldestStamp?.seq !== oldest.seq) oldestStamp = { seq: oldest.seq, ms: stampOf(oldest) };
      return oldestStamp.ms;
    },
    resendPending() {
      generation += 1;
      inFlight = 0;
      waiting.clear();
      waitingSeqs.clear();
      const pending = outbox.pending();
      if (pending.length > 0) log.info({ pending: pending.length }, 'resending unacknowledged messages');
      for (const entry of pending) send(entry);
    },
    async flush(timeoutMs = 5000) {
      await new Promise((resolve) => setImmediate(resolve));
      await flushing;
      if (inFlight === 0 && (waiting.size === 0 || !client.connected)) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        drained.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
    close() {
      // A second call waits for the same flush (chokidar's habit), not for nothing.
      if (!closing) {
        closed = true;
        clearInterval(resendTimer);
        closing = this.flush();
      }
      return closing;
    },
  };
}
