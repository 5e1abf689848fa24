import { readFileSync, readdirSync } from 'node:fs';
import { appendFile, readFile, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { ackSchema, createTopics, gapRecordSchema } from '@fso/common';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCollector, createTempDir, waitFor } from '../../../tests/helpers.js';
import type { MessageCollector } from '../../../tests/helpers.js';
import { main } from './cli.js';
import { startRecorder } from './recorder.js';
import type { Recorder, RecorderOptions } from './recorder.js';
import { readKind } from './testing/auditDir.js';
import { makeConfig, makeDiff, makeEvent, makeGap, makeStatus } from './testing/messages.js';
import { captureOutput } from './testing/output.js';
import { startTestBroker } from './testing/testBroker.js';
import type { TestBroker } from './testing/testBroker.js';
import { verifyAuditDir } from '@fso/audit-trail';

const topics = createTopics();
let broker: TestBroker;
let tmp: { path: string; cleanup: () => Promise<void> };
let dir: string;
let publisher: MqttClient;
const open: Array<{ close(): Promise<void> }> = [];

beforeEach(async () => {
  broker = await startTestBroker();
  tmp = await createTempDir('fso-recorder-');
  dir = path.join(tmp.path, 'audit');
  publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
});

afterEach(async () => {
  for (const thing of open.splice(0).reverse()) await thing.close();
  await publisher.endAsync();
  await broker.close();
  await tmp.cleanup();
});

async function record(options: Partial<RecorderOptions> = {}): Promise<Recorder> {
  const recorder = await startRecorder({ brokerUrl: broker.url, dir, clientId: 'fso-audit-test', ...options });
  open.push(recorder);
  return recorder;
}

async function collect(topic: string): Promise<MessageCollector> {
  const collector = await createCollector(broker.url, topic);
  open.push(collector);
  return collector;
}

const publish = (topic: string, message: unknown, retain = false): Promise<unknown> =>
  publisher.publishAsync(topic, typeof message === 'string' ? message : JSON.stringify(message), { qos: 1, retain });

const publishEvent = (agentId: string, epoch: string, seq: number): Promise<unknown> =>
  publish(topics.event(agentId, 'modify'), makeEvent(agentId, epoch, seq));

/** Waits until `kind` holds `count` records matching `predicate`; returns all of that kind. */
async function waitForRecords(
  kind: 'events' | 'diffs' | 'rejected',
  count: number,
  what: string,
  predicate: (r: Record<string, unknown>) => boolean = () => true,
): Promise<Array<Record<string, unknown>>> {
  return waitFor(async () => {
    const records = await readKind(dir, kind);
    return records.filter(predicate).length >= count ? records : undefined;
  }, what);
}

const seqsOf = (records: Array<Record<string, unknown>>, epoch: string): unknown[] =>
  records.filter((r) => r.record === 'event' && r.epoch === epoch).map((r) => r.seq);

describe('startRecorder', () => {
  it('records events, diffs, status and config as message fields + record, topic, receivedAt, chained', async () => {
    await record();
    const event = makeEvent('web-01', 'e1', 1, { type: 'rename', oldPath: '/srv/app/old.conf', path: '/srv/app/new.conf' });
    await publish(topics.event('web-01', 'rename'), event);
    await publish(topics.diffs('web-01'), makeDiff('web-01', 'e1', 2));
    await publish(topics.status('web-01'), makeStatus('web-01', 'e1', 2), true);
    await publish(topics.config('web-01'), makeConfig(7), true);
    await publish(topics.defaultConfig(), makeConfig(3), true);

    const events = await waitForRecords('events', 4, 'event, status and two config records');
    const diffs = await waitForRecords('diffs', 1, 'the diff record');
    const [first] = events;
    expect(Object.keys(first ?? {})).toEqual([...Object.keys(event), 'record', 'topic', 'receivedAt', 'prevHash', 'hash']);
    expect(first).toMatchObject({ ...event, record: 'event', topic: topics.event('web-01', 'rename') });
    expect(first?.receivedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(events.map((r) => r.record)).toEqual(['event', 'status', 'config', 'config']);
    expect(events[2]).toMatchObject({ revision: 7, topic: topics.config('web-01') });
    expect(events[3]).toMatchObject({ revision: 3, topic: topics.defaultConfig() });
    expect(diffs[0]).toMatchObject({ record: 'diff', seq: 2, topic: topics.diffs('web-01') });
    // One chain per kind: each line's prevHash is the previous line's hash.
    expect(events[1]?.prevHash).toBe(events[0]?.hash);
    expect(diffs[0]?.prevHash).toBe('0'.repeat(64));
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const day = String(first?.receivedAt).slice(0, 10);
    expect((await stat(path.join(dir, `events-${day}.jsonl`))).mode & 0o777).toBe(0o600);
    expect(await verifyAuditDir(dir)).toEqual({ ok: true, files: 2, lines: 5 });
  });

  it('writes a message delivered twice once, and acks the contiguous seq once it is on disk', async () => {
    const acks = await collect(topics.ack('web-01'));
    await record();
    // What is on disk at the very moment each ack arrives.
    const onDiskAtAck: Array<{ ack: number; seqs: unknown[] }> = [];
    acks.client.on('message', (_topic, payload) => {
      const text = readdirSync(dir)
        .filter((n) => n.startsWith('events-'))
        .map((n) => readFileSync(path.join(dir, n), 'utf8'))
        .join('');
      const seqs = text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: unknown }).seq);
      onDiskAtAck.push({ ack: (JSON.parse(payload.toString()) as { seq: number }).seq, seqs });
    });
    await publishEvent('web-01', 'e1', 1);
    await publishEvent('web-01', 'e1', 3);
    const first = await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 1, 'ack of seq 1');
    expect(ackSchema.parse(first.json)).toMatchObject({ schema: 'fso.ack/1', epoch: 'e1', seq: 1 });
    await publishEvent('web-01', 'e1', 2);
    await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 3, 'ack of seq 3 once 2 filled the hole');
    // Each ack came after the write: everything it covers was already in the file.
    expect(onDiskAtAck.slice(0, 2)).toEqual([
      { ack: 1, seqs: [1, 3] },
      { ack: 3, seqs: [1, 3, 2] },
    ]);
    expect(acks.messages.some((m) => (m.json as { seq?: number })?.seq === 2)).toBe(false);

    await publishEvent('web-01', 'e1', 2);
    await publishEvent('web-01', 'e1', 1);
    await publishEvent('web-01', 'e1', 4);
    await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 4, 'ack of seq 4');
    await publishEvent('web-01', 'e1', 4);
    // A duplicate means the agent missed an ack: it is sent again.
    await acks.waitForCount((m) => (m.json as { seq?: number })?.seq === 4, 2, 'ack of seq 4, re-sent for the duplicate');
    expect(seqsOf(await readKind(dir, 'events'), 'e1')).toEqual([1, 3, 2, 4]);
  });

  it('rejects malformed, invalid and mismatched messages with the reason, and keeps recording', async () => {
    const recorder = await record();
    const huge = 'x'.repeat(10_000);
    await publish(topics.event('web-01', 'modify'), '{"schema": "fso.event/1", oops');
    await publish(topics.event('web-01', 'modify'), makeEvent('web-01', 'e1', 0));
    await publish(topics.event('web-02', 'modify'), makeEvent('web-01', 'e1', 1));
    await publish(topics.event('web-01', 'create'), makeEvent('web-01', 'e1', 1));
    await publish(`${topics.prefix}/agents/web-01/bogus`, makeEvent('web-01', 'e1', 1));
    await publish(topics.event('web-01', 'modify'), { ...makeEvent('web-01', 'e1', 1), hash: 'forged' });
    await publish(topics.status('web-01'), huge);
    await publish(topics.event('web-01', 'modify'), makeEvent('web-01', 'e1', 1));

    const rejected = await waitForRecords('rejected', 7, 'seven rejected records');
    expect(rejected.map((r) => r.reason)).toEqual([
      expect.stringContaining('not JSON'),
      expect.stringMatching(/invalid event: seq: /),
      expect.stringContaining('does not match the topic\'s agent "web-02"'),
      expect.stringContaining('does not match the topic\'s event type "create"'),
      'not a known FSO topic',
      'field "hash" is reserved for the recorder',
      expect.stringContaining('not JSON'),
    ]);
    expect(rejected[0]).toMatchObject({ topic: topics.event('web-01', 'modify'), payload: '{"schema": "fso.event/1", oops', payloadBytes: 30 });
    expect(rejected[6]).toMatchObject({ payload: huge.slice(0, 4096), payloadBytes: 10_000, retained: false });
    await waitForRecords('events', 1, 'the valid event after the bad ones', (r) => r.seq === 1);
    expect(await readKind(dir, 'events')).toHaveLength(1);
    expect(await verifyAuditDir(dir)).toMatchObject({ ok: true, lines: 8 });
    const closing = recorder.close();
    expect(recorder.close()).toBe(closing);
    await closing;
  });

  it('never writes a record twice across a restart, and records what queued while it was down', async () => {
    const first = await record();
    await publish(topics.status('web-01'), makeStatus('web-01', 'e1', 2), true);
    await publish(topics.config('web-01'), makeConfig(7), true);
    await publishEvent('web-01', 'e1', 1);
    await publishEvent('web-01', 'e1', 2);
    await waitForRecords('events', 4, 'status, config and two events');
    await first.close();

    await publishEvent('web-01', 'e1', 3); // Queued by the broker for the persistent session.
    await record();
    await waitForRecords('events', 1, 'seq 3, queued while the recorder was down', (r) => r.seq === 3);
    for (const seq of [1, 2, 3]) await publishEvent('web-01', 'e1', seq); // An agent resending.
    await publishEvent('web-01', 'e1', 4);
    const events = await waitForRecords('events', 1, 'seq 4', (r) => r.seq === 4);
    expect(seqsOf(events, 'e1')).toEqual([1, 2, 3, 4]);
    // The retained status and config came again on subscribe, and were not recorded again.
    expect(events.filter((r) => r.record === 'status')).toHaveLength(1);
    expect(events.filter((r) => r.record === 'config')).toHaveLength(1);
    expect(await verifyAuditDir(dir)).toMatchObject({ ok: true, lines: 6 });
  });

  it('records a cleared config (empty retained payload)', async () => {
    await record();
    await publish(topics.config('web-01'), makeConfig(7), true);
    await publish(topics.config('web-01'), '', true);
    const events = await waitForRecords('events', 1, 'the cleared config', (r) => r.cleared === true);
    expect(events.map((r) => [r.record, r.revision ?? null, r.cleared ?? null])).toEqual([
      ['config', 7, null],
      ['config', null, true],
    ]);
  });

  it('repairs a torn last line at start, and the chain goes on intact', async () => {
    const first = await record();
    await publishEvent('web-01', 'e1', 1);
    const [recorded] = await waitForRecords('events', 1, 'seq 1');
    await first.close();
    const file = path.join(dir, `events-${String(recorded?.receivedAt).slice(0, 10)}.jsonl`);
    const intact = await readFile(file, 'utf8');
    await appendFile(file, '{"schema":"fso.event/1","id":"e1-2","agentId":"web-01","ep');

    await record();
    expect(await readFile(file, 'utf8')).toBe(intact);
    await publishEvent('web-01', 'e1', 2);
    await waitForRecords('events', 1, 'seq 2 after the repair', (r) => r.seq === 2);
    expect(await verifyAuditDir(dir)).toMatchObject({ ok: true, lines: 2 });
  });

  it('writes the seqs a status announces lost (outbox full) as gap records, once, and acks past them', async () => {
    const acks = await collect(topics.ack('web-01'));
    await record();
    for (const seq of [1, 2, 5]) await publishEvent('web-01', 'e1', seq);
    await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 2, 'ack of seq 2');
    const full = makeStatus('web-01', 'e1', 5, { outbox: { pending: 1, ackedSeq: 2, full: true, lost: [{ fromSeq: 3, toSeq: 4 }] } });
    await publish(topics.status('web-01'), full, true);
    await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 5, 'ack of seq 5, past the lost range');
    await publish(topics.status('web-01'), { ...full, at: new Date().toISOString() }, true);
    const events = await waitForRecords('events', 2, 'both statuses', (r) => r.record === 'status');
    expect(events.filter((r) => r.record === 'gap')).toMatchObject([{ epoch: 'e1', fromSeq: 3, toSeq: 4, reason: 'outbox-full' }]);
  });

  it("records an agent's gap message (watcher overflow) as a gap line in its seq, once, acked like an event; rejects a malformed one", async () => {
    const acks = await collect(topics.ack('web-01'));
    await record();
    await publishEvent('web-01', 'e1', 1);
    const gap = makeGap('web-01', 'e1', 2);
    await publish(topics.gaps('web-01'), gap);
    await publish(topics.gaps('web-01'), gap);
    await publish(topics.gaps('web-01'), { ...makeGap('web-01', 'e1', 9), reason: 'bored' });
    await publish(topics.gaps('web-02'), makeGap('web-01', 'e1', 10));
    await publishEvent('web-01', 'e1', 3);
    await acks.waitFor((m) => (m.json as { seq?: number })?.seq === 3, 'ack of seq 3 (past the gap message)');
    const rejected = await waitForRecords('rejected', 2, 'the two bad gap messages');
    expect(rejected.map((r) => r.reason)).toEqual([expect.stringMatching(/^invalid gap: reason/), expect.stringMatching(/does not match the topic's agent/)]);
    const events = await readKind(dir, 'events');
    const gaps = events.filter((r) => r.record === 'gap');
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ ...gap, record: 'gap', topic: topics.gaps('web-01') });
    expect(gapRecordSchema.parse(gaps[0])).toMatchObject({ reason: 'watcher-overflow', seq: 2 });
    expect(events.map((r) => r.seq)).toEqual([1, 2, 3]);
    // A restart rebuilds the ledger from the files: the gap message's seq counts as recorded.
    for (const thing of open.splice(1)) await thing.close();
    await record();
    await publish(topics.gaps('web-01'), gap);
    await publishEvent('web-01', 'e1', 4);
    await waitForRecords('events', 1, 'seq 4 after the restart', (r) => r.seq === 4);
    expect((await readKind(dir, 'events')).filter((r) => r.record === 'gap')).toHaveLength(1);
    expect(await verifyAuditDir(dir)).toMatchObject({ ok: true });
  });

  it('writes gap records for what an old epoch can never send once the agent starts a new one', async () => {
    const acks = await collect(topics.ack('web-01'));
    const first = await record();
    await publish(topics.status('web-01'), makeStatus('web-01', 'old', 6), true);
    for (const seq of [1, 2, 4]) await publishEvent('web-01', 'old', seq);
    await waitForRecords('events', 3, 'three events of the old epoch', (r) => r.record === 'event');
    await publish(topics.status('web-01'), makeStatus('web-01', 'new', 0), true);
    await publishEvent('web-01', 'new', 1);

    const events = await waitForRecords('events', 1, 'seq 1 of the new epoch', (r) => r.epoch === 'new' && r.seq === 1);
    const gaps = events.filter((r) => r.record === 'gap');
    expect(gaps.map((g) => gapRecordSchema.parse(g))).toMatchObject([
      { agentId: 'web-01', epoch: 'old', fromSeq: 3, toSeq: 3, reason: 'epoch-changed', topic: topics.status('web-01') },
      { agentId: 'web-01', epoch: 'old', fromSeq: 5, toSeq: 6, reason: 'epoch-changed' },
    ]);
    // Gaps come before the new epoch's first record.
    expect(events.map((r) => `${r.record}:${r.epoch}`).slice(4)).toEqual(['gap:old', 'gap:old', 'status:new', 'event:new']);
    await acks.waitFor((m) => (m.json as { epoch?: string; seq?: number })?.epoch === 'new' && (m.json as { seq?: number }).seq === 1, 'ack of the new epoch');

    await first.close();
    await record();
    await publishEvent('web-01', 'new', 2);
    const after = await waitForRecords('events', 1, 'seq 2 of the new epoch', (r) => r.epoch === 'new' && r.seq === 2);
    expect(after.filter((r) => r.record === 'gap'), JSON.stringify(after, null, 1)).toHaveLength(2);
    expect(await verifyAuditDir(dir)).toMatchObject({ ok: true });
  });
});

describe('fso-audit record', () => {
  it('runs until stopped and exits 0', async () => {
    const controller = new AbortController();
    const exit = main(['record', '--dir', dir, '--broker', broker.url, '--client-id', 'cli-test'], { signal: controller.signal, stderr: captureOutput().stream });
    await waitFor(async () => {
      await publishEvent('web-01', 'e1', 1);
      return (await readKind(dir, 'events')).length > 0;
    }, 'the CLI recorder to record seq 1');
    controller.abort();
    expect(await exit).toBe(0);
  });

  it('stops acking and exits 1 when an audit file cannot be written', async () => {
    const acks = await collect(topics.ack('web-01'));
    const stderr = captureOutput();
    const exit = main(['record', '--dir', dir, '--broker', broker.url, '--client-id', 'cli-fail'], { signal: new AbortController().signal, stderr: stderr.stream });
    const [config] = await waitFor(async () => {
      await publish(topics.defaultConfig(), makeConfig(1), true);
      const records = await readKind(dir, 'events');
      return records.length > 0 ? records : undefined;
    }, 'the CLI recorder to record the default config');
    // A planted symlink (to a full device) where the day's diffs file goes: the recorder refuses to write through it.
    await symlink('/dev/full', path.join(dir, `diffs-${String(config?.receivedAt).slice(0, 10)}.jsonl`));
    await publish(topics.diffs('web-01'), makeDiff('web-01', 'e1', 1));
    expect(await exit).toBe(1);
    expect(stderr.text()).toContain('audit write failed');
    expect(acks.messages).toHaveLength(0);
  });
});

describe('alerts (fso.alert/1)', () => {
  const alert = (id: string, rule = 'mass-delete') => ({
    schema: 'fso.alert/1', id, rule, state: 'firing', severity: 'critical', key: 'web-01', summary: 'mass delete', agentId: 'web-01', path: null,
    count: 100, firstAt: '2026-12-05T10:00:00.000Z', lastAt: '2026-12-05T10:00:01.000Z', samples: [], source: 'test', at: '2026-12-05T10:00:01.100Z',
  });

  it('records an alert once however often it is delivered, and rejects one whose rule is not its topic', async () => {
    await record();
    await publish(topics.alerts('mass-delete'), alert('mass-delete:a-1:firing'));
    await publish(topics.alerts('mass-delete'), alert('mass-delete:a-1:firing'));
    await publish(topics.alerts('other'), alert('mass-delete:a-2:firing'));
    await publish(topics.alerts('mass-delete'), alert('mass-delete:a-1:resolved'));
    const rejected = await waitForRecords('rejected', 1, 'the alert on the wrong topic');
    expect(rejected[0]?.reason).toMatch(/rule "mass-delete" does not match the topic's rule "other"/);
    const events = await waitForRecords('events', 2, 'two alert records', (r) => r.record === 'alert');
    expect(events.filter((r) => r.record === 'alert').map((r) => r.id)).toEqual(['mass-delete:a-1:firing', 'mass-delete:a-1:resolved']);
    expect(events.find((r) => r.record === 'alert')).toMatchObject({ topic: 'fso/alerts/mass-delete', rule: 'mass-delete', count: 100 });
    expect((await verifyAuditDir(dir)).ok).toBe(true);
  });
});
