import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { main } from './cli.js';
import { writeChain } from './testing/auditDir.js';
import { captureOutput } from './testing/output.js';

let tmp: { path: string; cleanup: () => Promise<void> };
let auditDir: string;

beforeEach(async () => {
  tmp = await createTempDir('fso-query-index-');
  auditDir = tmp.path;
  const ev = (i: number, type: string, p: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    schema: 'fso.event/1', agentId: `web-0${i % 2}`, type, path: p, kind: 'file', size: i, sha256: null, ...extra,
    record: 'event', topic: `fso/agents/web-0${i % 2}/events/${type}`, receivedAt: `2026-11-0${1 + (i % 2)}T10:00:${String(i).padStart(2, '0')}.000Z`,
  });
  const events = Array.from({ length: 20 }, (_, i) => (i % 5 === 4 ? ev(i, 'rename', `/etc/x${i}.conf`, { oldPath: `/etc/x${i - 1}.conf` }) : ev(i, 'create', `/etc/x${i}.conf`)));
  await writeChain(auditDir, 'events', {
    '2026-11-01': events.filter((e) => String(e.receivedAt).startsWith('2026-11-01')),
    '2026-11-02': events.filter((e) => String(e.receivedAt).startsWith('2026-11-02')),
  });
});
afterEach(() => tmp.cleanup());

describe('fso-audit query --index', () => {
  const run = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const stdout = captureOutput();
    const stderr = captureOutput();
    const code = await main(['query', '--dir', auditDir, ...args], { stdout: stdout.stream, stderr: stderr.stream });
    return { code, out: stdout.text(), err: stderr.text() };
  };

  it('answers as the scan does, through an index it builds in its own directory and catches up', async () => {
    const indexDir = path.join(tmp.path, 'index');
    for (const args of [['--agent', 'web-01', '--json'], ['--path', '/etc/x1*.conf', '--limit', '3', '--offset', '1'], ['--history', '/etc/x9.conf', '--json'], ['--tree', '--agent', 'web-00', '--json'], ['--count', '--type', 'rename']]) {
      const scanned = await run(...args);
      expect(scanned.code).toBe(0);
      expect(await run(...args, '--index', indexDir)).toEqual(scanned);
    }
    expect(await readdir(indexDir)).toContain('trail.sqlite');
    expect((await readdir(auditDir)).filter((n) => !n.endsWith('.jsonl') && n !== 'index')).toEqual([]);
  });
});
