import { gapRecordSchema } from '@fso/common';
import type { Logger } from '@fso/common';
import { auditFileName, dayOf, sealLine } from '@fso/audit-trail';
import type { AuditFileKind } from '@fso/audit-trail';
import { AuditFileSet } from './auditFileSet.js';
import type { PendingLines } from './auditFileSet.js';
import type { GapEntry, Inbound, RecordEntry } from './classify.js';
import { AuditWriteError } from './errors.js';
import { canonicalFields } from './ledger.js';
import type { AckMark, AuditLedger } from './ledger.js';

/** What one group commit wrote, and how long its writes and fsyncs took. */
export interface CommitStats {
  /** Messages taken from the queue (duplicates included). */
  messages: number;
  /** Lines appended, per kind of file. */
  lines: Partial<Record<AuditFileKind, number>>;
  seconds: number;
}

/** Options of {@link AuditWriter}. */
export interface AuditWriterOptions {
  dir: string;
  ledger: AuditLedger;
  log: Logger;
  /** How long the first queued message waits for company before a commit. */
  commitIntervalMs: number;
  /** Most entries in one commit. */
  maxBatch: number;
  /** Called after each commit is on disk (written and fsync'd), with the acks it allows and what it wrote. */
  onCommit: (acks: AckMark[], commit: CommitStats) => void;
  /** Called once when a write or fsync fails; the writer accepts nothing after. */
  onFail: (error: AuditWriteError) => void;
}

/**
 * The group-commit writer. Handlers only {@link enqueue}; one loop takes
 * everything queued, dedupes it against the ledger, appends it with one write
 * per file, fsyncs every touched file, and only then reports the acks. An
 * fsync per message would cap the recorder at disk-sync speed (MQTT.js
 * handles incoming packets one at a time).
 */
export class AuditWriter {
  readonly #options: AuditWriterOptions;
  readonly #queue: Inbound[] = [];
  readonly #files: AuditFileSet;
  readonly #lastAck = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #failed: AuditWriteError | undefined;
  #closed: Promise<void> | undefined;

  constructor(options: AuditWriterOptions) {
    this.#options = options;
    this.#files = new AuditFileSet(options.dir, options.log);
  }

  /** The error that stopped the writer, if any. */
  /** Messages waiting for the next commit. */
  get queued(): number {
    return this.#queue.length;
  }

  get failed(): AuditWriteError | undefined {
    return this.#failed;
  }

  /** Queues an entry; false when the writer has failed or closed and takes nothing more. */
  enqueue(entry: Inbound): boolean {
    if (this.#failed || this.#closed) return false;
    this.#queue.push(entry);
    if (this.#queue.length >= this.#options.maxBatch) this.#kick();
    else this.#timer ??= setTimeout(() => this.#kick(), this.#options.commitIntervalMs);
    return true;
  }

  /**
   * Queues a `gap` record for the part of `fromSeq..toSeq` of (agentId, epoch)
   * that is neither recorded nor already covered by a gap, even beyond the
   * highest seq seen so far. For gaps an agent announces (issue 3, item 1: an
   * outbox overflow).
   */
  recordGap(gap: Omit<GapEntry, 'type' | 'announced'>): boolean {
    return this.enqueue({ type: 'gap', ...gap, announced: true });
  }

  /**
   * Queues `gap` records (reason `epoch-changed`) for every seq an epoch the
   * agent has left still lacks: up to the highest seq seen or announced by its status.
   */
  closeEpoch(agentId: string, epoch: string, topic: string, receivedAt: string): boolean {
    return this.enqueue({
      type: 'gap',
      agentId,
      epoch,
      fromSeq: 1,
      toSeq: Number.MAX_SAFE_INTEGER,
      reason: 'epoch-changed',
      topic,
      receivedAt,
      announced: false,
    });
  }

  /** Commits everything queued now; resolves when it is on disk (or the writer failed). */
  async flush(): Promise<void> {
    while (this.#loop || (this.#queue.length > 0 && !this.#failed)) {
      if (!this.#loop) this.#kick();
      await this.#loop;
    }
  }

  /** Commits what is queued, then closes every file. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.flush();
      clearTimeout(this.#timer);
      await this.#files.close();
    })();
    return this.#closed;
  }

  #kick(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#loop) return;
    this.#loop = this.#drain().finally(() => {
      this.#loop = undefined;
      if (this.#queue.length > 0 && !this.#failed) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && !this.#failed) {
      const batch = this.#queue.splice(0, this.#options.maxBatch);
      try {
        const started = performance.now();
        const { acks, lines } = await this.#commit(batch);
        const seconds = (performance.now() - started) / 1000;
        this.#options.log.debug({ messages: batch.length, ms: Math.round(seconds * 1000) }, 'committed');
        this.#options.onCommit(acks, { messages: batch.length, lines, seconds });
      } catch (err) {
        const error = err instanceof AuditWriteError ? err : new AuditWriteError(this.#options.dir, 'write', { cause: err });
        this.#failed = error;
        this.#queue.length = 0;
        this.#options.onFail(error);
      }
    }
  }

  /** Writes one batch; returns the acks it allows and the lines per kind. Throws {@link AuditWriteError}. */
  async #commit(batch: Inbound[]): Promise<{ acks: AckMark[]; lines: Partial<Record<AuditFileKind, number>> }> {
    const { ledger } = this.#options;
    const files = new Map<string, PendingLines>();
    const touched = new Map<string, { duplicate: boolean }>();
    const append = (kind: AuditFileKind, record: Record<string, unknown>): void => {
      let sealed: ReturnType<typeof sealLine>;
      try {
        sealed = sealLine(record, ledger.chainTail[kind]);
      } catch (err) {
        // One message that cannot be serialized must not stop the trail for every agent.
        if (kind === 'rejected') throw err;
        const reason = `cannot be written: ${(err as Error).message}`;
        this.#options.log.warn({ topic: record.topic, reason }, 'rejected message');
        append('rejected', { topic: record.topic, reason, payload: '', payloadBytes: 0, retained: false, receivedAt: record.receivedAt });
        return;
      }
      ledger.chainTail[kind] = sealed.hash;
      ledger.apply(kind, record);
      const name = auditFileName(kind, dayOf(String(record.receivedAt)));
      let file = files.get(name);
      if (!file) files.set(name, (file = { kind, name, lines: [] }));
      file.lines.push(sealed.text);
    };
    const touch = (agentId: string, duplicate = false): void => {
      touched.set(agentId, { duplicate: duplicate || (touched.get(agentId)?.duplicate ?? false) });
    };
    const appendGaps = (gap: Omit<GapEntry, 'type' | 'announced'>): void => {
      for (const range of ledger.missing(gap.agentId, gap.epoch)) {
        const fromSeq = Math.max(range.from, gap.fromSeq);
        const toSeq = Math.min(range.to, gap.toSeq);
        if (fromSeq > toSeq) continue;
        append('events', gapRecordSchema.parse({ record: 'gap', ...gap, fromSeq, toSeq }));
        touch(gap.agentId);
      }
    };
    for (const entry of batch) {
      if (entry.type === 'rejected') {
        const { topic, reason, payload, payloadBytes, retained, receivedAt } = entry;
        if (retained && ledger.sameAsLastRejected(topic, payload, payloadBytes)) continue;
        append('rejected', { topic, reason, payload, payloadBytes, retained, receivedAt });
      } else if (entry.type === 'gap') {
        const { type: _type, announced, ...gap } = entry;
        // An announced gap may lie beyond what the ledger has seen (an outbox overflow).
        if (announced) ledger.expect(gap.agentId, gap.epoch, gap.toSeq, gap.receivedAt);
        appendGaps(gap);
      } else {
        this.#appendRecord(entry, append, appendGaps, touch);
        this.#appendLost(entry, appendGaps);
      }
    }
    await this.#files.append([...files.values()]);
    const lines: Partial<Record<AuditFileKind, number>> = {};
    for (const file of files.values()) lines[file.kind] = (lines[file.kind] ?? 0) + file.lines.length;
    return { acks: this.#acks(touched), lines };
  }

  #appendRecord(
    entry: RecordEntry,
    append: (kind: AuditFileKind, record: Record<string, unknown>) => void,
    appendGaps: (gap: Omit<GapEntry, 'type' | 'announced'>) => void,
    touch: (agentId: string, duplicate?: boolean) => void,
  ): void {
    const { ledger, log } = this.#options;
    const { agentId, epoch, seq, topic, receivedAt } = entry;
    if (agentId !== undefined && epoch !== undefined) {
      const current = ledger.currentEpoch(agentId);
      if (current !== undefined && current !== epoch && !ledger.knowsEpoch(agentId, epoch)) {
        // A new epoch means the agent's state (and outbox) is gone: what the old one still lacks can never come.
        appendGaps({ agentId, epoch: current, fromSeq: 1, toSeq: Number.MAX_SAFE_INTEGER, reason: 'epoch-changed', topic, receivedAt });
        log.warn({ agentId, oldEpoch: current, epoch }, 'agent started a new epoch');
      }
    }
    if (seq !== undefined && agentId !== undefined && epoch !== undefined) {
      if (ledger.isRecorded(agentId, epoch, seq)) {
        touch(agentId, true);
        log.debug({ agentId, epoch, seq, topic }, 'duplicate dropped');
        return;
      }
      touch(agentId);
    } else if (entry.retained && ledger.sameAsLastRetained(topic, canonicalFields(entry.fields))) {
      log.debug({ topic }, 'retained message already recorded');
      return;
    }
    append(entry.file, { ...entry.fields, record: entry.record, topic, receivedAt });
  }

  /** Gap records for the seqs a status says its agent gave up (outbox full); idempotent. */
  #appendLost(entry: RecordEntry, appendGaps: (gap: Omit<GapEntry, 'type' | 'announced'>) => void): void {
    const { agentId, epoch, lost, topic, receivedAt } = entry;
    if (agentId === undefined || epoch === undefined) return;
    for (const { fromSeq, toSeq } of lost ?? []) {
      this.#options.ledger.expect(agentId, epoch, toSeq, receivedAt);
      appendGaps({ agentId, epoch, fromSeq, toSeq, reason: 'outbox-full', topic, receivedAt });
    }
  }

  #acks(touched: Map<string, { duplicate: boolean }>): AckMark[] {
    const acks: AckMark[] = [];
    for (const [agentId, { duplicate }] of touched) {
      const mark = this.#options.ledger.ackMark(agentId);
      if (!mark || mark.seq === 0) continue;
      const key = `${mark.epoch}:${mark.seq}`;
      // A duplicate means the agent missed an ack (e.g. the recorder died between fsync and ack): send it again.
      if (duplicate || this.#lastAck.get(agentId) !== key) acks.push(mark);
      this.#lastAck.set(agentId, key);
    }
    return acks;
  }
}
