/** An inclusive range of sequence numbers. */
export interface SeqRange {
  from: number;
  to: number;
}

/**
 * A set of positive integers kept as sorted, disjoint, non-adjacent ranges.
 * Sequence numbers mostly arrive in order, so the set stays a handful of
 * ranges however many seqs it holds.
 */
export class IntervalSet {
  readonly #ranges: SeqRange[] = [];

  /** The ranges, sorted and merged. */
  get ranges(): readonly SeqRange[] {
    return this.#ranges;
  }

  /** True when `seq` is in the set. */
  has(seq: number): boolean {
    const range = this.#ranges[this.#indexAtOrBefore(seq)];
    return range !== undefined && range.from <= seq && seq <= range.to;
  }

  /** The end of the range holding `seq`, or undefined. */
  endOfRangeWith(seq: number): number | undefined {
    const range = this.#ranges[this.#indexAtOrBefore(seq)];
    return range !== undefined && range.from <= seq && seq <= range.to ? range.to : undefined;
  }

  /** Adds `from..to` (inclusive), merging with neighbours. */
  add(from: number, to: number = from): void {
    if (to < from) return;
    // First range that could touch [from, to]: the last one starting at or before from - 1.
    let i = Math.max(0, this.#indexAtOrBefore(from - 1));
    while (i < this.#ranges.length && (this.#ranges[i]?.to ?? 0) < from - 1) i++;
    let j = i;
    let start = from;
    let end = to;
    while (j < this.#ranges.length) {
      const r = this.#ranges[j];
      if (r === undefined || r.from > to + 1) break;
      start = Math.min(start, r.from);
      end = Math.max(end, r.to);
      j++;
    }
    this.#ranges.splice(i, j - i, { from: start, to: end });
  }

  /** Index of the last range with `from <= seq`, or -1. */
  #indexAtOrBefore(seq: number): number {
    let lo = 0;
    let hi = this.#ranges.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#ranges[mid]?.from ?? Infinity) <= seq) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }
}

/** The ranges of `1..limit` that are in none of `sets`. */
export function missingRanges(limit: number, sets: readonly IntervalSet[]): SeqRange[] {
  const covered = sets.flatMap((s) => s.ranges).sort((a, b) => a.from - b.from);
  const missing: SeqRange[] = [];
  let next = 1;
  for (const r of covered) {
    if (next > limit) break;
    if (r.from > next) missing.push({ from: next, to: Math.min(r.from - 1, limit) });
    next = Math.max(next, r.to + 1);
  }
  if (next <= limit) missing.push({ from: next, to: limit });
  return missing;
}
