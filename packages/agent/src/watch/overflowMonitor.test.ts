import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import { createOverflowMonitor, overflowThreshold, readMaxQueuedEvents } from './overflowMonitor.js';
import type { OverflowMonitor, OverflowSuspicion } from './overflowMonitor.js';

/** Resolves after the event loop's check phase (where the monitor counts a batch). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

describe('overflow monitor', () => {
  let monitor: OverflowMonitor | undefined;
  afterEach(() => monitor?.close());

  it('reports a batch of at least the threshold in one turn of the loop, with the window it may have missed', async () => {
    const seen: OverflowSuspicion[] = [];
    monitor = createOverflowMonitor({ threshold: 100, onOverflow: (s) => seen.push(s) });
    const before = Date.now();
    for (let i = 0; i < 150; i += 1) monitor.note();
    await nextTurn();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.notifications).toBe(150);
    expect(seen[0]?.sinceMs).toBeLessThanOrEqual(before);
    expect(seen[0]?.atMs).toBeGreaterThanOrEqual(before);
  });

  it('counts each turn on its own: many small batches are no overflow', async () => {
    const seen: OverflowSuspicion[] = [];
    monitor = createOverflowMonitor({ threshold: 100, onOverflow: (s) => seen.push(s) });
    for (let turn = 0; turn < 5; turn += 1) {
      for (let i = 0; i < 99; i += 1) monitor.note();
      await nextTurn();
    }
    expect(seen).toHaveLength(0);
    for (let i = 0; i < 100; i += 1) monitor.note();
    await nextTurn();
    expect(seen.map((s) => s.notifications)).toEqual([100]);
  });

  it('dates the window back to before a stall of the event loop', async () => {
    const seen: OverflowSuspicion[] = [];
    monitor = createOverflowMonitor({ threshold: 10, onOverflow: (s) => seen.push(s) });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const stalledAt = Date.now();
    const until = stalledAt + 500;
    while (Date.now() < until) {
      // A busy loop: no timer, no I/O.
    }
    // The late tick fires first after a stall; it must not count as the loop being alive.
    await new Promise((resolve) => setTimeout(resolve, 0));
    for (let i = 0; i < 10; i += 1) monitor.note();
    await nextTurn();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.sinceMs).toBeLessThanOrEqual(stalledAt);
  });

  it('threshold is half the kernel queue; the queue size is read from /proc, or null', async () => {
    expect(overflowThreshold(16_384)).toBe(8192);
    expect(overflowThreshold(1)).toBe(1);
    const dir = await createTempDir();
    try {
      const file = path.join(dir.path, 'max_queued_events');
      await writeFile(file, '65536\n');
      expect(await readMaxQueuedEvents(file)).toBe(65_536);
      await writeFile(file, 'garbage\n');
      expect(await readMaxQueuedEvents(file)).toBeNull();
      expect(await readMaxQueuedEvents(path.join(dir.path, 'missing'))).toBeNull();
    } finally {
      await dir.cleanup();
    }
  });
});
