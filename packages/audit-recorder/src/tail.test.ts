import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { readAuditRecords, sealLine } from '@fso/audit-trail';
import { main } from './cli.js';
import { writeChain } from './testing/auditDir.js';
import { captureOutput } from './testing/output.js';

let tmp: { path: string; cleanup: () => Promise<void> };
const D1 = '2025-11-21';
const D2 = '2025-11-22';
const sha = '3f2a'.padEnd(64, '0');
const recent = new Date(Date.now() - 60_000).toISOString();

const ev = (agentId: string, type: string, at: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  schema: 'fso.event/1',
  agentId,
  type,
  path: '/srv/app/a.conf',
  kind: 'file',
  size: 2048,
  sha256: sha,
  origin: 'live',
  ...extra,
  record: 'event',
  topic: `fso/agents/${agentId}/events/${type}`,
  receivedAt: at,
});

beforeEach(async () => {
  tmp = await createTempDir('fso-tail-');
  await writeChain(tmp.path, 'events', {
    [D1]: [
      ev('web-01', 'create', `${D1}T10:00:00.100Z`),
      { schema: 'fso.status/1', agentId: 'web-01', state: 'online', config: { revision: 7, state: 'applied', error: null }, record: 'status', topic: 'fso/agents/web-01/status', receivedAt: `${D1}T10:00:00.200Z` },
      { schema: 'fso.config/1', revision: 8, watch: [{ path: '/srv/app' }], record: 'config', topic: 'fso/agents/web-01/config', receivedAt: `${D1}T10:00:00.300Z` },
      ev('web-02', 'rename', `${D1}T10:00:00.400Z`, { oldPath: '/srv/a.conf', path: '/srv/b.conf' }),
    ],
    [D2]: [
      { record: 'gap', agentId: 'web-01', epoch: 'old', fromSeq: 3, toSeq: 5, reason: 'epoch-changed', topic: 'fso/agents/web-01/status', receivedAt: `${D2}T09:00:00.000Z` },
      ev('web-01', 'delete', `${D2}T09:00:01.000Z`, { path: '/srv/app/.hidden/x.bin', kind: 'file', size: null, sha256: null }),
      {
        schema: 'fso.gap/1', agentId: 'web-02', seq: 9, reason: 'watcher-overflow', roots: ['/srv'], since: `${D2}T09:00:01.500Z`, until: `${D2}T09:00:02.000Z`,
        notifications: 16384, record: 'gap', topic: 'fso/agents/web-02/gaps', receivedAt: `${D2}T09:00:02.100Z`,
      },
    ],
    [recent.slice(0, 10)]: [{ cleared: true, record: 'config', topic: 'fso/config/default', receivedAt: recent }],
  });
  await writeChain(tmp.path, 'diffs', {
    [D1]: [
      { schema: 'fso.diff/1', agentId: 'web-01', path: '/srv/app/a.conf', added: 3, removed: 1, skipped: null, record: 'diff', topic: 'fso/agents/web-01/diffs', receivedAt: `${D1}T10:00:00.150Z` },
      { schema: 'fso.diff/1', agentId: 'web-02', path: '/srv/b.conf', added: 0, removed: 0, skipped: 'binary', record: 'diff', topic: 'fso/agents/web-02/diffs', receivedAt: `${D1}T10:00:00.450Z` },
    ],
  });
});

afterEach(() => tmp.cleanup());

async function tail(...args: string[]): Promise<{ code: number; lines: string[]; err: string }> {
  const stdout = captureOutput();
  const stderr = captureOutput();
  const code = await main(['tail', '--dir', tmp.path, ...args], { stdout: stdout.stream, stderr: stderr.stream });
  return { code, lines: stdout.lines(), err: stderr.text() };
}

describe('fso-audit tail', () => {
  it('prints one readable line per record, events and diffs merged by receivedAt, day by day', async () => {
    const { code, lines } = await tail();
    expect(code).toBe(0);
    expect(lines).toEqual([
      `${D1}T10:00:00.100Z web-01 create /srv/app/a.conf file 2048 B sha256:3f2a…`,
      `${D1}T10:00:00.150Z web-01 diff /srv/app/a.conf +3 -1`,
      `${D1}T10:00:00.200Z web-01 status online config r7 applied`,
      `${D1}T10:00:00.300Z web-01 config r8 watch /srv/app`,
      `${D1}T10:00:00.400Z web-02 rename /srv/a.conf -> /srv/b.conf file 2048 B sha256:3f2a…`,
      `${D1}T10:00:00.450Z web-02 diff /srv/b.conf skipped: binary`,
      `${D2}T09:00:00.000Z web-01 gap epoch old seq 3-5 epoch-changed`,
      `${D2}T09:00:01.000Z web-01 delete /srv/app/.hidden/x.bin file`,
      `${D2}T09:00:02.100Z web-02 gap watcher-overflow ${D2}T09:00:01.500Z .. ${D2}T09:00:02.000Z rescanning /srv`,
      `${recent} (default) config cleared`,
    ]);
  });

  it('prints the raw lines with --json', async () => {
    const { lines } = await tail('--json', '--type', 'rename');
    const raw = (await readFile(path.join(tmp.path, `events-${D1}.jsonl`), 'utf8')).split('\n');
    expect(lines).toEqual([raw[3]]);
  });

  it('filters by --agent, --type, --path and --since', async () => {
    const at = (lines: string[]): string[] => lines.map((l) => l.split(' ').slice(0, 3).join(' '));
    expect(at((await tail('--agent', 'web-02')).lines)).toEqual([`${D1}T10:00:00.400Z web-02 rename`, `${D1}T10:00:00.450Z web-02 diff`, `${D2}T09:00:02.100Z web-02 gap`]);
    expect(at((await tail('--type', 'gap')).lines)).toEqual([`${D2}T09:00:00.000Z web-01 gap`, `${D2}T09:00:02.100Z web-02 gap`]);
    expect(at((await tail('--type', 'diff')).lines)).toHaveLength(2);
    expect(at((await tail('--type', 'event')).lines)).toHaveLength(3);
    expect(at((await tail('--type', 'delete')).lines)).toEqual([`${D2}T09:00:01.000Z web-01 delete`]);
    expect(at((await tail('--type', 'config', '--agent', 'web-01')).lines)).toEqual([`${D1}T10:00:00.300Z web-01 config`]);
    // The glob sees oldPath too, and dot files.
    expect(at((await tail('--path', '/srv/a.conf')).lines)).toEqual([`${D1}T10:00:00.400Z web-02 rename`]);
    expect(at((await tail('--path', '/srv/app/**', '--type', 'event')).lines)).toEqual([
      `${D1}T10:00:00.100Z web-01 create`,
      `${D2}T09:00:01.000Z web-01 delete`,
    ]);
    expect((await tail('--since', `${D2}T09:00:00.500Z`)).lines).toHaveLength(3);
    expect((await tail('--since', '10m')).lines).toEqual([`${recent} (default) config cleared`]);
  });

  it('exits 2 with a clear message for a bad --type or --since', async () => {
    const badType = await tail('--type', 'explode');
    expect(badType.code).toBe(2);
    expect(badType.err).toContain('invalid --type: "explode": use one of create, modify, delete, rename, event, diff, status, config, gap');
    const badSince = await tail('--since', 'yesterday');
    expect(badSince.code).toBe(2);
    expect(badSince.err).toContain('invalid --since');
  });

  it('reads the same records as a library iterator', async () => {
    const records = [];
    for await (const r of readAuditRecords(tmp.path, { agent: 'web-01', type: 'gap' })) records.push(r);
    expect(records).toMatchObject([{ file: `events-${D2}.jsonl`, line: 1, record: { fromSeq: 3, toSeq: 5 } }]);
  });

  it('follows new lines (complete ones only) and new day files with -f until stopped', async () => {
    const controller = new AbortController();
    const stdout = captureOutput();
    const exit = main(['tail', '--dir', tmp.path, '-f', '--agent', 'web-03'], { stdout: stdout.stream, signal: controller.signal });
    const line = (at: string, p: string): string => sealLine(ev('web-03', 'modify', at, { path: p }), '0'.repeat(64)).text;

    await appendFile(path.join(tmp.path, `events-${D2}.jsonl`), line(`${D2}T11:00:00.000Z`, '/srv/one').slice(0, 40));
    await appendFile(path.join(tmp.path, `diffs-${D2}.jsonl`), `${line(`${D2}T11:00:00.500Z`, '/srv/two')}\n`);
    await waitFor(() => stdout.lines().length === 1, 'the new complete line in a new diffs file');
    expect(stdout.lines()[0]).toContain('/srv/two');

    await appendFile(path.join(tmp.path, `events-${D2}.jsonl`), `${line(`${D2}T11:00:00.000Z`, '/srv/one').slice(40)}\n`);
    await waitFor(() => stdout.lines().length === 2, 'the half-written line once completed');
    expect(stdout.lines()[1]).toContain('/srv/one');

    await appendFile(path.join(tmp.path, 'events-2025-11-23.jsonl'), `${line('2025-11-23T00:00:00.001Z', '/srv/three')}\n`);
    await waitFor(() => stdout.lines().length === 3, 'the line of the next day file');
    expect(stdout.lines()[2]).toContain('/srv/three');

    controller.abort();
    expect(await exit).toBe(0);
  });
});
