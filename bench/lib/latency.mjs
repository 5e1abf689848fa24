// Per-operation latencies: operation → observedAt → emittedAt → receivedAt,
// and operation → the fsync that made its audit line durable (the ack).
import { changeKey, checkRecorded, waitForEvents } from './audit.mjs';
import { latencySummary } from './stats.mjs';

/** The four stages of {@link measureOps}, as named in the report. */
export const STAGES = ['opToObserved', 'observedToEmitted', 'emittedToReceived', 'opToAudit'];

/**
 * Waits until every operation of `done` is recorded and acked, then returns
 * each stage's latencies (ms), the per-type op → audit latencies, and the
 * lost / duplicate check of these operations.
 */
export async function measureOps(done, tail, acks, { stallMs = 20_000 } = {}) {
  const expected = new Set(done.map((op) => changeKey(op.type, op.path)));
  const found = await waitForEvents(tail, expected, { stallMs });
  let maxSeq = 0;
  for (const e of found.values()) maxSeq = Math.max(maxSeq, e.seq);
  if (maxSeq > 0) await acks.waitForSeq(maxSeq);
  const samples = Object.fromEntries(STAGES.map((s) => [s, []]));
  const byType = {};
  for (const op of done) {
    const e = found.get(changeKey(op.type, op.path));
    if (!e) continue;
    const observed = Date.parse(e.observedAt);
    const emitted = Date.parse(e.emittedAt);
    const received = Date.parse(e.receivedAt);
    const audited = acks.ackAt(e.seq);
    samples.opToObserved.push(observed - op.at);
    samples.observedToEmitted.push(emitted - observed);
    samples.emittedToReceived.push(received - emitted);
    if (audited !== undefined) {
      samples.opToAudit.push(audited - op.at);
      (byType[op.type] ??= []).push(audited - op.at);
    }
  }
  const relevant = tail.events.filter((e) => expected.has(changeKey(e.type, e.path)));
  return { samples, byType, check: checkRecorded(relevant, expected) };
}

/** Merges the samples of several {@link measureOps} results and summarises each stage. */
export function summarise(results) {
  const stages = {};
  for (const s of STAGES) stages[s] = latencySummary(results.flatMap((r) => r.samples[s]));
  const byType = {};
  for (const r of results) for (const [t, v] of Object.entries(r.byType)) (byType[t] ??= []).push(...v);
  return { stages, opToAuditByType: Object.fromEntries(Object.entries(byType).map(([t, v]) => [t, latencySummary(v)])) };
}
