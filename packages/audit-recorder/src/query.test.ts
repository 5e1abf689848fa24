import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { main } from './cli.js';
import { pathHistory, queryAuditRecords, treeFromTrail } from '@fso/audit-trail';
import { writeChain } from './testing/auditDir.js';
import { captureOutput } from './testing/output.js';

let tmp: { path: string; cleanup: () => Promise<void> };
const D1 = '2026-11-01';
const D2 = '2026-11-02';
const sha = (c: string): string => c.repeat(64);

let n = 0;
const ev = (agentId: string, type: string, path: string, extra: Record<string, unknown> = {}): Record<string, unknown> => {
  n += 1;
  const day = n <= 8 ? D1 : D2;
  return {
    schema: 'fso.event/1', agentId, type, path, kind: 'file', size: 10, sha256: sha('a'), origin: 'live', ...extra,
    record: 'event', topic: `fso/agents/${agentId}/events/${type}`, receivedAt: `${day}T10:00:${String(n).padStart(2, '0')}.000Z`,
  };
};

beforeEach(async () => {
  tmp = await createTempDir('fso-query-');
  n = 0;
  const events = [
    ev('web-01', 'create', '/etc/app/app.log', { sha256: sha('1') }),
    ev('web-01', 'create', '/etc/app/conf.d', { kind: 'directory', size: null, sha256: null }),
    ev('web-01', 'create', '/etc/app/conf.d/a.conf', { sha256: sha('2') }),
    ev('web-02', 'create', '/etc/app/app.log', { sha256: sha('9') }),
    ev('web-01', 'modify', '/etc/app/app.log', { sha256: sha('3') }),
    ev('web-01', 'rename', '/etc/app/app.log.1', { oldPath: '/etc/app/app.log', sha256: sha('3') }),
    ev('web-01', 'create', '/etc/app/app.log', { sha256: sha('4'), size: 0 }),
    ev('web-01', 'rename', '/etc/app/conf.d2', { oldPath: '/etc/app/conf.d', kind: 'directory', size: null, sha256: null }),
    // D2 from here
    ev('web-01', 'delete', '/etc/app/app.log.1', { size: null, sha256: null }),
    ev('web-01', 'create', '/srv/www/index.html', { sha256: sha('5') }),
    { schema: 'fso.status/1', agentId: 'web-01', state: 'online', record: 'status', topic: 'fso/agents/web-01/status', receivedAt: `${D2}T10:00:30.000Z` },
  ];
  await writeChain(tmp.path, 'events', { [D1]: events.slice(0, 8), [D2]: events.slice(8) });
  await writeChain(tmp.path, 'diffs', {
    [D1]: [{ schema: 'fso.diff/1', agentId: 'web-01', path: '/etc/app/app.log', patch: '+x', record: 'diff', topic: 'fso/agents/web-01/diffs', receivedAt: `${D1}T10:00:05.500Z` }],
  });
});
afterEach(() => tmp.cleanup());

describe('queryAuditRecords', () => {
  it('filters by agent, type, glob, text and time range, pages, and counts every match', async () => {
    const all = await queryAuditRecords(tmp.path, { agent: 'web-01', type: 'event' });
    expect(all.total).toBe(9);
    const page = await queryAuditRecords(tmp.path, { agent: 'web-01', type: 'event', limit: 3, offset: 3 });
    expect(page.total).toBe(9);
    expect(page.records.map((r) => r.record.type)).toEqual(['modify', 'rename', 'create']);
    const byText = await queryAuditRecords(tmp.path, { text: 'app.log.1' });
    expect(byText.records.map((r) => r.record.type)).toEqual(['rename', 'delete']);
    const byGlob = await queryAuditRecords(tmp.path, { path: '/etc/app/conf.d/*.conf' });
    expect(byGlob.records.map((r) => r.record.path)).toEqual(['/etc/app/conf.d/a.conf']);
    const day1 = await queryAuditRecords(tmp.path, { type: 'event', since: Date.parse(`${D1}T10:00:04Z`), until: Date.parse(`${D2}T00:00:00Z`) });
    expect(day1.records.map((r) => `${r.record.agentId} ${r.record.type}`)).toEqual(['web-02 create', 'web-01 modify', 'web-01 rename', 'web-01 create', 'web-01 rename']);
  });

  it('refuses a page it cannot use', async () => {
    await expect(queryAuditRecords(tmp.path, { limit: -1 })).rejects.toThrow(/--limit/);
  });
});

describe('pathHistory', () => {
  it("follows a path back through its renames: app.log.1's history has what app.log was before the rotation, not the new app.log", async () => {
    const history = await pathHistory(tmp.path, '/etc/app/app.log.1', { agent: 'web-01' });
    expect(history.map((r) => `${r.record.record} ${r.record.type ?? ''} ${r.record.path}`.replace(/\s+/g, ' '))).toEqual([
      'event create /etc/app/app.log', 'event modify /etc/app/app.log', 'diff /etc/app/app.log', 'event rename /etc/app/app.log.1', 'event delete /etc/app/app.log.1',
    ]);
  });
});

describe('treeFromTrail', () => {
  it("replays one agent's events: renames move what is below, deletes remove, the new log is there", async () => {
    const tree = await treeFromTrail(tmp.path, { agent: 'web-01', under: '/etc' });
    expect([...tree].map(([p, e]) => `${p} ${e.kind} ${e.sha256?.[0] ?? '-'}`).sort()).toEqual([
      '/etc/app/app.log file 4', '/etc/app/conf.d2 directory -', '/etc/app/conf.d2/a.conf file 2',
    ]);
    const before = await treeFromTrail(tmp.path, { agent: 'web-01', under: '/etc/app', until: Date.parse(`${D1}T10:00:06Z`) });
    expect(before.get('/etc/app/app.log')?.sha256).toBe(sha('3'));
    expect(before.has('/etc/app/app.log.1')).toBe(false);
  });
});

describe('fso-audit query', () => {
  const run = async (...args: string[]): Promise<{ code: number; out: string[]; err: string }> => {
    const stdout = captureOutput();
    const stderr = captureOutput();
    const code = await main(['query', '--dir', tmp.path, ...args], { stdout: stdout.stream, stderr: stderr.stream });
    return { code, out: stdout.lines(), err: stderr.text() };
  };

  it('prints a page and says how many matched; --count, --json, --history and --tree', async () => {
    const page = await run('--agent', 'web-01', '--type', 'create', '--limit', '2');
    expect(page.code).toBe(0);
    expect(page.out).toHaveLength(2);
    expect(page.err).toBe('2 of 5 records\n');
    expect((await run('--type', 'delete', '--count')).out).toEqual(['1']);
    const json = await run('--text', 'index.html', '--json');
    expect(JSON.parse(json.out[0] as string)).toMatchObject({ path: '/srv/www/index.html', hash: expect.any(String) });
    const history = await run('--history', '/etc/app/app.log.1', '--agent', 'web-01');
    expect(history.out).toHaveLength(5);
    const tree = await run('--tree', '--agent', 'web-01', '--under', '/srv', '--json');
    expect(tree.out.map((l) => JSON.parse(l) as { path: string })).toEqual([expect.objectContaining({ path: '/srv/www/index.html', kind: 'file' })]);
  });

  it('refuses bad flags with usage exit code 2 and the reason', async () => {
    const noAgent = await run('--tree');
    expect(noAgent.code).toBe(2);
    expect(noAgent.err).toMatch(/--agent/);
    expect((await run('--limit', 'ten')).code).toBe(2);
    expect((await run('--until', 'yesterday-ish')).code).toBe(2);
  });
});
