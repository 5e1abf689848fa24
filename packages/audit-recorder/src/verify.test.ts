import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { GENESIS_HASH, openLine, sealLine, sha256Hex, verifyAuditDir } from '@fso/audit-trail';
import { main } from './cli.js';
import { writeChain } from './testing/auditDir.js';
import { captureOutput } from './testing/output.js';

let tmp: { path: string; cleanup: () => Promise<void> };
const day1 = 'events-2026-11-21.jsonl';
const day2 = 'events-2026-11-22.jsonl';

const event = (seq: number, day: string): Record<string, unknown> => ({
  schema: 'fso.event/1',
  agentId: 'web-01',
  epoch: 'e1',
  seq,
  path: `/srv/app/f${seq}.conf`,
  record: 'event',
  topic: 'fso/agents/web-01/events/modify',
  receivedAt: `${day}T10:00:00.${String(seq).padStart(3, '0')}Z`,
});

beforeEach(async () => {
  tmp = await createTempDir('fso-verify-');
  // Two days of events (3 + 3 lines) chained across the day boundary, and one diffs file.
  await writeChain(tmp.path, 'events', {
    '2026-11-21': [1, 2, 3].map((s) => event(s, '2026-11-21')),
    '2026-11-22': [4, 5, 6].map((s) => event(s, '2026-11-22')),
  });
  await writeChain(tmp.path, 'diffs', { '2026-11-22': [{ ...event(7, '2026-11-22'), record: 'diff' }] });
});

afterEach(() => tmp.cleanup());

/** Rewrites the lines of one file. */
async function editLines(name: string, edit: (lines: string[]) => string[]): Promise<void> {
  const file = path.join(tmp.path, name);
  const lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
  await writeFile(file, `${edit(lines).join('\n')}\n`);
}

async function runVerify(): Promise<{ code: number; out: string; err: string }> {
  const stdout = captureOutput();
  const stderr = captureOutput();
  const code = await main(['verify', '--dir', tmp.path], { stdout: stdout.stream, stderr: stderr.stream });
  return { code, out: stdout.text(), err: stderr.text() };
}

describe('the hash chain', () => {
  it('seals a line as JSON with prevHash, then a hash of that text', () => {
    const sealed = sealLine({ a: 1, b: 'x' }, GENESIS_HASH);
    const text0 = `{"a":1,"b":"x","prevHash":"${GENESIS_HASH}"}`;
    expect(sealed.hash).toBe(sha256Hex(text0));
    expect(sealed.text).toBe(`{"a":1,"b":"x","prevHash":"${GENESIS_HASH}","hash":"${sealed.hash}"}`);
    expect(openLine(sealed.text)).toMatchObject({ ok: true, intact: true, prevHash: GENESIS_HASH, value: { a: 1, b: 'x' } });
    expect(openLine(sealed.text.replace('"x"', '"y"'))).toMatchObject({ ok: true, intact: false });
    expect(openLine('{"a":1}')).toMatchObject({ ok: false });
  });
});

describe('verifyAuditDir and fso-audit verify', () => {
  it('passes an intact directory: exit 0 and a summary', async () => {
    expect(await verifyAuditDir(tmp.path)).toEqual({ ok: true, files: 3, lines: 7 });
    const { code, out } = await runVerify();
    expect(code).toBe(0);
    expect(out).toBe('audit trail intact: 3 files, 7 lines\n');
  });

  it('names the file and line of an edited record', async () => {
    await editLines(day2, (lines) => lines.map((l, i) => (i === 1 ? l.replace('f5.conf', 'f5.conf.innocent') : l)));
    expect((await verifyAuditDir(tmp.path)).failure).toEqual({ file: day2, line: 2, reason: 'hash mismatch: the record was edited' });
    const { code, err } = await runVerify();
    expect(code).toBe(1);
    expect(err).toContain(`${day2} line 2: hash mismatch`);
  });

  it('names the line after a deleted record, also across the day boundary', async () => {
    await editLines(day1, (lines) => lines.filter((_, i) => i !== 1));
    expect((await verifyAuditDir(tmp.path)).failure).toMatchObject({ file: day1, line: 2, reason: expect.stringContaining('deleted') });
    // Day 1 loses its last line: day 2's first line no longer chains to it.
    await editLines(day1, (lines) => lines.slice(0, 1));
    expect((await verifyAuditDir(tmp.path)).failure).toMatchObject({ file: day2, line: 1 });
  });

  it('names an inserted record, even one with a valid hash of its own', async () => {
    await editLines(day1, (lines) => [...lines.slice(0, 2), lines[0] ?? '', ...lines.slice(2)]);
    expect((await verifyAuditDir(tmp.path)).failure).toMatchObject({ file: day1, line: 3 });
    await editLines(day1, (lines) => lines.filter((_, i) => i !== 2));
    // A forged record chained to line 2: its own hash is right, so the line after it breaks.
    await editLines(day1, (lines) => {
      const prev = openLine(lines[1] ?? '');
      const forged = sealLine(event(99, '2026-11-21'), prev.ok ? prev.hash : '');
      return [...lines.slice(0, 2), forged.text, ...lines.slice(2)];
    });
    expect((await verifyAuditDir(tmp.path)).failure).toMatchObject({ file: day1, line: 4 });
  });

  it('names the first of two swapped records', async () => {
    await editLines(day2, (lines) => [lines[0] ?? '', lines[2] ?? '', lines[1] ?? '']);
    const { code, err } = await runVerify();
    expect(code).toBe(1);
    expect(err).toContain(`${day2} line 2: prevHash does not match line 1 of ${day2}`);
  });

  it('reports a torn last line, and exits 1 for a missing directory', async () => {
    await writeFile(path.join(tmp.path, day2), '{"half', { flag: 'a' });
    expect((await verifyAuditDir(tmp.path)).failure).toMatchObject({ file: day2, line: 4, reason: expect.stringContaining('incomplete') });
    const stderr = captureOutput();
    expect(await main(['verify', '--dir', path.join(tmp.path, 'nope')], { stderr: stderr.stream })).toBe(1);
    expect(stderr.text()).toContain('no audit directory at');
  });
});
