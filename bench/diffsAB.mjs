#!/usr/bin/env node
// Before/after of the diffs interference (issue 5: "a 100%-changed 10 MB diff
// adds ≤ 100 ms to other events' p99") on a shared machine: the diffs
// scenario with only the 10 MB files, alternating between this checkout's
// bins and another's (BENCH_PACKAGES_ROOT) round by round, so both see the
// same load. Per window it also reports the agent's event-loop delay
// (memProbe's BENCH_LOOP_STATS_FILE) and how long a small fdatasync took on
// the same file system meanwhile (fsyncProbe.mjs).
//
// Usage: node bench/diffsAB.mjs --base /path/to/other/checkout [--rounds 3] [--seconds 3] [--repeats 2] [--out FILE]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { diffsScenario } from './scenarios/diffs.mjs';

const { values: flags } = parseArgs({
  options: {
    base: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    repeats: { type: 'string', default: '2' },
    out: { type: 'string', default: '/tmp/diffsAB.json' },
  },
});
if (!flags.base) throw new Error('--base ROOT is required');
const variants = { base: flags.base, new: null };
const log = (t) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${t}\n`);
const readJsonl = (file) => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
};
const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const results = { base: [], new: [] };
for (let round = 0; round < Number(flags.rounds); round += 1) {
  const order = round % 2 ? ['new', 'base'] : ['base', 'new'];
  for (const name of order) {
    if (variants[name]) process.env.BENCH_PACKAGES_ROOT = variants[name];
    else delete process.env.BENCH_PACKAGES_ROOT;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fso-diffsab-'));
    const loopFile = path.join(dir, 'loop.jsonl');
    const fsyncFile = path.join(dir, 'fsync.jsonl');
    process.env.BENCH_LOOP_STATS_FILE = loopFile;
    const probe = spawn(process.execPath, [path.join(import.meta.dirname, 'lib', 'fsyncProbe.mjs'), dir, fsyncFile], { stdio: 'ignore' });
    const windows = [];
    let scenario;
    try {
      scenario = await diffsScenario({ sizes: ['10MB'], reps: 1, seconds: Number(flags.seconds), repeats: Number(flags.repeats), progress: (t) => log(`${name} ${t}`), onWindow: (w) => windows.push(w) });
    } finally {
      const exited = new Promise((resolve) => probe.once('exit', resolve));
      probe.kill('SIGTERM');
      await exited;
      delete process.env.BENCH_LOOP_STATS_FILE;
    }
    const loop = readJsonl(loopFile);
    const fsyncs = readJsonl(fsyncFile);
    rmSync(dir, { recursive: true, force: true });
    const perWindow = windows.map((w) => {
      const inWindow = loop.filter((x) => x.t >= w.start && x.t <= w.end);
      const l = inWindow.filter((x) => x.max !== undefined);
      const syncs = inWindow.filter((x) => x.sync !== undefined).map((x) => x.sync);
      const pool = inWindow.filter((x) => x.pool !== undefined).map((x) => x.pool);
      const f = fsyncs.filter((x) => x.t >= w.start && x.t <= w.end).map((x) => x.ms);
      return {
        kind: w.kind,
        loopDelayMaxMs: Math.max(0, ...l.map((x) => x.max)),
        loopDelayP99OfP99Ms: pct(l.map((x) => x.p99), 99),
        fsyncP50Ms: pct(f, 50),
        fsyncP99Ms: pct(f, 99),
        fsyncMaxMs: Math.max(0, ...f),
        agentSyncs: syncs.length,
        agentSyncP50Ms: pct(syncs, 50),
        agentSyncP99Ms: pct(syncs, 99),
        agentSyncMaxMs: Math.max(0, ...syncs),
        poolWaitP99Ms: pct(pool, 99),
        poolWaitMaxMs: Math.max(0, ...pool),
      };
    });
    const i = scenario.interference;
    const entry = {
      round,
      p99Added: i.p99Added,
      quietP99: i.quiet.stages.opToAudit.p99,
      loadedP99: i.loaded.stages.opToAudit.p99,
      heavyDiffs: i.heavyDiffs,
      diffMs10MB100: scenario.perFile['10MB 100%'].diffMs.median,
      stagesP99: Object.fromEntries(['quiet', 'loaded'].map((k) => [k, Object.fromEntries(Object.entries(i[k].stages).map(([s, v]) => [s, v.p99]))])),
      perWindow,
    };
    results[name].push(entry);
    writeFileSync(flags.out, `${JSON.stringify({ results }, null, 2)}\n`);
    log(`${name} round ${round}: added p99 ${JSON.stringify(i.p99Added)}; windows ${JSON.stringify(perWindow)}`);
  }
}
const all = (name) => results[name].flatMap((r) => r.perWindow);
const summary = {};
for (const name of Object.keys(results)) {
  const added = results[name].flatMap((r) => [r.p99Added.min, r.p99Added.median, r.p99Added.max]);
  summary[name] = {
    addedMedians: results[name].map((r) => r.p99Added.median),
    heavyDiffs: results[name].map((r) => r.heavyDiffs),
    loadedLoopMax: all(name).filter((w) => w.kind === 'loaded').map((w) => w.loopDelayMaxMs),
    quietLoopMax: all(name).filter((w) => w.kind === 'quiet').map((w) => w.loopDelayMaxMs),
    loadedFsyncP99: all(name).filter((w) => w.kind === 'loaded').map((w) => w.fsyncP99Ms),
    quietFsyncP99: all(name).filter((w) => w.kind === 'quiet').map((w) => w.fsyncP99Ms),
    addedAll: added,
    stagesP99: results[name].map((r) => r.stagesP99),
  };
}
writeFileSync(flags.out, `${JSON.stringify({ results, summary }, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
