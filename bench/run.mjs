#!/usr/bin/env node
// `pnpm bench` (full), `pnpm bench --quick` (under 3 minutes), and the smoke
// test's `--tiny`. Runs the five scenarios of issue 5 against the built bins,
// prints a progress line per run and markdown tables at the end, writes JSON
// (bench/results/latest.json, or --out), appends a dated section to
// docs/benchmarks.md and draws the scale chart (not with --no-docs).
//
// Usage: node bench/run.mjs [--quick | --tiny] [--only throughput,latency,scale,diffs,recorder,query,alerts,who] [--out FILE] [--no-docs] [--label TEXT]
// The query scenario (issue 13: a 10M-record trail searched through its index) runs only when named
// in --only: it writes ~6 GiB and takes a quarter of an hour; bench/query.mjs runs it alone.
//        [--inotify-queue N]: fs.inotify.max_queued_events set to N for the run (root), then put back.
// Environment: BENCH_PACKAGES_ROOT (bins of another checkout), BENCH_BROKER_ARGS (extra fso-broker
// flags), BENCH_PROFILE_DIR + BENCH_PROFILE=agent,recorder,broker (CPU profiles).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeDocs } from './lib/docs.mjs';
import { MOSQUITTO, REPO, binOf } from './lib/processes.mjs';
import { evaluateTargets, markdownReport } from './lib/report.mjs';
import { alertsScenario } from './scenarios/alerts.mjs';
import { diffsScenario } from './scenarios/diffs.mjs';
import { latencyScenario } from './scenarios/latency.mjs';
import { queryScenario } from './scenarios/query.mjs';
import { recorderScenario } from './scenarios/recorder.mjs';
import { scaleScenario } from './scenarios/scale.mjs';
import { throughputScenario } from './scenarios/throughput.mjs';
import { whoScenario } from './scenarios/who.mjs';

/** Sizes per mode. Full is the issue's; quick fits in 3 minutes on 2 cores; tiny is the smoke test's. */
const MODES = {
  full: {
    throughput: { n: 20_000, repeats: 3 },
    latency: { rates: [200, 2000], seconds: 10, repeats: 2 },
    scale: { sizes: [10_000, 50_000, 100_000], repeats: 2 },
    diffs: { reps: 5, seconds: 10, repeats: 3 },
    recorder: { m: 50_000, repeats: 3 },
    query: { records: 10_000_000, reps: 20 },
    alerts: { writes: 200, massDelete: { files: 10_000, threshold: 100 } },
    who: { files: 2000, repeats: 3 },
  },
  quick: {
    throughput: { n: 1000, repeats: 3 },
    latency: { rates: [200, 2000], seconds: 3, repeats: 1 },
    scale: { sizes: [10_000], repeats: 1 },
    diffs: { reps: 1, seconds: 3, repeats: 1 },
    recorder: { m: 5000, repeats: 2 },
    query: { records: 200_000, reps: 10 },
    alerts: { writes: 50, massDelete: { files: 2000, threshold: 100 } },
    who: { files: 500, repeats: 2 },
  },
  tiny: {
    throughput: { n: 200, repeats: 1 },
    latency: { rates: [200], seconds: 1.5, repeats: 1 },
    scale: { sizes: [300], repeats: 1 },
    diffs: { sizes: ['10KB'], reps: 1, seconds: 1, repeats: 1 },
    recorder: { m: 500, repeats: 1 },
    query: { records: 20_000, reps: 3 },
    alerts: { writes: 10, massDelete: { files: 300, threshold: 100 } },
    who: { files: 100, repeats: 1 },
  },
};
const SCENARIOS = { throughput: throughputScenario, latency: latencyScenario, scale: scaleScenario, diffs: diffsScenario, recorder: recorderScenario, query: queryScenario, alerts: alertsScenario, who: whoScenario };
/** Scenarios that run only when --only names them. */
const OPT_IN = ['query', 'alerts', 'who'];

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: path.join(REPO, 'bench', 'results', 'latest.json') },
    'no-docs': { type: 'boolean', default: false },
    label: { type: 'string' },
    'inotify-queue': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: node bench/run.mjs [--quick | --tiny] [--only throughput,latency,scale,diffs,recorder,query] [--out FILE] [--no-docs] [--label TEXT] [--inotify-queue N]\n');
  process.exit(0);
}
const mode = flags.tiny ? 'tiny' : flags.quick ? 'quick' : 'full';
const only = flags.only ? flags.only.split(',').map((s) => s.trim()) : Object.keys(SCENARIOS).filter((s) => !OPT_IN.includes(s));
const unknown = only.filter((s) => !(s in SCENARIOS));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown scenario(s) ${unknown.join(', ')}; choose from ${Object.keys(SCENARIOS).join(', ')}\n`);
  process.exit(2);
}
for (const pkg of ['broker', 'agent', 'audit-recorder']) {
  if (!existsSync(binOf(pkg))) {
    process.stderr.write(`bench: ${binOf(pkg)} is missing: run pnpm build first (pnpm bench does)\n`);
    process.exit(2);
  }
}
if (!existsSync(MOSQUITTO) && only.includes('throughput')) {
  process.stderr.write(`bench: ${MOSQUITTO} is missing (apt-get install mosquitto), needed by the throughput scenario\n`);
  process.exit(2);
}

// The kernel's inotify queue per watcher: the throughput scenario overflows the default 16,384
// (raw chokidar then misses events, the agent announces a gap and rescans). --inotify-queue runs
// with another size, as docs/reliability.md advises for busy hosts, and puts the old one back.
const QUEUE_FILE = '/proc/sys/fs/inotify/max_queued_events';
const readQueue = () => (existsSync(QUEUE_FILE) ? Number(readFileSync(QUEUE_FILE, 'utf8').trim()) : null);
if (flags['inotify-queue'] !== undefined) {
  const wanted = Number(flags['inotify-queue']);
  const before = readQueue();
  if (!Number.isInteger(wanted) || wanted < 1 || before === null) {
    process.stderr.write(`bench: --inotify-queue needs a positive integer and ${QUEUE_FILE}\n`);
    process.exit(2);
  }
  try {
    writeFileSync(QUEUE_FILE, `${wanted}\n`);
  } catch (err) {
    process.stderr.write(`bench: cannot set ${QUEUE_FILE} to ${wanted} (${err.code ?? err.message}; it needs root)\n`);
    process.exit(2);
  }
  process.on('exit', () => writeFileSync(QUEUE_FILE, `${before}\n`));
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const progress = (text) => process.stderr.write(`[${elapsed()}] ${text}\n`);
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

const result = {
  schema: 'fso.bench/1',
  mode,
  startedAt: new Date(started).toISOString(),
  ...(flags.label ? { label: flags.label } : {}),
  packages: packagesInfo(),
  machine: machineInfo(),
  load: { start: load() },
  params: Object.fromEntries(only.map((s) => [s, MODES[mode][s]])),
  scenarios: {},
};
progress(`bench ${mode}: ${only.join(', ')} (load average ${result.load.start.join(' ')})`);
let failed = false;
for (const [i, name] of only.entries()) {
  const t0 = Date.now();
  progress(`▶ ${i + 1}/${only.length} ${name}`);
  try {
    result.scenarios[name] = await SCENARIOS[name]({ ...MODES[mode][name], progress: (t) => progress(`  ${t}`) });
    progress(`✔ ${name} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } catch (err) {
    failed = true;
    result.scenarios[name] = { error: err.stack ?? String(err) };
    progress(`✘ ${name} failed after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${err.message}`);
  }
}
result.load.end = load();
result.durationMs = Date.now() - started;
result.targets = evaluateTargets(result.scenarios);
const markdown = markdownReport(result);

await mkdir(path.dirname(path.resolve(flags.out)), { recursive: true });
await writeFile(flags.out, `${JSON.stringify(result, null, 2)}\n`);
if (!flags['no-docs']) await writeDocs(result, markdown, progress);
process.stdout.write(`\n${markdown}\n\nJSON: ${path.relative(process.cwd(), path.resolve(flags.out)) || flags.out} (${(result.durationMs / 1000).toFixed(0)} s, load average ${result.load.start.join(' ')} → ${result.load.end.join(' ')})\n`);
process.exitCode = failed ? 1 : 0;

function machineInfo() {
  const version = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 }).split('\n')[0].trim();
    } catch (err) {
      return (err.stdout ?? '').split('\n')[0].trim() || null;
    }
  };
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    mosquitto: existsSync(MOSQUITTO) ? version(MOSQUITTO, ['-h']) : null,
    inotifyMaxQueuedEvents: readQueue(),
    inotify: {
      maxUserWatches: readProc('/proc/sys/fs/inotify/max_user_watches'),
      maxQueuedEvents: readProc('/proc/sys/fs/inotify/max_queued_events'),
    },
  };
}

/** Which code was measured: the checkout's commit, or BENCH_PACKAGES_ROOT when the bins come from elsewhere. */
function packagesInfo() {
  const root = process.env.BENCH_PACKAGES_ROOT ?? REPO;
  let commit = null;
  try {
    commit = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = null;
  }
  return { root, commit, otherRoot: root !== REPO, brokerArgs: process.env.BENCH_BROKER_ARGS ?? null };
}

function readProc(file) {
  try {
    return Number(readFileSync(file, 'utf8').trim());
  } catch {
    return null;
  }
}
