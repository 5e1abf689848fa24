import { readFile } from 'node:fs/promises';
import { EVENT_TYPES, diffSchema, eventSchema, statusSchema } from '@fso/common';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, sealLine } from './chain.js';
import { ECS_VERSION, toEcs } from './ecs.js';
import type { EcsDocument } from './ecs.js';
import { generateTrail } from './testing/trail.js';

const SHA = '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03';

/** A record as read back from an audit file: the message (validated by its schema), the recorder's fields, the seal. */
function auditLine(message: Record<string, unknown>, record: string, topic: string, receivedAt = '2026-11-22T10:00:00.140Z'): Record<string, unknown> {
  const sealed = sealLine({ ...message, record, topic, receivedAt }, GENESIS_HASH);
  return JSON.parse(sealed.text) as Record<string, unknown>;
}

const event = (fields: Record<string, unknown>): Record<string, unknown> => {
  const message = eventSchema.parse({
    schema: 'fso.event/1', id: 'k3x9q2-1042', agentId: 'web-01', epoch: 'k3x9q2', seq: 1042, type: 'modify',
    path: '/srv/app/app.conf', root: '/srv/app', kind: 'file', size: 6, mtime: '2026-11-22T10:00:00.100Z', sha256: SHA,
    hashSkipped: null, important: true, origin: 'live', observedAt: '2026-11-22T10:00:00.120Z', emittedAt: '2026-11-22T10:00:00.131Z',
    ...fields,
  });
  return auditLine(message, 'event', `fso/agents/web-01/events/${message.type}`);
};

/** ECS 8.x's expected `event.type` values per `event.category` (ECS categorization fields). */
const ECS_EXPECTED_TYPES: Record<string, string[]> = {
  file: ['access', 'change', 'creation', 'deletion', 'info'],
  host: ['access', 'change', 'end', 'info', 'start'],
  configuration: ['access', 'change', 'creation', 'deletion', 'info'],
};
const ECS_KINDS = ['alert', 'asset', 'enrichment', 'event', 'metric', 'state', 'pipeline_error', 'signal'];

/** Every leaf of a document, as `dotted.path` → value. */
function leaves(value: unknown, prefix = ''): Array<[string, unknown]> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [[prefix, value]];
  return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

/** The invariants every document keeps, whatever the record. */
function expectValidEcs(doc: EcsDocument): void {
  expect(Number.isNaN(Date.parse(doc['@timestamp'])), `@timestamp ${doc['@timestamp']}`).toBe(false);
  expect(doc.ecs.version).toBe(ECS_VERSION);
  expect(ECS_KINDS).toContain(doc.event.kind);
  expect(doc.event.module).toBe('fso');
  expect(doc.event.dataset).toMatch(/^fso\.[a-z]+$/);
  for (const category of doc.event.category) {
    for (const type of doc.event.type) expect(ECS_EXPECTED_TYPES[category], `${category}/${type}`).toContain(type);
  }
  for (const [field, value] of leaves(doc)) {
    expect(value, `${field} is set`).not.toBeNull();
    expect(value, `${field} is set`).not.toBeUndefined();
  }
  // ECS labels are keywords.
  for (const value of Object.values((doc.labels as Record<string, unknown> | undefined) ?? {})) expect(typeof value).toBe('string');
}

describe('toEcs: events', () => {
  it('maps who made it (issue 16) to ECS user.*, process.* and related.user as Auditbeat does; a missing who to fso.who_missing', () => {
    const doc = toEcs(event({
      who: { uid: 1000, user: 'alice', gid: 1000, euid: 0, euser: 'root', auid: 1000, auser: 'alice', pid: 4242, ppid: 4200, exe: '/usr/bin/sed', comm: 'sed', source: 'fanotify' },
    }));
    expectValidEcs(doc);
    expect(doc.user).toEqual({ id: '1000', name: 'alice', group: { id: '1000' }, effective: { id: '0', name: 'root' }, audit: { id: '1000', name: 'alice' } });
    expect(doc.process).toEqual({ pid: 4242, executable: '/usr/bin/sed', name: 'sed', parent: { pid: 4200 } });
    expect((doc.related as { user: string[]; hosts: string[] }).user).toEqual(['alice', 'root']);
    expect((doc.related as { hosts: string[] }).hosts).toEqual(['web-01']);
    expect(doc.message).toMatch(/ by alice\(1000\) sed\[4242\] \/usr\/bin\/sed$/);

    const gone = toEcs(event({ who: null, whoMissing: 'process-gone' }));
    expectValidEcs(gone);
    expect(gone.user).toBeUndefined();
    expect((gone.fso as Record<string, unknown>).who_missing).toBe('process-gone');
    expect(gone.message).toMatch(/\(who: process-gone\)$/);
    // who-data off: nothing about it.
    expect(toEcs(event({})).message).not.toMatch(/who|by /);
  });

  it('maps a modify to ECS file, event, agent and host fields, FSO fields under fso.*', () => {
    const record = event({});
    const doc = toEcs(record);
    expect(doc).toEqual({
      '@timestamp': '2026-11-22T10:00:00.120Z',
      ecs: { version: ECS_VERSION },
      message: `2026-11-22T10:00:00.140Z web-01 modify /srv/app/app.conf file 6 B sha256:5891…`,
      event: {
        kind: 'event', category: ['file'], type: ['change'], action: 'modified', module: 'fso', dataset: 'fso.file',
        id: 'k3x9q2-1042', sequence: 1042, created: '2026-11-22T10:00:00.131Z', ingested: '2026-11-22T10:00:00.140Z', hash: record.hash,
      },
      agent: { id: 'web-01', name: 'web-01', type: 'fso-agent' },
      host: { name: 'web-01' },
      related: { hosts: ['web-01'], hash: [SHA] },
      file: {
        path: '/srv/app/app.conf', name: 'app.conf', directory: '/srv/app', extension: 'conf', type: 'file',
        size: 6, mtime: '2026-11-22T10:00:00.100Z', hash: { sha256: SHA },
      },
      labels: { important: 'true' },
      fso: {
        record: 'event', topic: 'fso/agents/web-01/events/modify', epoch: 'k3x9q2', seq: 1042,
        root: '/srv/app', origin: 'live', important: true,
      },
    });
    expectValidEcs(doc);
  });

  it('maps each event type to its ECS event.type and event.action', () => {
    const mapped = EVENT_TYPES.map((type) => {
      const doc = toEcs(event(type === 'rename' ? { type, oldPath: '/srv/app/old.conf' } : { type }));
      expectValidEcs(doc);
      return [type, doc.event.type, doc.event.action];
    });
    expect(mapped).toEqual([
      ['create', ['creation'], 'created'],
      ['modify', ['change'], 'modified'],
      ['delete', ['deletion'], 'deleted'],
      ['rename', ['change'], 'renamed'],
    ]);
  });

  it('puts a rename\'s new path in file.* and its old path in fso.old_path (ECS has no field for it)', () => {
    const doc = toEcs(event({ type: 'rename', path: '/srv/app/new.conf', oldPath: '/srv/app/old.conf' }));
    expect(doc.file).toMatchObject({ path: '/srv/app/new.conf', name: 'new.conf' });
    expect(doc.fso).toMatchObject({ old_path: '/srv/app/old.conf' });
    expect(JSON.stringify(doc.file)).not.toContain('old.conf');
  });

  it('leaves out what a delete does not know, and says why a hash is missing', () => {
    const doc = toEcs(event({ type: 'delete', size: null, mtime: null, sha256: null, hashSkipped: 'vanished', important: false }));
    expect(doc.file).toEqual({ path: '/srv/app/app.conf', name: 'app.conf', directory: '/srv/app', extension: 'conf', type: 'file' });
    expect(doc.related).toEqual({ hosts: ['web-01'] });
    expect(doc.labels).toEqual({ important: 'false' });
    expect(doc.fso).toMatchObject({ important: false, hash_skipped: 'vanished' });
    expectValidEcs(doc);
  });

  it('maps kinds to ECS file.type, with the last extension only, none for directories and dot files', () => {
    const file = (p: string, kind: string): unknown => toEcs(event({ path: p, kind, sha256: null, size: null, mtime: null })).file;
    expect(file('/srv/app/conf.d', 'directory')).toEqual({ path: '/srv/app/conf.d', name: 'conf.d', directory: '/srv/app', type: 'dir' });
    expect(file('/srv/app/current', 'symlink')).toMatchObject({ name: 'current', type: 'symlink' });
    expect(file('/srv/backup.tar.gz', 'file')).toMatchObject({ name: 'backup.tar.gz', extension: 'gz' });
    expect(file('/root/.bashrc', 'file')).not.toHaveProperty('extension');
    expect(file('/srv/Makefile', 'file')).not.toHaveProperty('extension');
  });

  it('keeps origin scan in fso.origin', () => {
    expect(toEcs(event({ origin: 'scan' })).fso).toMatchObject({ origin: 'scan' });
  });
});

describe('toEcs: other records', () => {
  it('maps a diff to file info with its patch under fso.diff', () => {
    const diff = diffSchema.parse({
      schema: 'fso.diff/1', id: 'k3x9q2-1043', agentId: 'web-01', epoch: 'k3x9q2', seq: 1043, eventId: 'k3x9q2-1042', path: '/srv/app/app.conf',
      format: 'unified', patch: '--- a/srv/app/app.conf\n+++ b/srv/app/app.conf\n@@ -1 +1 @@\n-hi\n+hello\n', added: 1, removed: 1, skipped: null,
      redactions: [], observedAt: '2026-11-22T10:00:00.120Z', emittedAt: '2026-11-22T10:00:00.140Z',
    });
    const doc = toEcs(auditLine(diff, 'diff', 'fso/agents/web-01/diffs'));
    expect(doc.event).toMatchObject({ kind: 'event', category: ['file'], type: ['info'], action: 'diffed', dataset: 'fso.diff', id: 'k3x9q2-1043', sequence: 1043 });
    expect(doc.file).toMatchObject({ path: '/srv/app/app.conf', name: 'app.conf', type: 'file' });
    expect(doc.fso).toMatchObject({ diff: { event_id: 'k3x9q2-1042', format: 'unified', patch: diff.patch, added: 1, removed: 1, redactions: [] } });
    expect(doc.fso).not.toHaveProperty('diff.skipped');
    expectValidEcs(doc);
  });

  it('maps a status to a host state, with the hostname and version', () => {
    const status = statusSchema.parse({
      schema: 'fso.status/1', agentId: 'web-01', state: 'offline', hostname: 'web-01.example.net', version: '0.1.0', epoch: 'k3x9q2', lastSeq: 1043,
      config: { revision: 7, state: 'rejected', error: 'watch[0].path: not absolute' }, watching: [{ path: '/srv/app', ready: true, entries: 812 }],
      at: '2026-11-22T10:00:05.000Z',
    });
    const doc = toEcs(auditLine(status, 'status', 'fso/agents/web-01/status'));
    expect(doc['@timestamp']).toBe('2026-11-22T10:00:05.000Z');
    expect(doc.event).toMatchObject({ kind: 'state', category: ['host'], type: ['info'], action: 'agent-offline', dataset: 'fso.status' });
    expect(doc.agent).toEqual({ id: 'web-01', name: 'web-01', type: 'fso-agent', version: '0.1.0' });
    expect(doc.host).toEqual({ name: 'web-01', hostname: 'web-01.example.net' });
    expect(doc.fso).toMatchObject({ status: { state: 'offline', last_seq: 1043, config: { revision: 7, state: 'rejected', error: 'watch[0].path: not absolute' }, watching: ['/srv/app'] } });
    expectValidEcs(doc);
  });

  it('maps configs to configuration state: an agent\'s (agent from the topic) and a cleared default', () => {
    const set = toEcs(auditLine({ schema: 'fso.config/1', revision: 8, watch: [{ path: '/srv/app' }, { path: '/etc' }] }, 'config', 'fso/agents/web-01/config'));
    expect(set['@timestamp']).toBe('2026-11-22T10:00:00.140Z');
    expect(set.event).toMatchObject({ kind: 'state', category: ['configuration'], type: ['change'], action: 'config-set', dataset: 'fso.config' });
    expect(set.agent).toMatchObject({ id: 'web-01' });
    expect(set.fso).toMatchObject({ config: { scope: 'agent', revision: 8, cleared: false, watch_paths: ['/srv/app', '/etc'] } });
    expectValidEcs(set);
    const cleared = toEcs(auditLine({ cleared: true }, 'config', 'fso/config/default'));
    expect(cleared.event).toMatchObject({ type: ['deletion'], action: 'config-cleared' });
    expect(cleared).not.toHaveProperty('agent');
    expect(cleared).not.toHaveProperty('host');
    expect(cleared.fso).toMatchObject({ config: { scope: 'default', cleared: true } });
    expectValidEcs(cleared);
  });

  it('maps both kinds of gap to an event with event.reason; the watcher\'s window to event.start/end', () => {
    const recorderGap = toEcs(auditLine({ agentId: 'web-01', epoch: 'k3x9q2', fromSeq: 1044, toSeq: 1050, reason: 'epoch-changed' }, 'gap', 'fso/agents/web-01/status'));
    expect(recorderGap.event).toMatchObject({ kind: 'event', category: ['file'], type: ['info'], action: 'gap', dataset: 'fso.gap', reason: 'epoch-changed' });
    expect(recorderGap.fso).toMatchObject({ epoch: 'k3x9q2', gap: { reason: 'epoch-changed', from_seq: 1044, to_seq: 1050 } });
    expectValidEcs(recorderGap);
    const watcherGap = toEcs(auditLine({
      schema: 'fso.gap/1', id: 'k3x9q2-1044', agentId: 'web-01', epoch: 'k3x9q2', seq: 1044, reason: 'watcher-overflow', roots: ['/srv/app'],
      since: '2026-11-22T10:00:01.100Z', until: '2026-11-22T10:00:03.480Z', notifications: 16384,
      observedAt: '2026-11-22T10:00:03.480Z', emittedAt: '2026-11-22T10:00:03.492Z',
    }, 'gap', 'fso/agents/web-01/gaps'));
    expect(watcherGap.event).toMatchObject({ reason: 'watcher-overflow', start: '2026-11-22T10:00:01.100Z', end: '2026-11-22T10:00:03.480Z', sequence: 1044 });
    expect(watcherGap.fso).toMatchObject({ gap: { roots: ['/srv/app'], notifications: 16384 } });
    expectValidEcs(watcherGap);
  });

  it('maps an fso-alert alert to an ECS alert with rule.* and a numeric severity', () => {
    const alert = {
      schema: 'fso.alert/1', id: 'etc-change:3:firing', rule: 'etc-change', state: 'firing', severity: 'high', key: 'web-01:/etc/passwd',
      summary: 'a file under /etc changed: 1 event', agentId: 'web-01', path: '/etc/passwd', count: 1,
      firstAt: '2026-11-22T10:00:00.120Z', lastAt: '2026-11-22T10:00:00.120Z',
      samples: [{ what: 'modify', agentId: 'web-01', path: '/etc/passwd', messageId: 'k3x9q2-1042', at: '2026-11-22T10:00:00.120Z' }],
      source: 'fso-alert-central', at: '2026-11-22T10:00:00.500Z',
    };
    const doc = toEcs(auditLine(alert, 'alert', 'fso/alerts/etc-change'));
    expect(doc['@timestamp']).toBe('2026-11-22T10:00:00.500Z');
    expect(doc.event).toMatchObject({ kind: 'alert', action: 'alert-firing', dataset: 'fso.alert', severity: 73, id: 'etc-change:3:firing' });
    expect(doc.rule).toEqual({ id: 'etc-change', name: 'etc-change', description: 'a file under /etc changed: 1 event' });
    expect(doc.file).toEqual({ path: '/etc/passwd', name: 'passwd', directory: '/etc' });
    expect(doc.fso).toMatchObject({ alert: { state: 'firing', severity: 'high', key: 'web-01:/etc/passwd', count: 1, source: 'fso-alert-central', samples: alert.samples } });
    expectValidEcs(doc);
  });

  it('maps every record of a generated trail to a valid document, and is pure', () => {
    const trail = generateTrail({ records: 600, seed: 3 });
    const records = [...trail.events, ...trail.diffs].map((r) => JSON.parse(sealLine(r, GENESIS_HASH).text) as Record<string, unknown>);
    const kinds = new Set<string>();
    for (const record of records) {
      const before = JSON.stringify(record);
      const doc = toEcs(record);
      expect(JSON.stringify(record), 'the record is not changed').toBe(before);
      expect(toEcs(record)).toEqual(doc);
      expectValidEcs(doc);
      expect(doc.event.hash).toBe(record.hash);
      kinds.add(`${String(record.record)}:${doc.event.dataset}`);
    }
    expect([...kinds].sort()).toEqual(['config:fso.config', 'diff:fso.diff', 'event:fso.file', 'gap:fso.gap', 'status:fso.status']);
  });
});

describe('docs/protocol.md "ECS output"', () => {
  it('shows what toEcs makes of its audit-lines example', async () => {
    const doc = await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const example = (name: string): string => {
      const block = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(doc)?.[1];
      if (block === undefined) throw new Error(`docs/protocol.md has no ${name} example`);
      return block;
    };
    const line = example('audit-lines').split('\n')[0] ?? '';
    const shown = JSON.parse(example('ecs')) as unknown;
    // Same fields in the same order: the documented document is the real one.
    expect(JSON.stringify(shown)).toBe(JSON.stringify(toEcs(JSON.parse(line) as Record<string, unknown>)));
  });
});
