import { GENESIS_HASH } from '@fso/audit-trail';
import type { AuditFileKind } from '@fso/audit-trail';
import { IntervalSet, missingRanges } from './intervalSet.js';
import type { SeqRange } from './intervalSet.js';

/** What the recorder knows of one epoch of one agent. */
interface EpochTrack {
  /** Seqs of event and diff records on disk. */
  recorded: IntervalSet;
  /** Seqs covered by `gap` records. */
  gaps: IntervalSet;
  /** Highest seq recorded. */
  maxSeen: number;
  /** Highest `lastSeq` a status of this epoch announced. */
  announcedLastSeq: number;
  /** `receivedAt` of the first record of this epoch: orders an agent's epochs. */
  firstSeenAt: string;
}

/** An ack high-water mark: every seq of `epoch` up to `seq` is recorded or covered by a gap. */
export interface AckMark {
  agentId: string;
  epoch: string;
  seq: number;
}

/** Fields the recorder adds to a message; a message carrying one of them is rejected. */
export const RECORDER_FIELDS = ['record', 'topic', 'receivedAt', 'prevHash', 'hash'] as const;

/** The message's own fields of a record, serialised: equal payloads give equal strings. */
export function canonicalFields(record: Record<string, unknown>): string {
  const fields: Record<string, unknown> = { ...record };
  for (const key of RECORDER_FIELDS) delete fields[key];
  return JSON.stringify(fields);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const seq = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

/**
 * Everything the recorder must remember across restarts, rebuilt from its own
 * files at start and kept current as it writes: the chain tail of each file
 * kind, which (agentId, epoch, seq) are on disk or covered by a gap, and the
 * last recorded payload of each retained topic.
 */
export class AuditLedger {
  /** Hash of the last line of each file kind (its chain tail). */
  readonly chainTail: Record<AuditFileKind, string> = { events: GENESIS_HASH, diffs: GENESIS_HASH, rejected: GENESIS_HASH };
  /** Latest `receivedAt` on disk; the recorder's clock never goes below it. */
  lastReceivedAt = '';
  readonly #agents = new Map<string, Map<string, EpochTrack>>();
  readonly #retained = new Map<string, string>();
  readonly #rejectedRetained = new Map<string, string>();

  /** Takes a record (a line of a `kind` file, or one about to be written) into account. */
  apply(kind: AuditFileKind, record: Record<string, unknown>): void {
    const receivedAt = str(record.receivedAt) ?? '';
    if (receivedAt > this.lastReceivedAt) this.lastReceivedAt = receivedAt;
    const topic = str(record.topic);
    if (kind === 'rejected') {
      if (record.retained === true && topic) this.#rejectedRetained.set(topic, rejectedKey(record.payload, record.payloadBytes));
      return;
    }
    const agentId = str(record.agentId);
    const epoch = str(record.epoch);
    switch (record.record) {
      case 'event':
      case 'diff':
        return this.#recordSeq(agentId, epoch, seq(record.seq), receivedAt);
      case 'status': {
        if (topic) this.#retained.set(topic, canonicalFields(record));
        const lastSeq = seq(record.lastSeq);
        if (!agentId || !epoch || lastSeq === undefined) return;
        const track = this.#track(agentId, epoch, receivedAt);
        track.announcedLastSeq = Math.max(track.announcedLastSeq, lastSeq);
        return;
      }
      case 'config':
        if (topic) this.#retained.set(topic, canonicalFields(record));
        return;
      case 'gap': {
        // An agent's own gap message (fso.gap/1) is sequenced like an event.
        if (record.fromSeq === undefined) return this.#recordSeq(agentId, epoch, seq(record.seq), receivedAt);
        const from = seq(record.fromSeq);
        const to = seq(record.toSeq);
        if (!agentId || !epoch || from === undefined || to === undefined || from < 1) return;
        this.#track(agentId, epoch, receivedAt).gaps.add(from, to);
        return;
      }
      default:
        return;
    }
  }

  #recordSeq(agentId: string | undefined, epoch: string | undefined, n: number | undefined, receivedAt: string): void {
    if (!agentId || !epoch || n === undefined || n < 1) return;
    const track = this.#track(agentId, epoch, receivedAt);
    track.recorded.add(n);
    track.maxSeen = Math.max(track.maxSeen, n);
  }

  /** Notes that `epoch` of `agentId` has reached at least `lastSeq` (a gap announced ahead of the records). */
  expect(agentId: string, epoch: string, lastSeq: number, receivedAt: string): void {
    const track = this.#track(agentId, epoch, receivedAt);
    track.announcedLastSeq = Math.max(track.announcedLastSeq, lastSeq);
  }

  /** True when this event or diff is already on disk. */
  isRecorded(agentId: string, epoch: string, n: number): boolean {
    return this.#agents.get(agentId)?.get(epoch)?.recorded.has(n) ?? false;
  }

  /** True when `canonical` equals the last status or config recorded for `topic`. */
  sameAsLastRetained(topic: string, canonical: string): boolean {
    return this.#retained.get(topic) === canonical;
  }

  /** True when this retained payload is the last one rejected on `topic`. */
  sameAsLastRejected(topic: string, payload: string, payloadBytes: number): boolean {
    return this.#rejectedRetained.get(topic) === rejectedKey(payload, payloadBytes);
  }

  /** True when the recorder has seen `epoch` of `agentId`. */
  knowsEpoch(agentId: string, epoch: string): boolean {
    return this.#agents.get(agentId)?.has(epoch) ?? false;
  }

  /** The agent's current epoch: the one that appeared last. */
  currentEpoch(agentId: string): string | undefined {
    let current: [string, EpochTrack] | undefined;
    for (const entry of this.#agents.get(agentId) ?? []) {
      if (!current || entry[1].firstSeenAt >= current[1].firstSeenAt) current = entry;
    }
    return current?.[0];
  }

  /**
   * Seq ranges of `epoch` neither recorded nor covered by a gap, up to the
   * highest seq seen or announced by a status: what can never arrive once the
   * agent has moved on to a new epoch.
   */
  missing(agentId: string, epoch: string): SeqRange[] {
    const track = this.#agents.get(agentId)?.get(epoch);
    if (!track) return [];
    return missingRanges(Math.max(track.maxSeen, track.announcedLastSeq), [track.recorded, track.gaps]);
  }

  /** Every (agent, epoch) that is not its agent's current epoch. */
  closedEpochs(): Array<{ agentId: string; epoch: string }> {
    const closed: Array<{ agentId: string; epoch: string }> = [];
    for (const [agentId, epochs] of this.#agents) {
      const current = this.currentEpoch(agentId);
      for (const epoch of epochs.keys()) if (epoch !== current) closed.push({ agentId, epoch });
    }
    return closed;
  }

  /** The ack of the agent's current epoch: the highest seq with every seq up to it recorded or gapped. */
  ackMark(agentId: string): AckMark | undefined {
    const epoch = this.currentEpoch(agentId);
    const track = epoch === undefined ? undefined : this.#agents.get(agentId)?.get(epoch);
    if (epoch === undefined || !track) return undefined;
    let mark = 0;
    for (;;) {
      const end = track.recorded.endOfRangeWith(mark + 1) ?? track.gaps.endOfRangeWith(mark + 1);
      if (end === undefined) break;
      mark = end;
    }
    return { agentId, epoch, seq: mark };
  }

  #track(agentId: string, epoch: string, receivedAt: string): EpochTrack {
    let epochs = this.#agents.get(agentId);
    if (!epochs) {
      epochs = new Map();
      this.#agents.set(agentId, epochs);
    }
    let track = epochs.get(epoch);
    if (!track) {
      track = { recorded: new IntervalSet(), gaps: new IntervalSet(), maxSeen: 0, announcedLastSeq: 0, firstSeenAt: receivedAt };
      epochs.set(epoch, track);
    } else if (receivedAt !== '' && receivedAt < track.firstSeenAt) {
      // At start files are read kind by kind, so an epoch's first record may come late.
      track.firstSeenAt = receivedAt;
    }
    return track;
  }
}

function rejectedKey(payload: unknown, payloadBytes: unknown): string {
  return JSON.stringify([payload, payloadBytes]);
}
