import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '@fso/common';
import { createTempDir } from '../../../../tests/helpers.js';
import { Baseline, baselineFileName } from '../watch/baseline.js';
import type { Entry } from '../watch/baseline.js';
import { JOURNAL_FILE, foldJournal, journalLine } from './journal.js';

const entry = (ino: number): Entry => ({ kind: 'file', size: 1, mtimeMs: 1, dev: 1, ino, birthtimeMs: 0, sha256: null });

describe('foldJournal', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir();
  });
  afterEach(() => tmp.cleanup());

  it('applies set, del and mv per root onto the snapshots, ignores a torn last line, and removes the journal', async () => {
    const lines = [
      journalLine(1, '/a', ['set', '/a/x', entry(1)]),
      journalLine(null, '/a', ['set', '/a/d', { ...entry(2), kind: 'directory' }]),
      journalLine(2, '/a', ['set', '/a/d/y', entry(3)]),
      journalLine(3, '/a', ['mv', '/a/d', '/a/e']),
      journalLine(4, '/b', ['set', '/b/z', entry(4)]),
      journalLine(5, '/a', ['del', '/a/x']),
    ];
    await writeFile(path.join(tmp.path, JOURNAL_FILE), `${lines.join('\n')}\n{"s":6,"r":"/a","o":["del","/a/e/y"]`);
    expect(await foldJournal(tmp.path, createSilentLogger())).toBe(6);
    const a = await Baseline.load(path.join(tmp.path, baselineFileName('/a')), createSilentLogger());
    expect([...(a?.paths() ?? [])].sort()).toEqual(['/a/e', '/a/e/y']);
    expect(a?.get('/a/e/y')?.ino).toBe(3);
    const b = await Baseline.load(path.join(tmp.path, baselineFileName('/b')), createSilentLogger());
    expect([...(b?.paths() ?? [])]).toEqual(['/b/z']);
    await expect(readFile(path.join(tmp.path, JOURNAL_FILE))).rejects.toThrow(/ENOENT/);
    // Folding again (a crash after the snapshots, before the removal) changes nothing.
    expect(await foldJournal(tmp.path, createSilentLogger())).toBe(0);
  });

  it('leaves out the ops of events that never reached the outbox (a crash between the two writes)', async () => {
    const lines = [
      journalLine(1, '/a', ['set', '/a/kept', entry(1)]),
      journalLine(null, '/a', ['set', '/a/silent', entry(2)]),
      journalLine(2, '/a', ['set', '/a/not-in-outbox', entry(3)]),
    ];
    await writeFile(path.join(tmp.path, JOURNAL_FILE), `${lines.join('\n')}\n`);
    expect(await foldJournal(tmp.path, createSilentLogger(), 1)).toBe(2);
    const a = await Baseline.load(path.join(tmp.path, baselineFileName('/a')), createSilentLogger());
    expect([...(a?.paths() ?? [])].sort()).toEqual(['/a/kept', '/a/silent']);
  });
});
