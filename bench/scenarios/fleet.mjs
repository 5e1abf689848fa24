// Issue 15: a fleet on one broker, or on a cluster. N simulated agents
// speaking the real protocol (bench/lib/fleetChild.mjs), one `fso-audit
// record`, side by side on fso-broker --data-dir, fso-broker in memory, two
// fso-broker nodes over Redis (half the agents on each, the recorder on node
// B), and Mosquitto (persistence on). Per broker: end-to-end records/s, drain
// time (last send → every agent acked), emittedAt → receivedAt percentiles,
// broker CPU and RSS (a cluster's summed over its nodes and Redis), lost and
// duplicated records; optionally the broker (a cluster's node A) SIGKILLed
// mid-run and restarted.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds, procMemory, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { percentile } from '../lib/stats.mjs';
import { startBroker, startCluster, startRecorder } from '../lib/stack.mjs';

const FLEET = fileURLToPath(new URL('../lib/fleetChild.mjs', import.meta.url));

export const FLEET_BROKERS = {
  'fso-broker --data-dir': { kind: 'embedded', dataDir: true },
  'fso-broker (in memory)': { kind: 'embedded', dataDir: false },
  mosquitto: { kind: 'mosquitto', persistence: true },
  // Two fso-broker nodes over a fresh Redis (no save, no AOF), in memory otherwise.
  'fso-broker cluster (2 nodes, Redis)': { kind: 'cluster' },
};

/** Every `event` line of the trail: agent, epoch, seq, emittedAt and receivedAt (ms). */
async function readTrail(dir) {
  const out = [];
  for (const name of (await readdir(dir)).filter((n) => /^events-.*\.jsonl$/.test(n)).sort()) {
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      if (!line.includes('"record":"event"')) continue;
      const r = JSON.parse(line);
      out.push({ agentId: r.agentId, epoch: r.epoch, seq: r.seq, emittedAt: Date.parse(r.emittedAt), receivedAt: Date.parse(r.receivedAt) });
    }
  }
  return out;
}

/**
 * The broker(s) of one run: `agentUrl` for the fleet (a comma-separated list
 * for a cluster), `recorderUrl`, the `slots` whose processes are measured
 * (each with its live `pid`), and `kill()`: SIGKILL the first slot's process
 * and start it again on the same port (and data dir).
 */
async function startDeployment(spec, dir, brokerArgs) {
  if (spec.kind === 'cluster') {
    const cluster = await startCluster(dir, { args: brokerArgs, nodes: 2 });
    const slots = [...cluster.nodes.map((n, i) => ({ name: `node ${'AB'[i]}`, proc: n })), { name: 'redis', proc: cluster.redis }];
    return {
      // The agents half on node A, half on node B (each lists both, its own first); the recorder on B, so the
      // events published on A reach it through the Redis bus, and killing A never cuts the recorder.
      agentUrl: cluster.urls.join(','),
      recorderUrl: cluster.urls[1],
      slots,
      restart: async () => (slots[0].proc = await cluster.restart(0)),
      stop: () => cluster.stop(),
    };
  }
  const first = await startBroker(spec.kind, dir, { args: spec.kind === 'mosquitto' ? [] : brokerArgs, persistence: spec.persistence });
  const port = Number(new URL(first.url).port);
  const all = [first];
  const slots = [{ name: 'broker', proc: first }];
  return {
    agentUrl: first.url,
    recorderUrl: first.url,
    slots,
    restart: async () => {
      const again = await startBroker(spec.kind, dir, { args: spec.kind === 'mosquitto' ? [] : brokerArgs, persistence: spec.persistence, port });
      all.push(again);
      return (slots[0].proc = again);
    },
    stop: () => Promise.all(all.map((b) => b.stop())),
  };
}

/**
 * CPU seconds and peak RSS of a deployment's processes over a run, a killed
 * process's share included: CPU summed over every process, peak RSS summed
 * over the slots (each slot's the larger of its killed and restarted
 * process's), so for a cluster an upper bound of what was resident at once.
 * Sampled every second too, so a process that died unasked still counts
 * with what it had used.
 */
async function createUsageMeter(slots) {
  const last = new Map(); // pid → { cpu, peakRss }, the latest reading
  const read = async (pid) => {
    try {
      const reading = { cpu: await procCpuSeconds(pid), peakRss: (await procMemory(pid)).peakRss };
      last.set(pid, reading);
      return reading;
    } catch (err) {
      if (err.code !== 'ENOENT' && err.code !== 'ESRCH') throw err;
      return last.get(pid) ?? { cpu: 0, peakRss: 0 };
    }
  };
  const base = new Map();
  for (const s of slots) base.set(s.proc.pid, (await read(s.proc.pid)).cpu);
  const sampler = setInterval(() => void Promise.all(slots.map((s) => read(s.proc.pid))).catch(() => {}), 1000);
  let retiredCpu = 0;
  const retiredPeak = new Map();
  return {
    /** Before a slot's process is killed: what it used so far. */
    async retire(slot) {
      const { cpu, peakRss } = await read(slot.proc.pid);
      retiredCpu += cpu - (base.get(slot.proc.pid) ?? 0);
      retiredPeak.set(slot, peakRss);
    },
    async total() {
      clearInterval(sampler);
      let cpu = retiredCpu;
      let peakRss = 0;
      const parts = [];
      for (const s of slots) {
        const now = await read(s.proc.pid);
        const used = now.cpu - (base.get(s.proc.pid) ?? 0);
        const peak = Math.max(now.peakRss, retiredPeak.get(s) ?? 0);
        cpu += used;
        peakRss += peak;
        parts.push({ name: s.name, cpuSeconds: Math.round(used * 10) / 10, peakRssMB: Math.round(peak / 2 ** 20) });
      }
      return { cpu, peakRss, parts };
    },
    stop: () => clearInterval(sampler),
  };
}

/**
 * Reports every process of the deployment that exits unasked (not the one
 * `--kill` kills, not at the end): `crashes` lists them with their output's tail.
 */
function watchExits(slots, label, progress) {
  const crashes = [];
  const expected = new Set();
  let stopping = false;
  const watch = (slot) => {
    const proc = slot.proc;
    void proc.proc.exitPromise.then((e) => {
      if (stopping || expected.has(proc)) return;
      crashes.push({ name: slot.name, exit: e.signal ?? e.code, tail: proc.proc.tail() });
      progress(`  ${label}: ${slot.name} exited unasked (${e.signal ?? e.code}):\n${proc.proc.tail()}`);
    });
  };
  for (const slot of slots) watch(slot);
  return {
    crashes,
    /** `slot`'s process is about to be killed on purpose. */
    expect: (slot) => expected.add(slot.proc),
    /** `slot` has a new process (restarted). */
    watch,
    stop: () => {
      stopping = true;
    },
  };
}

/** `{ port: agents }` of the fleet's last line as `{ 'node A': agents, … }` (by the slot listening on that port). */
function agentsByBroker(byPort, deployment) {
  const urls = deployment.agentUrl.split(',');
  const nameOf = (port) => {
    const i = urls.findIndex((u) => new URL(u).port === port);
    return i === -1 ? `port ${port}` : deployment.slots[i].name;
  };
  return Object.fromEntries(Object.entries(byPort).map(([port, n]) => [nameOf(port), n]));
}

/** One broker (or cluster): start it, the recorder and the fleet; load; drain; read the trail. */
async function runOne(label, spec, { agents, rate, seconds, drainCapMs, kill, progress }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('fleet'));
    const audit = path.join(tmp.path, 'audit');
    const dataDir = path.join(tmp.path, 'broker-data');
    // The default --max-connections (10,000) would do for 1,000; 5,000 idle agents and more need it raised.
    const brokerArgs = ['--max-connections', '50000', ...(spec.dataDir ? ['--data-dir', dataDir] : [])];
    const deployment = await startDeployment(spec, tmp.path, brokerArgs);
    track(deployment);
    const exits = track(watchExits(deployment.slots, label, progress));
    track(await startRecorder(deployment.recorderUrl, audit));
    let lastProgress = {};
    const fleet = startNode('fleet', [FLEET, '--url', deployment.agentUrl, '--agents', String(agents), '--rate', String(rate), '--seconds', String(seconds)], {
      onLine: (_l, j) => {
        if (j?.fleet === 'progress') lastProgress = j;
      },
    });
    track({ stop: () => fleet.stop(5000) });
    await fleet.waitForLine((_l, j) => j?.fleet === 'connected', 'all agents connected', 300_000);
    const usage = track(await createUsageMeter(deployment.slots));
    const startedAt = Date.now();
    let killed = null;
    if (kill) {
      // Half way through the load: SIGKILL (a cluster's node A, whose agents move to node B), then the same
      // process again on the same port (and data dir).
      await sleep((seconds * 1000) / 2);
      const victim = deployment.slots[0];
      await usage.retire(victim);
      exits.expect(victim);
      process.kill(victim.proc.pid, 'SIGKILL');
      await victim.proc.proc.exitPromise;
      killed = { at: Date.now() - startedAt, which: victim.name };
      await deployment.restart();
      exits.watch(victim);
      progress(`  ${label}: ${victim.name} killed at ${(killed.at / 1000).toFixed(1)} s and restarted`);
    }
    const sent = await fleet.waitForLine((_l, j) => j?.fleet === 'sent', 'the end of the load', seconds * 1000 + 300_000);
    let acked;
    try {
      acked = await fleet.waitForLine((_l, j) => j?.fleet === 'acked', 'every agent acked', drainCapMs);
    } catch {
      acked = null;
    }
    const { cpu, peakRss, parts } = await usage.total();
    const offered = sent.json.sent;
    // Every agent acked means every record is fsync'd in the trail (the recorder acks after the fsync).
    const records = await readTrail(audit);
    const keys = new Map();
    let duplicated = 0;
    for (const r of records) {
      const key = `${r.agentId} ${r.epoch} ${r.seq}`;
      if (keys.has(key)) duplicated += 1;
      else keys.set(key, r);
    }
    // Lost is known once every agent is acked (an acked seq missing from the trail); before that, what is not in
    // the trail yet may still be on its way (in an outbox, or queued in the broker), so it is counted apart.
    let lost = null;
    if (acked) {
      lost = 0;
      for (const [agentId, epoch, last] of acked.json.agents) for (let s = 1; s <= last; s++) if (!keys.has(`${agentId} ${epoch} ${s}`)) lost += 1;
    }
    const notRecordedAtCap = acked ? 0 : offered - keys.size;
    // Not drained, but every seq sent is in the trail (the keys are of sent seqs only): nothing is lost either.
    if (!acked && notRecordedAtCap === 0) lost = 0;
    const latencies = [...keys.values()].map((r) => r.receivedAt - r.emittedAt).sort((a, b) => a - b);
    let lastReceived = 0;
    for (const r of keys.values()) lastReceived = Math.max(lastReceived, r.receivedAt);
    const result = {
      broker: label,
      agents,
      rate,
      seconds,
      offered,
      recorded: keys.size,
      recordsPerSec: Math.round(keys.size / ((lastReceived - sent.json.startedAt) / 1000)),
      drainMs: acked ? acked.json.drainMs : null,
      drainCapMs,
      latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) },
      brokerCpuSeconds: Math.round(cpu * 10) / 10,
      brokerPeakRssMB: Math.round(peakRss / 2 ** 20),
      // Per process (a cluster: node A, node B, redis); a killed process's CPU is in the total only.
      brokerParts: parts,
      lost,
      notRecordedAtCap,
      duplicated,
      resends: acked?.json.resends ?? lastProgress.resends ?? null,
      killedAtMs: killed?.at ?? null,
      killed: killed?.which ?? null,
      // Processes of the deployment that died unasked during the run (none expected).
      crashed: exits.crashes.map((c) => `${c.name} (${c.exit})`),
      // Agents per broker URL once all acked (a cluster after a kill: how many moved to the other node).
      agentsByBroker: acked ? agentsByBroker(acked.json.byPort, deployment) : null,
    };
    progress(`${label}: ${result.recordsPerSec} records/s, drain ${result.drainMs === null ? `not within ${drainCapMs / 1000} s` : `${(result.drainMs / 1000).toFixed(1)} s`}, p50/p99 ${result.latencyMs.p50}/${result.latencyMs.p99} ms, broker ${result.brokerCpuSeconds} CPU s, ${result.brokerPeakRssMB} MB, lost ${lost ?? `unknown (${notRecordedAtCap} not recorded at the cap)`}, duplicated ${duplicated}`);
    return result;
  });
}

/** Every broker of `brokers` in turn, same load. */
export async function fleetScenario({ agents = 1000, rate = 10, seconds = 15, drainCapMs = 120_000, brokers = Object.keys(FLEET_BROKERS), kill = false, progress = () => {} }) {
  const runs = [];
  for (const label of brokers) runs.push(await runOne(label, FLEET_BROKERS[label], { agents, rate, seconds, drainCapMs, kill, progress }));
  const mosq = runs.find((r) => r.broker === 'mosquitto');
  for (const r of runs) r.ofMosquitto = mosq && r !== mosq ? Math.round((r.recordsPerSec / mosq.recordsPerSec) * 100) / 100 : null;
  return { agents, rate, seconds, kill, runs };
}

/** Markdown table of a fleet run. */
export function fleetMarkdown(f) {
  const rows = f.runs.map((r) =>
    `| ${r.broker} | ${r.recordsPerSec}${r.ofMosquitto === null ? '' : ` (${r.ofMosquitto}×)`} | ${r.drainMs === null ? `not within ${r.drainCapMs / 1000} s` : `${(r.drainMs / 1000).toFixed(1)} s`} | ${r.latencyMs.p50} / ${r.latencyMs.p99} ms | ${r.brokerCpuSeconds} s / ${r.brokerPeakRssMB} MB | ${r.lost ?? `— (${r.notRecordedAtCap} not in the trail at the cap)`}${r.drainMs === null && r.lost === 0 ? ' (every seq sent is in the trail; not all acks delivered)' : ''} / ${r.duplicated} |`);
  // A cluster's CPU and RSS are summed over its processes: each one's share below the table; and any process that died unasked.
  const notes = f.runs
    .filter((r) => r.brokerParts.length > 1 || r.crashed.length > 0)
    .map((r, i) => {
      const parts = r.brokerParts.map((p) => `${p.name} ${p.cpuSeconds} s / ${p.peakRssMB} MB`).join(', ');
      const where = r.agentsByBroker ? `; agents connected at the end: ${Object.entries(r.agentsByBroker).map(([n, c]) => `${n} ${c}`).join(', ')}` : '';
      const crashed = r.crashed.length > 0 ? `; **died unasked during the run: ${r.crashed.join(', ')}**` : '';
      return `${i === 0 ? '\n' : ''}${r.broker}: ${parts}${r.killed ? ` (the killed ${r.killed}'s CPU in the total only)` : ''}${where}${crashed}.`;
    });
  return [
    `**Fleet** — ${f.agents} simulated agents × ${f.rate} events/s for ${f.seconds} s (${f.agents * f.rate}/s offered), one fso-audit record${f.kill ? '; the broker (of the cluster: node A) SIGKILLed half way and restarted' : ''}:`,
    '',
    '| broker | end-to-end records/s (÷ Mosquitto) | all acked after the last send | emittedAt → receivedAt p50 / p99 | broker CPU / peak RSS | lost / duplicated |',
    '|---|---|---|---|---|---|',
    ...rows,
    ...notes,
  ].join('\n');
}

/**
 * `agents` connected, mostly idle agents (a status at connect and every 30 s,
 * no events) on each broker: its RSS and CPU once all are connected and over
 * `seconds` of quiet.
 */
export async function idleFleetScenario({ agents = 5000, seconds = 60, brokers = Object.keys(FLEET_BROKERS), progress = () => {} }) {
  const runs = [];
  for (const label of brokers) {
    const spec = FLEET_BROKERS[label];
    runs.push(await withResources(async (track) => {
      const tmp = track(await tempDir('fleet-idle'));
      const args = ['--max-connections', '50000', ...(spec.dataDir ? ['--data-dir', path.join(tmp.path, 'broker-data')] : [])];
      const deployment = track(await startDeployment(spec, tmp.path, args));
      track(await startRecorder(deployment.recorderUrl, path.join(tmp.path, 'audit')));
      const t0 = Date.now();
      const fleet = startNode('fleet', [FLEET, '--url', deployment.agentUrl, '--agents', String(agents), '--idle', '--connect-rate', '500'], {});
      track({ stop: () => fleet.stop(5000) });
      await fleet.waitForLine((_l, j) => j?.fleet === 'connected', 'all agents connected', 600_000);
      const connectMs = Date.now() - t0;
      const pids = deployment.slots.map((slot) => slot.proc.pid);
      const cpuOf = async () => (await Promise.all(pids.map(procCpuSeconds))).reduce((a, b) => a + b, 0);
      const cpuConnected = await cpuOf();
      await sleep(seconds * 1000);
      const cpuIdle = (await cpuOf()) - cpuConnected;
      const mems = await Promise.all(pids.map(procMemory));
      const mem = { rss: mems.reduce((a, m) => a + m.rss, 0), peakRss: mems.reduce((a, m) => a + m.peakRss, 0) };
      const run = { broker: label, agents, connectMs, cpuToConnectSeconds: cpuConnected, idleCpuPercent: Math.round((cpuIdle / seconds) * 1000) / 10, rssMB: Math.round(mem.rss / 2 ** 20), peakRssMB: Math.round(mem.peakRss / 2 ** 20), seconds };
      progress(`${label}: ${agents} idle agents connected in ${(connectMs / 1000).toFixed(1)} s (broker ${cpuConnected.toFixed(1)} CPU s), then ${run.idleCpuPercent}% CPU, RSS ${run.rssMB} MB (peak ${run.peakRssMB} MB)`);
      return run;
    }));
  }
  return { agents, seconds, runs };
}

/** Markdown table of an idle-fleet run. */
export function idleFleetMarkdown(f) {
  return [
    `**Idle fleet** — ${f.agents} connected agents (status at connect and every 30 s, no events), one fso-audit record; figures after all connected and ${f.seconds} s of quiet:`,
    '',
    '| broker | all connected after (broker CPU s) | CPU while idle | RSS (peak) |',
    '|---|---|---|---|',
    ...f.runs.map((r) => `| ${r.broker} | ${(r.connectMs / 1000).toFixed(1)} s (${r.cpuToConnectSeconds.toFixed(1)} s) | ${r.idleCpuPercent} % | ${r.rssMB} MB (${r.peakRssMB} MB) |`),
  ].join('\n');
}
