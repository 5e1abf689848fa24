/**
 * What a path glob says literally, so the index can narrow the distinct
 * paths it tests with picomatch: a prefix every match starts with (a range
 * on the sorted path column) and a piece every match contains (a substring
 * test in SQLite). Both are only necessary conditions: picomatch decides.
 */
export interface GlobLiterals {
  /** Every matching path starts with this ('' when nothing is known). */
  prefix: string;
  /** Every matching path contains this ('' when nothing is known). */
  required: string;
}

/** Characters that are not themselves in a glob (picomatch: wildcards, classes, braces, extglobs, escapes). */
const SPECIAL = new Set(['*', '?', '[', ']', '{', '}', '(', ')', '!', '+', '@', '|', '\\']);
const OPEN = new Set(['[', '{', '(']);
const CLOSE = new Set([']', '}', ')']);

/**
 * The literal prefix and the longest literal piece of `glob`. Slashes at the
 * edges of a piece are left out, because `a/**` also matches `a` and `**\/b`
 * also matches `b`. A negated or `./` glob yields nothing.
 */
export function globLiterals(glob: string): GlobLiterals {
  if (glob.startsWith('!') || glob.startsWith('./')) return { prefix: '', required: '' };
  const chars = [...glob];
  const firstSpecial = chars.findIndex((c) => SPECIAL.has(c));
  const prefix = (firstSpecial === -1 ? glob : chars.slice(0, firstSpecial).join('')).replace(/\/$/, '');
  let required = '';
  let run = '';
  let depth = 0;
  const endRun = (): void => {
    const piece = run.replace(/^\/+|\/+$/g, '');
    if (piece.length > required.length) required = piece;
    run = '';
  };
  for (const c of chars) {
    if (OPEN.has(c)) depth += 1;
    else if (CLOSE.has(c)) depth = Math.max(0, depth - 1);
    if (depth === 0 && !SPECIAL.has(c)) run += c;
    else endRun();
  }
  endRun();
  return { prefix, required };
}

/** The smallest string above every string that starts with `prefix` (its last code point + 1). */
export function prefixEnd(prefix: string): string {
  const points = [...prefix];
  const last = points.pop();
  if (last === undefined) return '';
  let code = (last.codePointAt(0) ?? 0) + 1;
  if (code >= 0xd800 && code <= 0xdfff) code = 0xe000;
  return code > 0x10ffff ? `${prefixEnd(points.join(''))}` : `${points.join('')}${String.fromCodePoint(code)}`;
}
