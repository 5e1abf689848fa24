import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { createTopics, diffSchema, eventSchema, parseAgentConfig, statusSchema } from '@fso/common';
import type { AgentStatus, FsoDiff, FsoEvent } from '@fso/common';
import { createCollector, createTempDir, waitFor } from './helpers.js';
import type { CollectedMessage, MessageCollector } from './helpers.js';

const topics = createTopics();
const isEvent = (m: CollectedMessage): boolean => m.topic.includes('/events/');
const eventOf = (m: CollectedMessage): FsoEvent => eventSchema.parse(m.json);

describe('agent end to end (real broker on port 0, real agent, real temp dirs)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let broker: Broker;
  let agent: Agent | undefined;
  let watched: string;
  let stateDir: string;
  let sub: MessageCollector;

  const config = (revision: number, watch: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) =>
    parseAgentConfig({ schema: 'fso.config/1', revision, watch, ...extra }, 'test');
  const launch = async (initial = config(0, [{ path: watched, important: ['**/*.conf'] }])): Promise<Agent> => {
    agent = await startAgent({ agentId: 'web-01', brokerUrl: broker.url, stateDir, initialConfig: initial, pairWindowMs: 100 });
    await agent.ready();
    await sub.waitFor((m) => m.topic === topics.status('web-01') && (m.json as AgentStatus).state === 'online', 'online status');
    return agent;
  };
  /**
   * The diff of the event that saw `file` with `content`: under load a create can be
   * seen before the write ends (issue 12), and its diff is of the content seen then.
   */
  const diffOfContent = async (file: string, content: string | Buffer): Promise<FsoDiff> => {
    const sha256 = createHash('sha256').update(content).digest('hex');
    const name = path.basename(file);
    const { id } = eventOf(await sub.waitFor((m) => isEvent(m) && eventOf(m).path === file && eventOf(m).sha256 === sha256, `the event of ${name} with its final content`));
    const diff = await sub.waitFor((m) => m.topic === topics.diffs('web-01') && diffSchema.parse(m.json).eventId === id, `the diff of ${name}'s event ${id}`);
    return diffSchema.parse(diff.json);
  };
  const latestStatus = (): AgentStatus | undefined => {
    const all = sub.messages.filter((m) => m.topic === topics.status('web-01'));
    return all.length > 0 ? statusSchema.parse(all[all.length - 1]?.json) : undefined;
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    watched = path.join(tmp.path, 'watched');
    stateDir = path.join(tmp.path, 'state');
    await mkdir(watched);
    broker = await startBroker({ port: 0 });
    sub = await createCollector(broker.url, ['fso/#']);
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    await sub.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('publishes valid events with consecutive seqs, and diffs of important files', async () => {
    const a = await launch();
    const file = path.join(watched, 'app.conf');
    await writeFile(file, 'port=80\n');
    await sub.waitFor((m) => m.topic === topics.diffs('web-01'), 'diff of the create');
    await writeFile(file, 'port=8080\nhost=x\n');
    await sub.waitForCount((m) => m.topic === topics.diffs('web-01'), 2, 'diffs');
    await rm(file);
    const diffs = (await sub.waitForCount((m) => m.topic === topics.diffs('web-01'), 3, 'diffs')).map((m) => diffSchema.parse(m.json));
    const events = sub.messages.filter(isEvent).map(eventOf);
    expect(events.map((e) => e.type)).toEqual(['create', 'modify', 'delete']);
    for (const e of events) {
      expect(e).toMatchObject({ agentId: 'web-01', epoch: a.epoch, root: watched, important: true, origin: 'live' });
      expect(e.id).toBe(`${a.epoch}-${e.seq}`);
      expect(Date.parse(e.emittedAt)).toBeGreaterThanOrEqual(Date.parse(e.observedAt));
    }
    expect(sub.messages.filter(isEvent).map((m) => m.topic)).toEqual(['create', 'modify', 'delete'].map((t) => `fso/agents/web-01/events/${t}`));
    const seqs = [...events.map((e) => e.seq), ...diffs.map((d) => d.seq)].sort((x, y) => x - y);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6]);
    const byEvent = new Map(diffs.map((d: FsoDiff) => [d.eventId, d]));
    expect(byEvent.get(events[0]!.id)).toMatchObject({ added: 1, removed: 0, skipped: null });
    expect(byEvent.get(events[1]!.id)).toMatchObject({ added: 2, removed: 1, skipped: null });
    expect(byEvent.get(events[1]!.id)?.patch).toContain('-port=80\n+port=8080\n+host=x');
    expect(byEvent.get(events[2]!.id)).toMatchObject({ added: 0, removed: 2 });
  });

  it('diffs the first change after a restart against the content seen before it (kept in the state dir)', async () => {
    const file = path.join(watched, 'app.conf');
    let a = await launch();
    await writeFile(file, 'one\ntwo\n');
    await sub.waitFor((m) => m.topic === topics.diffs('web-01'), 'the diff of the create');
    await a.close();
    a = await launch();
    await writeFile(file, 'one\nthree\n');
    const diff = await sub.waitFor((m) => m.topic === topics.diffs('web-01') && diffSchema.parse(m.json).removed > 0, 'the diff after the restart');
    expect(diffSchema.parse(diff.json).patch).toContain('-two\n+three');
  });

  it('skips the diff of binary and too-large important files, and says why', async () => {
    await launch(config(0, [{ path: watched, important: ['**/*'] }], { diff: { maxFileBytes: 1000 } }));
    const blob = Buffer.from([0, 1, 2, 0, 255]);
    const big = 'x'.repeat(5000);
    await writeFile(path.join(watched, 'blob.bin'), blob);
    await writeFile(path.join(watched, 'big.txt'), big);
    expect(await diffOfContent(path.join(watched, 'blob.bin'), blob)).toMatchObject({ skipped: 'binary', patch: null });
    expect(await diffOfContent(path.join(watched, 'big.txt'), big)).toMatchObject({ skipped: 'too-large', patch: null });
  });

  it('redacts secrets from diffs before they leave the host, and never diffs nodiff files (.env, keys)', async () => {
    await launch(config(0, [{ path: watched, important: ['**/*'] }]));
    const secret = 'hunter2-Sup3rS3cret!';
    const conf = `host=db\npassword=${secret}\n`;
    const envText = `API_TOKEN=${secret}\n`;
    await writeFile(path.join(watched, 'db.conf'), conf);
    await writeFile(path.join(watched, '.env'), envText);
    const confDiff = await diffOfContent(path.join(watched, 'db.conf'), conf);
    expect(confDiff.patch).toMatch(/\+password=\[REDACTED:password:[0-9a-f]{8}\]/);
    expect(confDiff.redactions).toEqual([{ kind: 'password', count: 1 }]);
    expect(await diffOfContent(path.join(watched, '.env'), envText)).toMatchObject({ skipped: 'nodiff', patch: null });
    expect(sub.messages.some((m) => m.payload.toString().includes(secret))).toBe(false);
    // The event still carries the hash: a change of a nodiff file is visible, its content is not.
    const env = sub.messages.filter(isEvent).map(eventOf).find((e) => e.path.endsWith('.env'));
    expect(env?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('publishes a retained online status, and offline when it stops', async () => {
    const a = await launch();
    const status = await waitFor(() => (latestStatus()?.watching[0]?.ready ? latestStatus() : undefined), 'a status with the watch ready');
    expect(status).toMatchObject({ state: 'online', epoch: a.epoch, config: { revision: 0, state: 'applied' } });
    expect(status?.watching).toEqual([{ path: watched, ready: true, entries: 0, error: null }]);
    await a.close();
    agent = undefined;
    await waitFor(() => latestStatus()?.state === 'offline', 'offline status');
    const late = await createCollector(broker.url, topics.status('web-01'));
    const retained = await late.waitFor((m) => m.retain, 'the retained status');
    expect(statusSchema.parse(retained.json).state).toBe('offline');
    await late.close();
  });

  it('applies a pushed config live: adds and removes watched dirs, rejects invalid and older configs, keeps running', async () => {
    await launch();
    const second = path.join(tmp.path, 'second');
    await mkdir(second);
    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 5, watch: [{ path: watched }, { path: second }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 5 && latestStatus()?.watching.length === 2 && latestStatus()?.watching.every((w) => w.ready), 'revision 5 applied with two ready watches');
    expect(latestStatus()?.config).toMatchObject({ state: 'applied', source: 'agent', appliedRevision: 5 });
    await writeFile(path.join(second, 'new.txt'), 'hello');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path === path.join(second, 'new.txt'), 'create in the added dir');

    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 6, watch: [{ path: 'relative/dir' }], bogus: 1 }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 6, 'the outcome of revision 6');
    expect(latestStatus()?.config).toMatchObject({ state: 'rejected', appliedRevision: 5 });
    expect(latestStatus()?.config.error).toMatch(/watch\.0\.path: path must be absolute/);
    expect(latestStatus()?.config.error).toMatch(/bogus/);

    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 3, watch: [{ path: watched }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 3, 'the outcome of revision 3');
    expect(latestStatus()?.config).toMatchObject({ state: 'rejected', error: expect.stringContaining('lower than revision 5') });

    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 7, watch: [{ path: watched }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 7 && latestStatus()?.watching.length === 1, 'revision 7 applied with one watch');
    const before = sub.messages.filter(isEvent).length;
    await writeFile(path.join(second, 'unwatched.txt'), 'nobody looks');
    await writeFile(path.join(watched, 'still.txt'), 'still watched');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path === path.join(watched, 'still.txt'), 'create in the kept dir');
    expect(sub.messages.filter(isEvent).slice(before).map((m) => eventOf(m).path)).toEqual([path.join(watched, 'still.txt')]);
  });

  it('does not repeat events for an unchanged watch when a new config arrives', async () => {
    await writeFile(path.join(watched, 'existing.txt'), 'x');
    await launch();
    const other = path.join(tmp.path, 'other');
    await mkdir(other);
    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 1, watch: [{ path: watched, important: ['**/*.conf'] }, { path: other }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 1 && latestStatus()?.watching.every((w) => w.ready), 'revision 1 applied');
    await writeFile(path.join(watched, 'marker.txt'), 'm');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path.endsWith('marker.txt'), 'the marker create');
    expect(sub.messages.filter(isEvent).map((m) => path.basename(eventOf(m).path))).toEqual(['marker.txt']);
  });

  it('uses the default config when it has none of its own, and its own over the default', async () => {
    await launch();
    const def = path.join(tmp.path, 'def');
    await mkdir(def);
    await sub.client.publishAsync(topics.defaultConfig(), JSON.stringify({ schema: 'fso.config/1', revision: 1, watch: [{ path: def }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.source === 'default' && latestStatus()?.watching[0]?.path === def, 'the default config in force');
    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 1, watch: [{ path: watched }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.source === 'agent' && latestStatus()?.watching[0]?.path === watched, 'its own config in force');
    await sub.client.publishAsync(topics.defaultConfig(), JSON.stringify({ schema: 'fso.config/1', revision: 2, watch: [{ path: def }] }), { qos: 1, retain: true });
    await writeFile(path.join(watched, 'own.txt'), 'own');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path.endsWith('own.txt'), 'an event from its own config');
    expect(latestStatus()?.config.source).toBe('agent');
  });

  it('keeps the last applied config in its state dir and starts with it', async () => {
    const a = await launch();
    const kept = path.join(tmp.path, 'kept');
    await mkdir(kept);
    await sub.client.publishAsync(topics.config('web-01'), JSON.stringify({ schema: 'fso.config/1', revision: 9, watch: [{ path: kept }] }), { qos: 1, retain: true });
    await waitFor(() => latestStatus()?.config.revision === 9, 'revision 9 applied');
    await a.close();
    // Clear the retained config: the restarted agent must run revision 9 from its state dir alone.
    await sub.client.publishAsync(topics.config('web-01'), '', { qos: 1, retain: true });
    agent = await startAgent({ agentId: 'web-01', brokerUrl: broker.url, stateDir, pairWindowMs: 100 });
    await agent.ready();
    expect(agent.config()?.revision).toBe(9);
    expect(agent.status().watching.map((w) => w.path)).toEqual([kept]);
  });

  it('reports changes made while it was down once (origin scan), and nothing again on the next restart', async () => {
    await writeFile(path.join(watched, 'keep.txt'), 'same');
    await writeFile(path.join(watched, 'edit.txt'), 'before');
    await writeFile(path.join(watched, 'gone.txt'), 'bye');
    let a = await launch();
    await writeFile(path.join(watched, 'live.txt'), 'live');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path.endsWith('live.txt'), 'the live create');
    await a.close();
    await writeFile(path.join(watched, 'edit.txt'), 'after, longer');
    await rm(path.join(watched, 'gone.txt'));
    await writeFile(path.join(watched, 'new.txt'), 'new');
    const before = sub.messages.filter(isEvent).length;
    a = await launch();
    await sub.waitForCount((m) => isEvent(m) && eventOf(m).origin === 'scan', 3, 'scan events');
    await a.close();
    a = await launch();
    await writeFile(path.join(watched, 'marker.txt'), 'm');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path.endsWith('marker.txt'), 'the marker');
    // No recorder acknowledges here, so restarts resend old messages (same ids): leave those out.
    const seenIds = new Set(sub.messages.filter(isEvent).slice(0, before).map((m) => eventOf(m).id));
    const after = sub.messages.filter(isEvent).slice(before).map((m) => eventOf(m)).filter((e) => !seenIds.has(e.id) && (seenIds.add(e.id), true));
    const summary = after.map((e) => `${e.type} ${path.basename(e.path)} ${e.origin}`);
    expect(summary.slice(0, 3).sort()).toEqual(['create new.txt scan', 'delete gone.txt scan', 'modify edit.txt scan']);
    expect(summary.slice(3)).toEqual(['create marker.txt live']);
  });

  it('says loudly when its outbox is full: the lost seqs are announced in its status, never dropped silently', async () => {
    agent = await startAgent({
      agentId: 'web-01', brokerUrl: broker.url, stateDir, pairWindowMs: 100, outboxMaxBytes: 2000,
      initialConfig: config(0, [{ path: watched }]),
    });
    await agent.ready();
    for (let i = 0; i < 20; i += 1) await writeFile(path.join(watched, `f${i}.txt`), `${i}`);
    await waitFor(() => latestStatus()?.outbox?.full && (latestStatus()?.outbox?.lost?.length ?? 0) > 0, 'a status announcing lost seqs', 30_000);
    await waitFor(() => agent!.status().outbox!.lost!.reduce((n, r) => n + r.toSeq - r.fromSeq + 1, 0) + sub.messages.filter(isEvent).length >= 20, 'every change either published or announced lost', 30_000);
    const status = agent.status();
    const published = new Set(sub.messages.filter(isEvent).map((m) => eventOf(m).seq));
    const lost = status.outbox!.lost!.flatMap((r) => Array.from({ length: r.toSeq - r.fromSeq + 1 }, (_, k) => r.fromSeq + k));
    // Every seq is accounted for exactly once: published, or announced lost.
    expect(lost.filter((q) => published.has(q))).toEqual([]);
    expect([...published, ...lost].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
    // An ack past the lost range frees the outbox and clears the announcement.
    await sub.client.publishAsync(topics.ack('web-01'), JSON.stringify({ schema: 'fso.ack/1', epoch: agent.epoch, seq: 20, at: new Date().toISOString() }), { qos: 1, retain: true });
    await waitFor(() => agent!.status().outbox?.pending === 0 && agent!.status().outbox?.lost?.length === 0 && !agent!.status().outbox?.full, 'the outbox to be empty again');
  });

  it('keeps unacknowledged messages in its outbox and resends them after a restart', async () => {
    const a = await launch();
    await writeFile(path.join(watched, 'one.txt'), '1');
    await sub.waitFor((m) => isEvent(m), 'the first event');
    await a.close();
    agent = undefined;
    await launch();
    // No recorder acknowledged seq 1, so the restarted agent sends it again (the recorder drops the duplicate).
    const copies = await sub.waitForCount((m) => isEvent(m) && eventOf(m).seq === 1, 2, 'seq 1 sent, then resent after the restart');
    expect(copies.map((m) => eventOf(m).path)).toEqual([path.join(watched, 'one.txt'), path.join(watched, 'one.txt')]);
    expect(eventOf(copies[1]!).id).toBe(eventOf(copies[0]!).id);
    // An ack for the epoch empties the outbox: the next restart resends nothing.
    await sub.client.publishAsync(topics.ack('web-01'), JSON.stringify({ schema: 'fso.ack/1', epoch: agent!.epoch, seq: 1, at: new Date().toISOString() }), { qos: 1, retain: true });
    await waitFor(() => agent!.status().outbox?.pending === 0, 'the ack to empty the outbox');
    await agent!.close();
    const count = sub.messages.filter(isEvent).length;
    await launch();
    await writeFile(path.join(watched, 'two.txt'), '2');
    await sub.waitFor((m) => isEvent(m) && eventOf(m).path.endsWith('two.txt'), 'the next event');
    const after = sub.messages.filter(isEvent).slice(count).map((m) => eventOf(m));
    expect(after.map((e) => e.seq)).toEqual([2]);
  });
});
