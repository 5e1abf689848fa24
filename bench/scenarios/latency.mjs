// Scenario 2: steady mixed operations at a fixed rate (200 and 2,000 per
// second); p50 / p95 / p99 / max of each stage on the embedded broker.
import path from 'node:path';
import { createAuditTail } from '../lib/audit.mjs';
import { prepareSteady, steadyOps } from '../lib/generator.mjs';
import { measureOps, summarise } from '../lib/latency.mjs';
import { tempDir, withResources } from '../lib/processes.mjs';
import { followAcks, startAgent, startBroker, startRecorder } from '../lib/stack.mjs';

/** One stack, `ops` operations at `rate`/s; the pool of files to modify, rename and delete exists before the agent starts. */
export async function runSteady({ rate, ops, brokerKind = 'embedded', pairWindow = '100ms' }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir(`lat-${rate}`));
    const watched = path.join(tmp.path, 'watched');
    const audit = path.join(tmp.path, 'audit');
    const plan = prepareSteady(watched, ops);
    const broker = track(await startBroker(brokerKind, tmp.path));
    track(await startRecorder(broker.url, audit));
    const acks = track(await followAcks(broker.url, 'bench'));
    track(await startAgent({ brokerUrl: broker.url, watch: watched, stateDir: path.join(tmp.path, 'state'), pairWindow }));
    const tail = createAuditTail(audit);
    const load = await steadyOps(plan, { rate });
    const measured = await measureOps(load.done, tail, acks);
    return { ...measured, achievedRate: load.achievedRate };
  });
}

/** Runs each rate `repeats` times (rates alternate within a round). */
export async function latencyScenario({ rates, seconds, repeats, progress, pairWindow = '100ms' }) {
  const results = Object.fromEntries(rates.map((r) => [r, []]));
  for (let round = 0; round < repeats; round += 1) {
    const order = round % 2 ? [...rates].reverse() : rates;
    for (const rate of order) {
      const run = await runSteady({ rate, ops: Math.round(rate * seconds), pairWindow });
      results[rate].push(run);
      const s = summarise([run]).stages.opToAudit;
      progress(`latency ${round + 1}/${repeats} ${rate} ops/s (achieved ${Math.round(run.achievedRate)}): op→audit p50 ${s.p50} p99 ${s.p99} ms, lost ${run.check.lost}, dup ${run.check.duplicatedById}/${run.check.duplicatedByPath}`);
    }
  }
  const byRate = {};
  for (const rate of rates) {
    const runs = results[rate];
    byRate[rate] = {
      ...summarise(runs),
      p99PerRepeat: runs.map((r) => summarise([r]).stages.opToAudit.p99),
      achievedRate: runs.map((r) => Math.round(r.achievedRate)),
      lost: runs.reduce((s, r) => s + r.check.lost, 0),
      duplicated: runs.reduce((s, r) => s + r.check.duplicatedById + r.check.duplicatedByPath, 0),
    };
  }
  return { seconds, repeats, pairWindow, byRate };
}
