// A fleet of simulated agents in one process, each speaking the real
// protocol: its own client id and MQTT connection, an epoch, seq from 1,
// a retained online status (and an offline last will), QoS 1 fso.event/1 on
// its own events topic, subscribed to its own ack; every message kept until
// an ack covers it and resent after a reconnect (the outbox, in memory).
//
//   node bench/lib/fleetChild.mjs --url mqtt://… --agents 1000 --rate 10 --seconds 15 [--idle] [--prefix sim]
//
// --url may list the nodes of a cluster, comma-separated: agent i connects to
// node i mod n first and, as an agent given FSO_BROKER_URL=a,b does (MQTT.js
// `servers`), tries the next node on each reconnect.
//
// Lines on stdout (JSON): {"fleet":"connected"}, then {"fleet":"sent",…} when the load ends, then
// {"fleet":"acked",…} once every agent's last seq is acknowledged, and {"fleet":"progress",…} every second.
// With --idle: status and heartbeat only (a status every 30 s), no events; it stays until killed.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';

const { values: flags } = parseArgs({
  options: {
    url: { type: 'string' },
    agents: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '15' },
    prefix: { type: 'string', default: 'sim' },
    idle: { type: 'boolean', default: false },
    'connect-rate': { type: 'string', default: '200' },
  },
});
const N = Number(flags.agents);
const RATE = Number(flags.rate);
const SECONDS = Number(flags.seconds);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const iso = (ms) => new Date(ms).toISOString();
const URLS = flags.url.split(',').map((u) => u.trim()).filter((u) => u !== '');
const serverOf = (url) => {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 1883), protocol: u.protocol.replace(/:$/, '') };
};

/** Agent i's broker list: its own node first, then the others in order. */
function serversOf(i) {
  const own = (i - 1) % URLS.length;
  return [...URLS.slice(own), ...URLS.slice(0, own)];
}

function createSim(i) {
  const agentId = `${flags.prefix}-${String(i).padStart(5, '0')}`;
  const epoch = randomBytes(6).toString('hex');
  const pending = new Map(); // seq → payload
  const sim = { agentId, epoch, seq: 0, acked: 0, pending, client: undefined, connected: false, resends: 0 };
  const status = (state) =>
    JSON.stringify({
      schema: 'fso.status/1', agentId, state, hostname: hostname(), version: 'bench', epoch, lastSeq: sim.seq,
      config: { revision: 0, state: 'applied', error: null }, watching: [{ path: '/srv', ready: true, entries: 0 }], at: iso(Date.now()),
    });
  const urls = serversOf(i);
  const client = mqtt.connect(urls[0], {
    ...(urls.length > 1 ? { servers: urls.map(serverOf) } : {}),
    protocolVersion: 4, clientId: agentId, clean: false, reconnectPeriod: 500, connectTimeout: 30_000, keepalive: 60,
    will: { topic: `fso/agents/${agentId}/status`, payload: Buffer.from(status('offline')), qos: 1, retain: true },
  });
  sim.client = client;
  let first = true;
  client.on('connect', () => {
    sim.connected = true;
    client.subscribe(`fso/agents/${agentId}/ack`, { qos: 1 });
    client.publish(`fso/agents/${agentId}/status`, status('online'), { qos: 1, retain: true });
    if (!first) {
      // The outbox: everything not acknowledged goes again (the recorder writes each seq once).
      for (const [, payload] of pending) {
        sim.resends += 1;
        client.publish(payload.topic, payload.body, { qos: 1 });
      }
    }
    first = false;
  });
  client.on('offline', () => (sim.connected = false));
  client.on('error', () => {});
  client.on('message', (_topic, payload) => {
    const ack = JSON.parse(payload.toString('utf8'));
    if (ack.epoch !== epoch) return;
    for (let s = sim.acked + 1; s <= ack.seq; s++) pending.delete(s);
    sim.acked = Math.max(sim.acked, ack.seq);
  });
  // As the agent's --resend-after (default 10 s): with no ack progress for that long, send what is pending again.
  let lastAcked = 0;
  let lastProgressAt = Date.now();
  sim.checkResend = (now) => {
    if (sim.acked !== lastAcked) {
      lastAcked = sim.acked;
      lastProgressAt = now;
      return;
    }
    if (pending.size === 0 || !sim.connected || now - lastProgressAt < 10_000) return;
    lastProgressAt = now;
    for (const [, payload] of pending) {
      sim.resends += 1;
      client.publish(payload.topic, payload.body, { qos: 1 });
    }
  };
  sim.heartbeat = () => client.publish(`fso/agents/${agentId}/status`, status('online'), { qos: 1, retain: true });
  sim.send = () => {
    const seq = (sim.seq += 1);
    const now = Date.now();
    const topic = `fso/agents/${agentId}/events/modify`;
    const body = JSON.stringify({
      schema: 'fso.event/1', id: `${epoch}-${seq}`, agentId, epoch, seq, type: 'modify', path: `/srv/app/f${seq % 100}.txt`, root: '/srv/app',
      kind: 'file', size: 12, mtime: iso(now), sha256: null, important: false, origin: 'live', observedAt: iso(now), emittedAt: iso(now),
    });
    pending.set(seq, { topic, body });
    // While disconnected MQTT.js queues it; a reconnect also resends from `pending` (duplicates are the recorder's to drop).
    client.publish(topic, body, { qos: 1 });
  };
  return sim;
}

// Connect at a bounded pace, as a fleet coming up does (a thundering herd is another test).
const sims = [];
const connectRate = Number(flags['connect-rate']);
for (let i = 1; i <= N; i++) {
  sims.push(createSim(i));
  if (i % connectRate === 0) await new Promise((r) => setTimeout(r, 1000));
}
while (sims.some((s) => !s.connected)) await new Promise((r) => setTimeout(r, 100));
out({ fleet: 'connected', agents: N, at: Date.now() });

const resendTimer = setInterval(() => {
  const now = Date.now();
  for (const s of sims) s.checkResend(now);
}, 1000);
const progress = setInterval(() => {
  const sent = sims.reduce((a, s) => a + s.seq, 0);
  const acked = sims.reduce((a, s) => a + s.acked, 0);
  out({ fleet: 'progress', sent, acked, resends: sims.reduce((a, s) => a + s.resends, 0), disconnected: sims.filter((s) => !s.connected).length });
}, 1000);

if (flags.idle) {
  setInterval(() => {
    for (const s of sims) s.heartbeat();
  }, 30_000);
} else {
  // Each agent sends at RATE/s, spread over the second; one timer drives them all in 10 ms ticks.
  const startedAt = Date.now();
  const total = Math.round(RATE * SECONDS);
  await new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((Date.now() - startedAt) / 1000) * RATE));
      for (const s of sims) while (s.seq < due) s.send();
      if (due >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 10);
  });
  const sentAt = Date.now();
  out({ fleet: 'sent', sent: sims.reduce((a, s) => a + s.seq, 0), startedAt, sentAt });
  while (sims.some((s) => s.acked < s.seq)) await new Promise((r) => setTimeout(r, 50));
  // Which node each agent ended on (a cluster: how many moved after a node died), by the broker's port.
  const byPort = {};
  for (const s of sims) {
    const port = s.client.stream?.remotePort ?? 'none';
    byPort[port] = (byPort[port] ?? 0) + 1;
  }
  out({ fleet: 'acked', at: Date.now(), drainMs: Date.now() - sentAt, resends: sims.reduce((a, s) => a + s.resends, 0), byPort, agents: sims.map((s) => [s.agentId, s.epoch, s.seq]) });
  clearInterval(progress);
  clearInterval(resendTimer);
  await Promise.all(sims.map((s) => s.client.endAsync()));
  process.exit(0);
}
