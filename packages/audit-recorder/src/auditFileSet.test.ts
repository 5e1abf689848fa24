import { readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '@fso/common';
import { createTempDir } from '../../../tests/helpers.js';
import { AuditFileSet } from './auditFileSet.js';

/** How many of this process's file descriptors are open on `file` (Linux: /proc/self/fd). */
async function openFds(file: string): Promise<number> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return links.filter((link) => link === file).length;
}

describe('AuditFileSet', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir('fso-audit-files-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('close() twice returns the same promise and closes each open file once', async () => {
    const files = new AuditFileSet(tmp.path, createSilentLogger());
    await files.append([{ kind: 'events', name: 'events-2026-01-01.jsonl', lines: ['{"a":1}'] }]);
    const file = path.join(tmp.path, 'events-2026-01-01.jsonl');
    expect(await openFds(file)).toBe(1);
    const closed = files.close();
    expect(files.close()).toBe(closed);
    await closed;
    expect(await openFds(file)).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('{"a":1}\n');
  });

  it('writes and syncs a batch that straddles midnight: both days of one kind in one group commit', async () => {
    // Found generating the query benchmark's trail: the old day's handle was closed before its fsync ("file closed").
    const files = new AuditFileSet(tmp.path, createSilentLogger());
    await files.append([
      { kind: 'events', name: 'events-2026-01-01.jsonl', lines: ['{"a":1}'] },
      { kind: 'diffs', name: 'diffs-2026-01-01.jsonl', lines: ['{"d":1}'] },
      { kind: 'events', name: 'events-2026-01-02.jsonl', lines: ['{"a":2}'] },
    ]);
    await files.append([{ kind: 'events', name: 'events-2026-01-02.jsonl', lines: ['{"a":3}'] }]);
    await files.close();
    expect(await readFile(path.join(tmp.path, 'events-2026-01-01.jsonl'), 'utf8')).toBe('{"a":1}\n');
    expect(await readFile(path.join(tmp.path, 'events-2026-01-02.jsonl'), 'utf8')).toBe('{"a":2}\n{"a":3}\n');
    expect(await readFile(path.join(tmp.path, 'diffs-2026-01-01.jsonl'), 'utf8')).toBe('{"d":1}\n');
  });
});
