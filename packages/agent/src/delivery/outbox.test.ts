import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '@fso/common';
import { createTempDir } from '../../../../tests/helpers.js';
import { openOutbox, unaccounted } from './outbox.js';

describe('unaccounted (seqs neither kept nor announced lost)', () => {
  it('finds the holes between the ack and the last seq, and nothing when every seq is kept or lost', () => {
    expect(unaccounted(0, 20, [], [{ fromSeq: 6, toSeq: 20 }])).toEqual([{ fromSeq: 1, toSeq: 5 }]);
    expect(unaccounted(0, 20, [1, 2, 3, 4, 5], [{ fromSeq: 6, toSeq: 20 }])).toEqual([]);
    expect(unaccounted(2, 10, [3, 5, 9], [{ fromSeq: 6, toSeq: 7 }])).toEqual([{ fromSeq: 4, toSeq: 4 }, { fromSeq: 8, toSeq: 8 }, { fromSeq: 10, toSeq: 10 }]);
    expect(unaccounted(5, 5, [], [])).toEqual([]);
  });
});

describe('openOutbox (real files)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('announces as lost the seqs a crash left neither kept nor announced (a lost seq recorded before the append of lower ones)', async () => {
    const file = path.join(tmp.path, 'outbox.jsonl');
    // The state a crash left: seqs 6..20 recorded as lost, the append of 1..5 never on disk.
    await writeFile(`${file}.meta.json`, JSON.stringify({ ackedSeq: 0, lastSeq: 20, lost: [{ fromSeq: 6, toSeq: 20 }] }));
    const outbox = await openOutbox({ file, journalFile: path.join(tmp.path, 'journal.jsonl'), log: createSilentLogger() });
    try {
      expect(outbox.lost()).toEqual([{ fromSeq: 1, toSeq: 5 }, { fromSeq: 6, toSeq: 20 }]);
      expect(outbox.pendingCount).toBe(0);
    } finally {
      await outbox.close();
    }
    // Kept in the meta file: a second restart announces the same, once.
    const again = await openOutbox({ file, journalFile: path.join(tmp.path, 'journal.jsonl'), log: createSilentLogger() });
    try {
      expect(again.lost()).toEqual([{ fromSeq: 1, toSeq: 5 }, { fromSeq: 6, toSeq: 20 }]);
    } finally {
      await again.close();
    }
  });

  it('close() twice returns the same promise, and appends after it are refused', async () => {
    const outbox = await openOutbox({ file: path.join(tmp.path, 'outbox.jsonl'), journalFile: path.join(tmp.path, 'journal.jsonl'), log: createSilentLogger() });
    const closed = outbox.close();
    expect(outbox.close()).toBe(closed);
    await closed;
    await expect(outbox.append([{ seq: 1, topic: 't', payload: '{}' }])).rejects.toThrow(/closed/);
  });
});
