import { readFile, rm, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { TailFilterError, TrailIndexError, TrailIndexStaleError } from './errors.js';
import { pathHistory, queryAuditRecords, treeFromTrail } from './query.js';
import type { AuditQuery } from './query.js';
import type { AuditRecordLine } from './tail.js';
import { appendChain, generateTrail } from './testing/trail.js';
import type { GeneratedTrail } from './testing/trail.js';
import { openTrailIndex } from './trailIndex.js';
import type { TrailIndex } from './trailIndex.js';

let tmp: { path: string; cleanup: () => Promise<void> };
let auditDir: string;
let indexDir: string;
let index: TrailIndex | undefined;

beforeEach(async () => {
  tmp = await createTempDir('fso-index-');
  auditDir = path.join(tmp.path, 'audit');
  indexDir = path.join(tmp.path, 'index');
  await writeFile(path.join(tmp.path, '.keep'), '');
  await import('node:fs/promises').then((fs) => fs.mkdir(auditDir));
});
afterEach(async () => {
  await index?.close();
  index = undefined;
  await tmp.cleanup();
});

const shown = (lines: readonly AuditRecordLine[]): string[] => lines.map((l) => `${l.file}:${l.line} ${l.text}`);

/** Writes a trail; returns the chain tails so a test can append to it. */
async function writeTrail(trail: GeneratedTrail): Promise<{ events: string; diffs: string }> {
  return { events: await appendChain(auditDir, 'events', trail.events), diffs: await appendChain(auditDir, 'diffs', trail.diffs) };
}

async function open(): Promise<TrailIndex> {
  index = await openTrailIndex({ auditDir, indexDir });
  return index;
}

const D1 = Date.parse('2026-11-01T00:00:00.000Z');
const HOUR = 3_600_000;

/** Queries that cover every filter, alone and together, and pages. */
const QUERIES: AuditQuery[] = [
  {},
  { limit: 100_000 },
  { limit: 0 },
  { agent: 'host-1', limit: 100_000 },
  { agent: 'host-2', since: D1 + 20 * HOUR, until: D1 + 44 * HOUR },
  { agent: 'host-0', offset: 50, limit: 20 },
  { agent: 'nobody' },
  { type: 'rename', limit: 100_000 },
  { type: 'diff', limit: 100_000 },
  { type: 'gap' },
  { type: 'status', agent: 'host-3' },
  { type: 'config', limit: 1000 },
  { type: 'event', since: D1 + 30 * HOUR, limit: 500 },
  { since: D1 + 50 * HOUR, limit: 300 },
  { until: D1 + 10 * HOUR, limit: 300, offset: 100 },
  { path: '/srv/app-1/**', limit: 100_000 },
  { path: '/srv/app-1/**', limit: 10, offset: 30 },
  { path: '**/*.conf', limit: 100_000 },
  { path: '**/*.conf', limit: 25, offset: 400 },
  { path: '/srv/app-{0,2}/d1*/*', limit: 1000 },
  { path: '**' },
  { path: '**/d1/**', limit: 1000 },
  { path: '/srv/app-1/d2-r*/**', limit: 1000 },
  { path: '/srv/*/d3/f1?.txt', limit: 1000 },
  { path: '/srv/app-[12]/**/*.conf', limit: 1000 },
  { path: '/srv/app-1/**.conf', limit: 1000 },
  { path: '/srv/app-2/d{1,4}', limit: 1000 },
  { text: '/srv/app-2/d1', limit: 1000 },
  { text: 'app-3/d2/f1', limit: 1000 },
  { text: '/', limit: 10 },
  { path: '/nowhere/**' },
  { text: 'd2/', limit: 100_000 },
  { text: '.1', agent: 'host-1', type: 'rename', limit: 1000 },
  { path: '/srv/app-3/**', text: '-r', limit: 1000 },
  { path: '**/*.log', agent: 'host-2', since: D1 + 5 * HOUR, until: D1 + 60 * HOUR, limit: 50, offset: 10 },
];

async function expectSameAnswers(idx: TrailIndex): Promise<void> {
  for (const q of QUERIES) {
    const linear = await queryAuditRecords(auditDir, q);
    const indexed = await idx.query(q);
    expect({ q, total: indexed.total, records: shown(indexed.records) }).toEqual({ q, total: linear.total, records: shown(linear.records) });
  }
  const paths = new Set<string>();
  for (const { record } of (await queryAuditRecords(auditDir, { type: 'rename', limit: 100_000 })).records) {
    paths.add(String(record.path));
    paths.add(String(record.oldPath));
  }
  const sorted = [...paths].sort();
  const some = sorted.filter((_, i) => i % Math.ceil(sorted.length / 8) === 0);
  for (const p of [...some, '/srv/app-1/d1/f1.conf', '/nowhere']) {
    for (const agent of [undefined, 'host-1']) {
      expect({ p, agent, history: shown(await idx.history(p, { agent })) }).toEqual({ p, agent, history: shown(await pathHistory(auditDir, p, { agent })) });
    }
  }
  for (const options of [{ agent: 'host-0' }, { agent: 'host-1', under: '/srv/app-2' }, { agent: 'host-3', until: D1 + 40 * HOUR }, { agent: 'nobody' }]) {
    expect({ options, tree: [...(await idx.tree(options))] }).toEqual({ options, tree: [...(await treeFromTrail(auditDir, options))] });
  }
}

describe('TrailIndex', () => {
  it('answers every query, history and tree exactly as the linear readers do', async () => {
    await writeTrail(generateTrail({ records: 6000 }));
    const idx = await open();
    const { added, rebuilt } = await idx.catchUp();
    expect(rebuilt).toEqual([]);
    expect(added).toBe((await queryAuditRecords(auditDir, {})).total);
    expect(idx.stats()).toMatchObject({ records: added, files: 6 });
    await expectSameAnswers(idx);
  });

  it('catches up with appended lines and new day files, and not with a line still being written', async () => {
    const trail = generateTrail({ records: 6000, days: 4 });
    const cut = (records: GeneratedTrail['events'], before: string) => [records.filter((r) => String(r.receivedAt) < before), records.filter((r) => String(r.receivedAt) >= before)];
    const [events1, events2] = cut(trail.events, '2026-11-02T12:00:00.000Z');
    const [diffs1, diffs2] = cut(trail.diffs, '2026-11-02T12:00:00.000Z');
    const tails = await writeTrail({ events: events1 ?? [], diffs: diffs1 ?? [] });
    const idx = await open();
    const first = await idx.catchUp();
    expect(first.added).toBe((await queryAuditRecords(auditDir, {})).total);
    expect(await idx.catchUp()).toEqual({ added: 0, rebuilt: [] });
    await appendChain(auditDir, 'events', events2 ?? [], tails.events);
    await appendChain(auditDir, 'diffs', diffs2 ?? [], tails.diffs);
    // A torn write at the end of the newest file: not a record until its newline comes.
    const newest = path.join(auditDir, 'events-2026-11-04.jsonl');
    await writeFile(newest, '{"record":"event","path":"/half', { flag: 'a' });
    const second = await idx.catchUp();
    expect(second.rebuilt).toEqual([]);
    expect(first.added + second.added).toBe((await queryAuditRecords(auditDir, {})).total);
    await expectSameAnswers(idx);
    await writeFile(newest, '","receivedAt":"2026-11-04T23:59:59.999Z"}\n', { flag: 'a' });
    expect((await idx.catchUp()).added).toBe(1);
    expect((await idx.query({ path: '/half' })).records.map((r) => r.line)).toEqual((await queryAuditRecords(auditDir, { path: '/half' })).records.map((r) => r.line));
  });

  it('re-indexes a file that was replaced or cut, and drops one that is gone', async () => {
    const trail = generateTrail({ records: 4000 });
    await writeTrail(trail);
    const idx = await open();
    await idx.catchUp();
    const day2 = path.join(auditDir, 'events-2026-11-02.jsonl');
    // Replaced by a file of the same size or more, whose first line differs.
    const text = await readFile(day2, 'utf8');
    await writeFile(day2, text.replace('"schema"', '"schema_"'));
    await expect(idx.query({ limit: 100_000 })).rejects.toBeInstanceOf(TrailIndexStaleError);
    expect((await idx.catchUp()).rebuilt).toEqual(['events-2026-11-02.jsonl']);
    await expectSameAnswers(idx);
    // Cut short.
    await truncate(path.join(auditDir, 'diffs-2026-11-03.jsonl'), 1000);
    expect((await idx.catchUp()).rebuilt).toEqual(['diffs-2026-11-03.jsonl']);
    // Gone.
    await rm(path.join(auditDir, 'events-2026-11-01.jsonl'));
    expect((await idx.catchUp()).rebuilt).toEqual(['events-2026-11-01.jsonl']);
    await expectSameAnswers(idx);
  });

  it('rebuilds a missing or corrupt index file from the JSONL', async () => {
    await writeTrail(generateTrail({ records: 3000 }));
    const idx = await open();
    const { added } = await idx.catchUp();
    await idx.close();
    await rm(path.join(indexDir, 'trail.sqlite'));
    const again = await open();
    expect((await again.catchUp()).added).toBe(added);
    await again.close();
    await writeFile(path.join(indexDir, 'trail.sqlite'), 'this is not a database, it only says so '.repeat(200));
    await rm(path.join(indexDir, 'trail.sqlite-wal'), { force: true });
    await rm(path.join(indexDir, 'trail.sqlite-shm'), { force: true });
    const rebuilt = await open();
    expect((await rebuilt.catchUp()).added).toBe(added);
    await expectSameAnswers(rebuilt);
  });

  it('refuses a filter it cannot use, naming the option', async () => {
    await writeTrail(generateTrail({ records: 200 }));
    const idx = await open();
    await idx.catchUp();
    const option = (q: AuditQuery) => idx.query(q).then(
      () => 'accepted',
      (err: unknown) => (err instanceof TailFilterError ? err.option : String(err)),
    );
    expect(await option({ type: 'explode' })).toBe('--type');
    expect(await option({ since: Number.NaN })).toBe('--since');
    expect(await option({ until: new Date('nope') })).toBe('--until');
    expect(await option({ limit: -1 })).toBe('--limit');
    expect(await option({ offset: 1.5 })).toBe('--offset');
    await expect(idx.tree({ agent: 'host-0', until: Number.NaN })).rejects.toMatchObject({ option: '--until' });
  });

  it('serializes concurrent catch-ups, opens read-only beside a writer, and closes once', async () => {
    await writeTrail(generateTrail({ records: 3000 }));
    const idx = await open();
    const runs = await Promise.all([idx.catchUp(), idx.catchUp(), idx.catchUp()]);
    expect(runs.reduce((sum, r) => sum + r.added, 0)).toBe((await queryAuditRecords(auditDir, {})).total);
    const reader = await openTrailIndex({ auditDir, indexDir, readOnly: true });
    try {
      expect(await reader.query({ agent: 'host-1' })).toEqual(await idx.query({ agent: 'host-1' }));
      await expect(reader.catchUp()).rejects.toBeInstanceOf(TrailIndexError);
    } finally {
      await reader.close();
    }
    const closing = idx.close();
    expect(idx.close()).toBe(closing);
    await closing;
    await expect(idx.query({})).rejects.toBeInstanceOf(TrailIndexError);
    await expect(openTrailIndex({ auditDir, indexDir: path.join(tmp.path, 'none'), readOnly: true })).rejects.toBeInstanceOf(TrailIndexError);
    await expect(openTrailIndex({ auditDir, indexDir: auditDir })).rejects.toThrow(/directory of its own/);
  });
});
