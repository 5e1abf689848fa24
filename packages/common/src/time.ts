/** ISO 8601 UTC with milliseconds, the only timestamp format on the wire. */
export function isoNow(): string {
  return new Date().toISOString();
}

/** `Date.toISOString` of epoch milliseconds (fractions are cut to the millisecond). */
export function isoFromMs(ms: number): string {
  return new Date(Math.floor(ms)).toISOString();
}
