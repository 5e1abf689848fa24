// Reading the recorder's audit directory while it grows, and checking what a
// run expected against what was recorded (lost, duplicated, unexpected).
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { sleep } from './processes.mjs';

const FILE = /^(events|diffs)-\d{4}-\d{2}-\d{2}\.jsonl$/;

/**
 * Follows `dir`'s events and diffs files (every day file, as they appear):
 * `poll()` reads what was appended since the last call, whole lines only.
 */
export function createAuditTail(dir) {
  const offsets = new Map();
  const rests = new Map();
  const events = [];
  const diffs = [];
  const gaps = [];
  let other = 0;

  const readNew = async (name) => {
    const handle = await open(path.join(dir, name), 'r');
    try {
      const { size } = await handle.stat();
      const from = offsets.get(name) ?? 0;
      if (size <= from) return;
      const buffer = Buffer.alloc(size - from);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, from);
      offsets.set(name, from + bytesRead);
      const text = (rests.get(name) ?? '') + buffer.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      rests.set(name, lines.pop() ?? '');
      for (const line of lines) {
        if (line === '') continue;
        const record = JSON.parse(line);
        if (record.record === 'event') events.push(record);
        else if (record.record === 'diff') diffs.push(record);
        else if (record.record === 'gap') gaps.push(record);
        else other += 1;
      }
    } finally {
      await handle.close();
    }
  };

  return {
    events,
    /** `gap` lines: the agent's watcher-overflow announcements (and recorder seq gaps). */
    gaps,
    diffs,
    get otherRecords() {
      return other;
    },
    async poll() {
      let names;
      try {
        names = (await readdir(dir)).filter((n) => FILE.test(n)).sort();
      } catch (err) {
        if (err.code === 'ENOENT') return;
        throw err;
      }
      for (const name of names) await readNew(name);
    },
  };
}

/** `type path` — the key an expected change and a recorded event share. */
export const changeKey = (type, p) => `${type} ${p}`;

/**
 * Polls the audit until every key of `expected` (a Set of changeKey) is among
 * the recorded events, or nothing new arrived for `stallMs`, or `maxMs`
 * passed. Returns the recorded events matching the expected keys.
 */
export async function waitForEvents(tail, expected, { stallMs = 20_000, maxMs = 900_000, intervalMs = 25 } = {}) {
  const started = Date.now();
  let lastProgress = Date.now();
  let scanned = 0;
  const found = new Map();
  for (;;) {
    await tail.poll();
    for (; scanned < tail.events.length; scanned += 1) {
      const e = tail.events[scanned];
      const key = changeKey(e.type, e.path);
      if (expected.has(key)) {
        if (!found.has(key)) found.set(key, e);
        lastProgress = Date.now();
      }
    }
    if (found.size >= expected.size) return found;
    const now = Date.now();
    if (now - lastProgress > stallMs || now - started > maxMs) return found;
    await sleep(intervalMs);
  }
}

/**
 * What the audit holds against what was expected: `lost` expected changes
 * never recorded; `duplicatedById` ids recorded more than once;
 * `duplicatedByPath` the same change (type, path, old path and content hash)
 * recorded more than once; `unexpected` events no operation asked for (other
 * paths, or a second, different change of an expected path: e.g. a write
 * seen half done, then done).
 */
export function checkRecorded(events, expected) {
  const byId = new Map();
  const byKey = new Map();
  const changes = new Set();
  let duplicatedByPath = 0;
  for (const e of events) {
    byId.set(e.id, (byId.get(e.id) ?? 0) + 1);
    const key = changeKey(e.type, e.path);
    byKey.set(key, (byKey.get(key) ?? 0) + 1);
    const change = `${key} ${e.oldPath ?? ''} ${e.sha256 ?? ''} ${e.size ?? ''}`;
    if (changes.has(change)) duplicatedByPath += 1;
    changes.add(change);
  }
  let lost = 0;
  let unexpected = 0;
  const samples = { lost: [], unexpected: [] };
  for (const key of expected) {
    const n = byKey.get(key) ?? 0;
    if (n === 0) {
      lost += 1;
      if (samples.lost.length < 5) samples.lost.push(key);
    }
  }
  for (const [key, n] of byKey) {
    const extra = expected.has(key) ? n - 1 : n;
    if (extra <= 0) continue;
    unexpected += extra;
    if (samples.unexpected.length < 5) samples.unexpected.push(key);
  }
  unexpected -= duplicatedByPath;
  let duplicatedById = 0;
  for (const n of byId.values()) if (n > 1) duplicatedById += n - 1;
  return { expected: expected.size, recorded: events.length, lost, duplicatedById, duplicatedByPath, unexpected, samples };
}
