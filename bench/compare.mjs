#!/usr/bin/env node
// Before/after figures of a change to the packages: the same measures on two
// checkouts (each built), alternating A and B every round, medians and paired
// ratios. The bins come from each root's packages/*/dist.
//
// Usage: node bench/compare.mjs --a ROOT_A --b ROOT_B [--rounds 3] [--files 5000]
//          [--rate 200] [--seconds 5] [--tree 50000] [--only throughput,latency,diffs,scale]
// Extra broker flags for both sides: BENCH_BROKER_ARGS='--max-publish-rate 0'.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeFiles } from './lib/generator.mjs';
import { summarise } from './lib/latency.mjs';
import { tempDir, withResources } from './lib/processes.mjs';
import { fmtSpread, pairedRatios, spread } from './lib/stats.mjs';
import { diffsScenario } from './scenarios/diffs.mjs';
import { runSteady } from './scenarios/latency.mjs';
import { runAgent } from './scenarios/scale.mjs';
import { runPipeline } from './scenarios/throughput.mjs';

const { values: o } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    files: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '5' },
    tree: { type: 'string', default: '50000' },
    'pair-window': { type: 'string', default: '200ms' },
    only: { type: 'string', default: 'throughput,latency,scale' },
  },
});
if (!o.a || !o.b) {
  process.stderr.write('usage: node bench/compare.mjs --a ROOT_A --b ROOT_B [--rounds N] [--files N] [--rate N] [--seconds N] [--tree N] [--only …]\n');
  process.exit(2);
}
const roots = { A: path.resolve(o.a), B: path.resolve(o.b) };
const rounds = Number(o.rounds);
const only = new Set(o.only.split(','));
const log = (text) => process.stderr.write(`${text}\n`);

/** Runs `measure()` with the bins of A then B (B then A on odd rounds); returns { A: [...], B: [...] }. */
async function alternate(name, measure) {
  const out = { A: [], B: [] };
  for (let r = 0; r < rounds; r += 1) {
    for (const side of r % 2 ? ['B', 'A'] : ['A', 'B']) {
      process.env.BENCH_PACKAGES_ROOT = roots[side];
      const value = await measure();
      out[side].push(value);
      log(`${name} ${r + 1}/${rounds} ${side}: ${JSON.stringify(value)}`);
    }
  }
  delete process.env.BENCH_PACKAGES_ROOT;
  return out;
}

const rows = [];
/** One table row; `delta` rows (counts, added ms) compare by B − A, the others by the paired ratio B ÷ A. */
const row = (measure, a, b, better = 'higher', { delta = false } = {}) => {
  const versus = delta ? `B − A: ${fmtSpread(spread(b.map((v, i) => v - a[i]), 1))}` : `B ÷ A: ${fmtSpread(pairedRatios(b, a))}`;
  rows.push(`| ${measure} | ${fmtSpread(spread(a, 1))} | ${fmtSpread(spread(b, 1))} | ${versus} (${better} is better) |`);
};
const pick = (runs, key) => runs.map((r) => r[key]);

if (only.has('throughput')) {
  const files = Number(o.files);
  const runs = await alternate('throughput', async () => {
    const r = await runPipeline('embedded', files, { pairWindow: o['pair-window'] });
    return { changesPerSec: Math.round((r.changes * 1000) / r.totalMs), agentCpuS: r.cpu.agent, lost: r.check.lost, duplicated: r.check.duplicatedById + r.check.duplicatedByPath };
  });
  row(`throughput, ${files} files: changes/s`, pick(runs.A, 'changesPerSec'), pick(runs.B, 'changesPerSec'));
  row('throughput: agent CPU s', pick(runs.A, 'agentCpuS'), pick(runs.B, 'agentCpuS'), 'lower');
  row('throughput: lost + duplicated', pick(runs.A, 'lost').map((v, i) => v + runs.A[i].duplicated), pick(runs.B, 'lost').map((v, i) => v + runs.B[i].duplicated), 'lower', { delta: true });
}
if (only.has('latency')) {
  const rate = Number(o.rate);
  const runs = await alternate('latency', async () => {
    const s = summarise([await runSteady({ rate, ops: rate * Number(o.seconds), pairWindow: o['pair-window'] })]);
    return { p50: s.stages.opToAudit.p50, p99: s.stages.opToAudit.p99 };
  });
  row(`op → audit p50 at ${rate}/s, ms`, pick(runs.A, 'p50'), pick(runs.B, 'p50'), 'lower');
  row(`op → audit p99 at ${rate}/s, ms`, pick(runs.A, 'p99'), pick(runs.B, 'p99'), 'lower');
}
if (only.has('diffs')) {
  const runs = await alternate('diffs', async () => {
    const r = await diffsScenario({ sizes: ['10MB'], reps: 1, seconds: Number(o.seconds), repeats: 1, progress: () => {} });
    const i = r.interference;
    return { quietP99: i.quiet.stages.opToAudit.p99, loadedP99: i.loaded.stages.opToAudit.p99, addedMs: i.p99Added.median };
  });
  row('other events op → audit p99 without big diffs, ms', pick(runs.A, 'quietP99'), pick(runs.B, 'quietP99'), 'lower');
  row('… while 10 MB 100% diffs run, ms', pick(runs.A, 'loadedP99'), pick(runs.B, 'loadedP99'), 'lower');
  row('p99 added by the diffs, ms', pick(runs.A, 'addedMs'), pick(runs.B, 'addedMs'), 'lower', { delta: true });
}
if (only.has('scale')) {
  const files = Number(o.tree);
  await withResources(async (track) => {
    const tmp = track(await tempDir('compare-tree'));
    const tree = path.join(tmp.path, 'tree');
    makeFiles(tree, 'd', files);
    const runs = await alternate('scale', async () => {
      const r = await runAgent(tree, files);
      return { readyS: r.readyMs / 1000, restartS: r.restartReadyMs / 1000, rssMb: r.rss / 2 ** 20, rssAtReadyMb: r.rssAtReady / 2 ** 20 };
    });
    row(`first start on ${files} files: ready s`, pick(runs.A, 'readyS'), pick(runs.B, 'readyS'), 'lower');
    row('restart: ready s', pick(runs.A, 'restartS'), pick(runs.B, 'restartS'), 'lower');
    row('RSS settled, MB', pick(runs.A, 'rssMb'), pick(runs.B, 'rssMb'), 'lower');
    row('RSS at ready, MB', pick(runs.A, 'rssAtReadyMb'), pick(runs.B, 'rssAtReadyMb'), 'lower');
  });
}
process.stdout.write(`\nA = ${roots.A}\nB = ${roots.B}\n\n| measure | A: median (min–max) | B: median (min–max) | B vs A, paired per round |\n|---|---|---|---|\n${rows.join('\n')}\n`);
