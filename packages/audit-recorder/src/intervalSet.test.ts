import { describe, expect, it } from 'vitest';
import { IntervalSet, missingRanges } from './intervalSet.js';

describe('IntervalSet', () => {
  it('merges adjacent and overlapping ranges, in any order', () => {
    const set = new IntervalSet();
    for (const seq of [5, 1, 3, 2, 9]) set.add(seq);
    expect(set.ranges).toEqual([
      { from: 1, to: 3 },
      { from: 5, to: 5 },
      { from: 9, to: 9 },
    ]);
    set.add(4, 8);
    expect(set.ranges).toEqual([{ from: 1, to: 9 }]);
    expect(set.has(7)).toBe(true);
    expect(set.has(10)).toBe(false);
    expect(set.endOfRangeWith(2)).toBe(9);
  });

  it('stays one range for a million seqs in order', () => {
    const set = new IntervalSet();
    for (let seq = 1; seq <= 1_000_000; seq++) set.add(seq);
    expect(set.ranges).toEqual([{ from: 1, to: 1_000_000 }]);
  });

  it('finds the ranges missing from several sets, up to a limit', () => {
    const recorded = new IntervalSet();
    const gaps = new IntervalSet();
    recorded.add(1, 2);
    recorded.add(4);
    gaps.add(6, 7);
    expect(missingRanges(10, [recorded, gaps])).toEqual([
      { from: 3, to: 3 },
      { from: 5, to: 5 },
      { from: 8, to: 10 },
    ]);
    expect(missingRanges(2, [recorded])).toEqual([]);
    expect(missingRanges(0, [])).toEqual([]);
  });
});
