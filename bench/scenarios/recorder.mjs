// Scenario 5: the recorder alone. A bench client publishes M valid event
// messages (QoS 1) as fast as it can; records/s = M ÷ (first publish → the
// ack covering seq M). The same recorder runs with group-commit fsync and with
// fsync made a no-op (bench/lib/noFsync.mjs), alternating.
import path from 'node:path';
import mqtt from 'mqtt';
import { createTopics, eventSchema } from '@fso/common';
import { createAuditTail } from '../lib/audit.mjs';
import { nowMs } from '../lib/generator.mjs';
import { tempDir, withResources } from '../lib/processes.mjs';
import { followAcks, startBroker, startRecorder } from '../lib/stack.mjs';
import { pairedRatios, spread } from '../lib/stats.mjs';

const AGENT = 'bench-rec';
const topics = createTopics();

/** M event messages of one epoch, seq 1..M, validated against the event schema. */
function messages(m) {
  const epoch = `bench${Date.now().toString(36)}`;
  const at = new Date().toISOString();
  const out = [];
  for (let seq = 1; seq <= m; seq += 1) {
    const event = {
      schema: 'fso.event/1', id: `${epoch}-${seq}`, agentId: AGENT, epoch, seq, type: 'modify',
      path: `/srv/app/file-${seq}.txt`, root: '/srv/app', kind: 'file', size: 120, mtime: at,
      sha256: 'ab'.repeat(32), hashSkipped: null, important: false, origin: 'live', observedAt: at, emittedAt: at,
    };
    if (seq === 1) eventSchema.parse(event);
    out.push(JSON.stringify(event));
  }
  return out;
}

/** One recorder run; returns records/s and whether every message is in the audit file. */
export async function runRecorder({ m, noFsync }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir(noFsync ? 'rec-nofsync' : 'rec-fsync'));
    const audit = path.join(tmp.path, 'audit');
    // The broker's per-client publish rate limit (--max-publish-rate, 2,000/s by default) would
    // measure itself here, not the recorder: this scenario lifts it.
    const broker = track(await startBroker('embedded', tmp.path, { args: ['--max-publish-rate', '0'] }));
    track(await startRecorder(broker.url, audit, { noFsync }));
    const acks = track(await followAcks(broker.url, AGENT));
    const client = mqtt.connect(broker.url, { protocolVersion: 4, clientId: `bench-publisher-${process.pid}` });
    track({ stop: () => client.endAsync() });
    await new Promise((resolve, reject) => (client.once('connect', resolve), client.once('error', reject)));
    const payloads = messages(m);
    const topic = topics.event(AGENT, 'modify');
    const t0 = nowMs();
    for (const payload of payloads) client.publish(topic, payload, { qos: 1 });
    await acks.waitForSeq(m, 300_000);
    const ms = acks.ackAt(m) - t0;
    const tail = createAuditTail(audit);
    await tail.poll();
    return { ms, recordsPerSec: (m * 1000) / ms, recorded: tail.events.length, commits: acks.acks.length };
  });
}

/** `repeats` rounds of fsync / no-fsync (order alternating). */
export async function recorderScenario({ m, repeats, progress }) {
  const runs = { fsync: [], noFsync: [] };
  for (let r = 0; r < repeats; r += 1) {
    for (const noFsync of r % 2 ? [true, false] : [false, true]) {
      const run = await runRecorder({ m, noFsync });
      runs[noFsync ? 'noFsync' : 'fsync'].push(run);
      progress(`recorder ${r + 1}/${repeats} ${noFsync ? 'no fsync' : 'group fsync'}: ${Math.round(run.recordsPerSec)} records/s, ${run.recorded}/${m} recorded, ${run.commits} acks`);
    }
  }
  const rate = (k) => runs[k].map((x) => x.recordsPerSec);
  return {
    m,
    repeats,
    recordsPerSec: { fsync: spread(rate('fsync'), 0), noFsync: spread(rate('noFsync'), 0) },
    fsyncOverNoFsync: pairedRatios(rate('fsync'), rate('noFsync')),
    missing: [...runs.fsync, ...runs.noFsync].reduce((s, x) => s + (m - x.recorded), 0),
    runs,
  };
}
