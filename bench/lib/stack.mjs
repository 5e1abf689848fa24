// One FSO pipeline as separate processes, the way a user runs it: a broker
// (the embedded one, a cluster of them over Redis, or Mosquitto), the
// recorder, an agent; and a bench MQTT client that follows the recorder's
// acks (published after each fsync).
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { createTopics } from '@fso/common';
import { MOSQUITTO, binOf, freePort, startNode, startProcess, waitForPort } from './processes.mjs';

const topics = createTopics();
export const REDIS = '/usr/bin/redis-server';
const PROBE = fileURLToPath(new URL('./memProbe.mjs', import.meta.url));
export const NO_FSYNC = fileURLToPath(new URL('./noFsync.mjs', import.meta.url));

/** JSON logs at info: the bench waits for the `watching` / `recording` lines. */
const LOG_ENV = { FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: 'info' };

/**
 * Starts a broker on a free 127.0.0.1 port: `embedded` (fso-broker, in memory,
 * with `args` and the flags in BENCH_BROKER_ARGS if set) or `mosquitto`
 * (`persistence` on or off). `port` restarts one on the port it had.
 */
export async function startBroker(kind, dir, { args = [], port: wantedPort, persistence = false } = {}) {
  const port = wantedPort ?? (await freePort());
  let proc;
  if (kind === 'mosquitto') {
    const conf = path.join(dir, 'mosquitto.conf');
    // Started as root, mosquitto drops to user mosquitto: its store needs a directory that user may write.
    const store = path.join(dir, 'mosquitto-store');
    if (persistence) {
      await mkdir(store, { recursive: true });
      await chmod(dir, 0o755);
      await chmod(store, 0o777);
    }
    // max_queued_messages 0: no limit, so a slow subscriber never loses QoS 1 messages.
    // persistence: retained messages and sessions in DIR/mosquitto.db (saved every 60 s and at exit).
    await writeFile(
      conf,
      [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_queued_messages 0',
        ...(persistence ? ['persistence true', `persistence_location ${store}/`] : ['persistence false']),
        'log_dest stderr', 'log_type error', 'log_type warning', ''].join('\n'),
    );
    proc = startProcess('mosquitto', MOSQUITTO, ['-c', conf]);
  } else {
    const extra = process.env.BENCH_BROKER_ARGS ? process.env.BENCH_BROKER_ARGS.split(' ').filter(Boolean) : [];
    proc = startNode('fso-broker', [...profileArgs('broker'), binOf('broker'), '--port', String(port), ...args, ...extra], { env: { ...LOG_ENV, FSO_LOG_LEVEL: 'warn' } });
  }
  await waitForPort(port, proc.name);
  return { kind, url: `mqtt://127.0.0.1:${port}`, pid: proc.pid, proc, stop: () => proc.stop() };
}

/**
 * Starts a throw-away redis-server on a free 127.0.0.1 port, its working
 * directory in `dir`, nothing saved (no RDB snapshots, no AOF).
 */
export async function startRedis(dir) {
  const port = await freePort();
  const proc = startProcess('redis-server', REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning']);
  await waitForPort(port, proc.name);
  return { url: `redis://127.0.0.1:${port}`, pid: proc.pid, proc, stop: () => proc.stop() };
}

/**
 * A cluster of `nodes` fso-broker processes over one fresh Redis (issue 15
 * §2), each with `args` and `--redis`. `restart(i)` starts node `i` again on
 * the port it had (after a kill); `pids()` are the live nodes' and Redis's.
 */
export async function startCluster(dir, { args = [], nodes: count = 2 } = {}) {
  const redis = await startRedis(dir);
  const nodeArgs = [...args, '--redis', redis.url];
  const nodes = [];
  try {
    for (let i = 0; i < count; i++) nodes.push(await startBroker('embedded', dir, { args: nodeArgs }));
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    await redis.stop();
    throw err;
  }
  const everyNode = [...nodes];
  return {
    kind: 'cluster',
    redis,
    nodes,
    urls: nodes.map((n) => n.url),
    pids: () => [...nodes.map((n) => n.pid), redis.pid],
    async restart(i) {
      const node = await startBroker('embedded', dir, { args: nodeArgs, port: Number(new URL(nodes[i].url).port) });
      everyNode.push(node);
      nodes[i] = node;
      return node;
    },
    async stop() {
      await Promise.all(everyNode.map((n) => n.stop()));
      await redis.stop();
    },
  };
}

/** Starts `fso-audit record`; `noFsync` runs it with fsync made a no-op (bench/lib/noFsync.mjs). */
export async function startRecorder(brokerUrl, auditDir, { noFsync = false } = {}) {
  const args = [...profileArgs('recorder'), ...(noFsync ? ['--import', NO_FSYNC] : []), binOf('audit-recorder'), 'record', '--dir', auditDir, '--broker', brokerUrl, '--client-id', 'bench-recorder'];
  const proc = startNode('fso-audit record', args, { env: LOG_ENV });
  await proc.waitForLine((_l, j) => j?.msg === 'recording', '"recording" log line');
  return { pid: proc.pid, proc, stop: () => proc.stop() };
}

/**
 * Starts `fso-agent` (with the memory probe preloaded, reachable over IPC)
 * and resolves once every root logged `watching`. `readyAt` is that line's
 * time; `startedAt` the moment before spawn.
 */
export async function startAgent({ id = 'bench', brokerUrl, watch, stateDir, pairWindow, important = [], config, roots = 1, readyTimeoutMs = 600_000, extraArgs = [] }) {
  const args = [...profileArgs('agent'), '--import', PROBE, binOf('agent'), '--id', id, '--state-dir', stateDir, '--broker', brokerUrl];
  if (config) args.push('--config', config);
  else args.push('--watch', watch);
  for (const glob of important) args.push('--important', glob);
  if (pairWindow) args.push('--pair-window', pairWindow);
  args.push(...extraArgs);
  const startedAt = Date.now();
  const proc = startNode('fso-agent', args, { env: LOG_ENV, ipc: true });
  let watching = 0;
  const ready = await proc.waitForLine((_l, j) => j?.msg === 'watching' && ++watching >= roots, '"watching" log line', readyTimeoutMs);
  const readyAt = Date.parse(ready.json.time) || ready.at;
  return { id, pid: proc.pid, proc, startedAt, readyAt, entries: ready.json.entries, stop: () => proc.stop(30_000) };
}

/**
 * Node flags that profile a part: with `BENCH_PROFILE_DIR` set, the parts
 * named in `BENCH_PROFILE` (agent, recorder, broker; default agent) run with
 * `--cpu-prof`, one .cpuprofile each, written when they exit.
 */
function profileArgs(part) {
  const dir = process.env.BENCH_PROFILE_DIR;
  const parts = (process.env.BENCH_PROFILE ?? 'agent').split(',');
  if (!dir || !parts.includes(part)) return [];
  return ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', `${part}-${Date.now()}-${process.pid}.cpuprofile`];
}

/** Asks a child started with the memory probe (or the chokidar child) for its memory figures over IPC. */
export function askMemory(proc, { gc = true } = {}, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.child.off('message', onMessage);
      reject(new Error(`${proc.name}: no memory answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message) => {
      if (message?.bench !== 'memory') return;
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      resolve(message);
    };
    proc.child.on('message', onMessage);
    proc.child.send({ bench: 'memory', gc });
  });
}

/**
 * A bench client following `agentId`'s acks (and, with `diffs`, its diff messages). `ackAt(seq)` is when the first
 * ack covering `seq` was published (the recorder's clock, right after the
 * fsync that made it durable), or undefined.
 */
export async function followAcks(brokerUrl, agentId, { diffs: wantDiffs = false } = {}) {
  const client = mqtt.connect(brokerUrl, { protocolVersion: 4, clientId: `bench-acks-${process.pid}-${agentId}`, reconnectPeriod: 200 });
  const acks = [];
  const diffs = [];
  const waiters = new Set();
  client.on('message', (topic, payload, packet) => {
    if (topic === topics.diffs(agentId)) {
      const d = JSON.parse(payload.toString('utf8'));
      diffs.push({ eventId: d.eventId, path: d.path, emittedAt: Date.parse(d.emittedAt), skipped: d.skipped, added: d.added, removed: d.removed, patchBytes: d.patch?.length ?? 0 });
      return;
    }
    if (topic !== topics.ack(agentId) || packet.retain) return;
    const ack = JSON.parse(payload.toString('utf8'));
    acks.push({ seq: ack.seq, at: Date.parse(ack.at), epoch: ack.epoch });
    for (const w of waiters) if (ack.seq >= w.seq) (waiters.delete(w), w.resolve());
  });
  await client.subscribeAsync(wantDiffs ? [topics.ack(agentId), topics.diffs(agentId)] : topics.ack(agentId), { qos: 1 });
  return {
    acks,
    /** Diff messages seen (with `diffs: true`): eventId, path, emittedAt (ms), skipped, added, removed, patchBytes. */
    diffs,
    get lastSeq() {
      return acks.at(-1)?.seq ?? 0;
    },
    ackAt(seq) {
      let lo = 0;
      let hi = acks.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (acks[mid].seq >= seq) hi = mid;
        else lo = mid + 1;
      }
      return acks[lo]?.at;
    },
    waitForSeq(seq, timeoutMs = 60_000) {
      if ((acks.at(-1)?.seq ?? 0) >= seq) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const w = { seq, resolve: () => (clearTimeout(timer), resolve()) };
        const timer = setTimeout(() => (waiters.delete(w), reject(new Error(`no ack for seq ${seq} within ${timeoutMs} ms (last ${acks.at(-1)?.seq ?? 0})`))), timeoutMs);
        waiters.add(w);
      });
    },
    stop: () => client.endAsync(),
  };
}
