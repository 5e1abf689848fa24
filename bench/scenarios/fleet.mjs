// Issue 15: a fleet on one broker. N simulated agents speaking the real
// protocol (bench/lib/fleetChild.mjs), one `fso-audit record`, side by side
// on fso-broker --data-dir, fso-broker in memory, and Mosquitto (persistence
// on). Per broker: end-to-end records/s, drain time (last send → every agent
// acked), emittedAt → receivedAt percentiles, broker CPU and RSS, lost and
// duplicated records; optionally the broker SIGKILLed mid-run and restarted.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { procCpuSeconds, procMemory, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { percentile } from '../lib/stats.mjs';
import { startBroker, startRecorder } from '../lib/stack.mjs';

const FLEET = fileURLToPath(new URL('../lib/fleetChild.mjs', import.meta.url));

export const FLEET_BROKERS = {
  'fso-broker --data-dir': { kind: 'embedded', dataDir: true },
  'fso-broker (in memory)': { kind: 'embedded', dataDir: false },
  mosquitto: { kind: 'mosquitto', persistence: true },
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

/** One broker: start it, the recorder and the fleet; load; drain; read the trail. */
async function runOne(label, spec, { agents, rate, seconds, drainCapMs, kill, progress }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('fleet'));
    const audit = path.join(tmp.path, 'audit');
    const dataDir = path.join(tmp.path, 'broker-data');
    // The default --max-connections (10,000) would do for 1,000; 5,000 idle agents and more need it raised.
    const brokerArgs = ['--max-connections', '50000', ...(spec.dataDir ? ['--data-dir', dataDir] : [])];
    let broker = await startBroker(spec.kind, tmp.path, { args: spec.kind === 'mosquitto' ? [] : brokerArgs, persistence: spec.persistence });
    const port = Number(new URL(broker.url).port);
    const brokers = [broker];
    track({ stop: () => Promise.all(brokers.map((b) => b.stop())) });
    track(await startRecorder(broker.url, audit));
    let lastProgress = {};
    const fleet = startNode('fleet', [FLEET, '--url', broker.url, '--agents', String(agents), '--rate', String(rate), '--seconds', String(seconds)], {
      onLine: (_l, j) => {
        if (j?.fleet === 'progress') lastProgress = j;
      },
    });
    track({ stop: () => fleet.stop(5000) });
    await fleet.waitForLine((_l, j) => j?.fleet === 'connected', 'all agents connected', 300_000);
    const cpu0 = await procCpuSeconds(broker.pid);
    const startedAt = Date.now();
    let killed = null;
    if (kill) {
      // Half way through the load: SIGKILL, then the same broker again on the same port (and data dir).
      await sleep((seconds * 1000) / 2);
      const cpuBefore = await procCpuSeconds(broker.pid);
      process.kill(broker.pid, 'SIGKILL');
      await broker.proc.exitPromise;
      killed = { at: Date.now() - startedAt, cpuBefore };
      broker = await startBroker(spec.kind, tmp.path, { args: spec.kind === 'mosquitto' ? [] : brokerArgs, persistence: spec.persistence, port });
      brokers.push(broker);
      const restarted = broker;
      void restarted.proc.exitPromise.then((e) => progress(`  ${label}: the restarted broker exited (${e.signal ?? e.code}):\n${restarted.proc.tail()}`));
      progress(`  ${label}: broker killed at ${(killed.at / 1000).toFixed(1)} s and restarted`);
    }
    const sent = await fleet.waitForLine((_l, j) => j?.fleet === 'sent', 'the end of the load', seconds * 1000 + 300_000);
    let acked;
    try {
      acked = await fleet.waitForLine((_l, j) => j?.fleet === 'acked', 'every agent acked', drainCapMs);
    } catch {
      acked = null;
    }
    const cpu = (await procCpuSeconds(broker.pid)) - (killed ? 0 : cpu0) + (killed ? killed.cpuBefore - cpu0 : 0);
    const mem = await procMemory(broker.pid);
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
    let lost = 0;
    if (acked) {
      for (const [agentId, epoch, last] of acked.json.agents) for (let s = 1; s <= last; s++) if (!keys.has(`${agentId} ${epoch} ${s}`)) lost += 1;
    } else {
      lost = offered - keys.size;
    }
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
      brokerPeakRssMB: Math.round(mem.peakRss / 2 ** 20),
      lost,
      duplicated,
      resends: acked?.json.resends ?? lastProgress.resends ?? null,
      killedAtMs: killed?.at ?? null,
    };
    progress(`${label}: ${result.recordsPerSec} records/s, drain ${result.drainMs === null ? `not within ${drainCapMs / 1000} s` : `${(result.drainMs / 1000).toFixed(1)} s`}, p50/p99 ${result.latencyMs.p50}/${result.latencyMs.p99} ms, broker ${result.brokerCpuSeconds} CPU s, ${result.brokerPeakRssMB} MB, lost ${lost}, duplicated ${duplicated}`);
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
    `| ${r.broker} | ${r.recordsPerSec}${r.ofMosquitto === null ? '' : ` (${r.ofMosquitto}×)`} | ${r.drainMs === null ? `not within ${r.drainCapMs / 1000} s` : `${(r.drainMs / 1000).toFixed(1)} s`} | ${r.latencyMs.p50} / ${r.latencyMs.p99} ms | ${r.brokerCpuSeconds} s / ${r.brokerPeakRssMB} MB | ${r.lost} / ${r.duplicated} |`);
  return [
    `**Fleet** — ${f.agents} simulated agents × ${f.rate} events/s for ${f.seconds} s (${f.agents * f.rate}/s offered), one fso-audit record${f.kill ? '; the broker SIGKILLed half way and restarted' : ''}:`,
    '',
    '| broker | end-to-end records/s (÷ Mosquitto) | all acked after the last send | emittedAt → receivedAt p50 / p99 | broker CPU / peak RSS | lost / duplicated |',
    '|---|---|---|---|---|---|',
    ...rows,
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
      const args = spec.kind === 'mosquitto' ? [] : ['--max-connections', '50000', ...(spec.dataDir ? ['--data-dir', path.join(tmp.path, 'broker-data')] : [])];
      const broker = track(await startBroker(spec.kind, tmp.path, { args, persistence: spec.persistence }));
      track(await startRecorder(broker.url, path.join(tmp.path, 'audit')));
      const t0 = Date.now();
      const fleet = startNode('fleet', [FLEET, '--url', broker.url, '--agents', String(agents), '--idle', '--connect-rate', '500'], {});
      track({ stop: () => fleet.stop(5000) });
      await fleet.waitForLine((_l, j) => j?.fleet === 'connected', 'all agents connected', 600_000);
      const connectMs = Date.now() - t0;
      const cpuConnected = await procCpuSeconds(broker.pid);
      await sleep(seconds * 1000);
      const cpuIdle = (await procCpuSeconds(broker.pid)) - cpuConnected;
      const mem = await procMemory(broker.pid);
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
