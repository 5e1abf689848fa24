// Small numeric helpers: percentiles (nearest rank) and min/median/max.

/** The p-th percentile (0–100, nearest rank) of `values`; NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** p50 / p95 / p99 / max and the count of `values` (ms), rounded to 0.1. */
export function latencySummary(values) {
  const r = (x) => Math.round(x * 10) / 10;
  return {
    n: values.length,
    p50: r(percentile(values, 50)),
    p95: r(percentile(values, 95)),
    p99: r(percentile(values, 99)),
    max: r(values.length ? Math.max(...values) : Number.NaN),
  };
}

/** min / median / max of `values` (repeats of one measure). */
export function spread(values, digits = 2) {
  const f = 10 ** digits;
  const r = (x) => Math.round(x * f) / f;
  const sorted = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return { min: null, median: null, max: null, n: 0 };
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: r(sorted[0]), median: r(median), max: r(sorted.at(-1)), n: sorted.length };
}

/** `a ÷ b` per repeat (paired), then their spread. */
export function pairedRatios(a, b, digits = 2) {
  const ratios = [];
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) if (b[i] > 0) ratios.push(a[i] / b[i]);
  return spread(ratios, digits);
}

/** Formats `{min, median, max}` as `median (min–max)`. */
export const fmtSpread = (s, unit = '') => (s.median === null ? 'n/a' : `${s.median}${unit} (${s.min}–${s.max})`);
