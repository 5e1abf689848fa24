// Scenario 1: create, modify, rename and delete N files as fast as possible;
// time from each phase's first operation to the fsync of its last audit line
// (the recorder's ack), against raw chokidar and against the same pipeline on
// Mosquitto. A, B and C alternate within each repeat.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { checkRecorded, createAuditTail, waitForEvents } from '../lib/audit.mjs';
import { makeDirs, nowMs, throughputPhases } from '../lib/generator.mjs';
import { nextMessage } from '../lib/ipc.mjs';
import { procCpuSeconds, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { followAcks, startAgent, startBroker, startRecorder } from '../lib/stack.mjs';
import { pairedRatios, spread } from '../lib/stats.mjs';

const CHOKIDAR_CHILD = fileURLToPath(new URL('../lib/chokidarChild.mjs', import.meta.url));
const VARIANTS = ['chokidar', 'embedded', 'mosquitto'];

/** One run of the whole pipeline on `brokerKind`; returns per-phase ms and the loss/duplicate check. */
export async function runPipeline(brokerKind, n, { pairWindow = '100ms' } = {}) {
  return withResources(async (track) => {
    const tmp = track(await tempDir(`tp-${brokerKind}`));
    const watched = path.join(tmp.path, 'watched');
    const audit = path.join(tmp.path, 'audit');
    makeDirs(watched, 't', n);
    const broker = track(await startBroker(brokerKind, tmp.path));
    const recorder = track(await startRecorder(broker.url, audit));
    const acks = track(await followAcks(broker.url, 'bench'));
    const agent = track(await startAgent({ brokerUrl: broker.url, watch: watched, stateDir: path.join(tmp.path, 'state'), pairWindow }));
    const tail = createAuditTail(audit);
    const phases = {};
    const expectedAll = new Set();
    const parts = { agent: agent.pid, broker: broker.pid, recorder: recorder.pid };
    const cpuBefore = await cpuOf(parts);
    const benchBefore = process.cpuUsage();
    for (const phase of throughputPhases(watched, n)) {
      const t0 = nowMs();
      phase.run();
      const opsMs = nowMs() - t0;
      const found = await waitForEvents(tail, phase.expected);
      let maxSeq = 0;
      for (const e of found.values()) maxSeq = Math.max(maxSeq, e.seq);
      await acks.waitForSeq(maxSeq);
      phases[phase.phase] = { ms: acks.ackAt(maxSeq) - t0, opsMs, recorded: found.size };
      for (const k of phase.expected) expectedAll.add(k);
    }
    const cpu = { ...diffCpu(await cpuOf(parts), cpuBefore), bench: benchCpuSince(benchBefore) };
    // Late duplicates would show up here: stop the agent (it settles and flushes), then read the rest.
    await agent.stop();
    await sleep(500);
    await tail.poll();
    const check = { ...checkRecorded(tail.events, expectedAll), overflowGaps: tail.gaps.filter((g) => g.reason === 'watcher-overflow').length };
    return { phases, totalMs: sum(phases), changes: expectedAll.size, cpu, check };
  });
}

/** One run of raw chokidar on the same operations; per-phase ms until its last expected event. */
export async function runChokidar(n) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('tp-chokidar'));
    const watched = path.join(tmp.path, 'watched');
    makeDirs(watched, 't', n);
    const child = track(startNode('chokidar', [CHOKIDAR_CHILD, watched], { ipc: true }));
    await nextMessage(child, 'ready');
    const cpuBefore = await cpuOf({ chokidar: child.pid });
    const benchBefore = process.cpuUsage();
    const phases = {};
    for (const phase of throughputPhases(watched, n)) {
      const expecting = nextMessage(child, 'expecting');
      child.child.send({ bench: 'expect', phase: phase.phase, n });
      await expecting;
      let done;
      const doneMessage = nextMessage(child, 'phase-done', 600_000).then((m) => (done = m));
      const t0 = nowMs();
      phase.run();
      const opsMs = nowMs() - t0;
      const stalled = await waitUnlessStalled(child, () => done !== undefined);
      if (stalled) {
        // chokidar itself missed events (inotify's queue overflowed): time to its last event, the rest lost.
        phases[phase.phase] = { ms: stalled.lastEventAt - t0, opsMs, lost: n - stalled.seen[phase.phase] };
        doneMessage.catch(() => undefined);
        continue;
      }
      phases[phase.phase] = { ms: done.at - t0, opsMs, lost: 0 };
    }
    const lost = Object.values(phases).reduce((s, p) => s + p.lost, 0);
    return { phases, totalMs: sum(phases), changes: 4 * n, lost, cpu: { ...diffCpu(await cpuOf({ chokidar: child.pid }), cpuBefore), bench: benchCpuSince(benchBefore) } };
  });
}

/**
 * Waits until `isDone()`, asking the chokidar child for its status every
 * second; returns that status if no event arrived for STALL_MS (null when done).
 */
async function waitUnlessStalled(child, isDone) {
  let last = { total: -1 };
  let lastChange = Date.now();
  for (;;) {
    await sleep(200);
    if (isDone()) return null;
    const asked = nextMessage(child, 'status', 10_000);
    child.child.send({ bench: 'status' });
    const status = await asked;
    if (isDone()) return null;
    if (status.total !== last.total) lastChange = Date.now();
    else if (Date.now() - lastChange > STALL_MS) return status;
    last = status;
  }
}
const STALL_MS = 15_000;

/** CPU seconds used so far by each named process. */
async function cpuOf(pids) {
  const out = {};
  for (const [name, pid] of Object.entries(pids)) out[name] = await procCpuSeconds(pid);
  return out;
}
/** CPU seconds of this process (the generator, and for the pipeline the audit tail and ack follower) since `before`. */
const benchCpuSince = (before) => {
  const { user, system } = process.cpuUsage(before);
  return Math.round((user + system) / 10_000) / 100;
};
const diffCpu = (after, before) => Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Math.round((v - before[k]) * 100) / 100]));

function cpuPerThousand(runs) {
  const parts = Object.keys(runs[0]?.cpu ?? {});
  return Object.fromEntries(parts.map((p) => [p, spread(runs.map((r) => (r.cpu[p] * 1000) / r.changes), 3).median]));
}

const sum = (phases) => Object.values(phases).reduce((s, p) => s + p.ms, 0);

/**
 * Runs `repeats` rounds of chokidar / embedded / Mosquitto (the order rotates
 * each round) on `n` files; `progress(text)` gets a line per run.
 */
export async function throughputScenario({ n, repeats, progress }) {
  const runs = { chokidar: [], embedded: [], mosquitto: [] };
  for (let r = 0; r < repeats; r += 1) {
    for (let k = 0; k < VARIANTS.length; k += 1) {
      const variant = VARIANTS[(k + r) % VARIANTS.length];
      const result = variant === 'chokidar' ? await runChokidar(n) : await runPipeline(variant, n);
      result.changesPerSec = (result.changes * 1000) / result.totalMs;
      runs[variant].push(result);
      const c = result.check;
      progress(
        `throughput ${r + 1}/${repeats} ${variant}: ${Math.round(result.changesPerSec)} changes/s (${Math.round(result.totalMs)} ms)` +
          (result.lost ? `, chokidar itself missed ${result.lost} changes` : '') +
          (c ? `, lost ${c.lost}, dup ${c.duplicatedById}/${c.duplicatedByPath}, unexpected ${c.unexpected}, overflow gaps ${c.overflowGaps}` : '') +
          (c && c.lost + c.unexpected + c.duplicatedByPath > 0 ? ` e.g. ${JSON.stringify(c.samples)}` : ''),
      );
    }
  }
  const rate = (v) => runs[v].map((x) => x.changesPerSec);
  const totals = (key) => runs.embedded.concat(runs.mosquitto).reduce((s, x) => s + x.check[key], 0);
  return {
    n,
    repeats,
    changes: 4 * n,
    changesPerSec: { chokidar: spread(rate('chokidar'), 0), embedded: spread(rate('embedded'), 0), mosquitto: spread(rate('mosquitto'), 0) },
    // Throughput ratios, paired per round: e2e ÷ chokidar, embedded ÷ Mosquitto.
    ratios: {
      e2eOverChokidar: pairedRatios(rate('embedded'), rate('chokidar')),
      embeddedOverMosquitto: pairedRatios(rate('embedded'), rate('mosquitto')),
    },
    // CPU seconds per 1,000 changes, per process, during the phases (median over rounds).
    cpuPerThousand: Object.fromEntries(
      VARIANTS.map((v) => [v, cpuPerThousand(runs[v])]),
    ),
    lost: totals('lost'),
    chokidarLost: runs.chokidar.reduce((s, x) => s + x.lost, 0),
    duplicatedById: totals('duplicatedById'),
    duplicatedByPath: totals('duplicatedByPath'),
    unexpected: totals('unexpected'),
    overflowGaps: totals('overflowGaps'),
    runs,
  };
}
