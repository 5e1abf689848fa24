import { createHash } from 'node:crypto';

/**
 * The hash chain that makes audit files tamper-evident.
 *
 * A line is sealed as: `text0 = JSON.stringify({ ...fields, prevHash })`,
 * `hash = sha256hex(text0)`, `line = text0 minus its closing brace + ,"hash":"<hash>"}`.
 * Verification works on the raw text (no re-serialisation), so any byte
 * changed in a line changes its hash, and `prevHash` ties each line to the one
 * before it: the previous line of its kind, across day files.
 */

/** `prevHash` of the very first line of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

/** A sealed line (without its newline) and its hash. */
export interface SealedLine {
  text: string;
  hash: string;
}

/** SHA-256 of a string's UTF-8 bytes, lower-case hex. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Seals `fields` into one line chained to `prevHash`. */
export function sealLine(fields: Record<string, unknown>, prevHash: string): SealedLine {
  const text0 = JSON.stringify({ ...fields, prevHash });
  const hash = sha256Hex(text0);
  return { text: `${text0.slice(0, -1)},"hash":"${hash}"}`, hash };
}

/** What {@link openLine} found in a line. */
export type OpenedLine =
  | { ok: true; hash: string; prevHash: string; value: Record<string, unknown>; intact: boolean }
  | { ok: false; reason: string };

/**
 * Reads a sealed line: its stored hash, its `prevHash`, its fields, and
 * whether the stored hash matches the text (`intact`). `ok: false` when the
 * line is not a sealed JSON object at all.
 */
export function openLine(text: string): OpenedLine {
  const match = HASH_SUFFIX.exec(text);
  if (!match) return { ok: false, reason: 'not a sealed record (no trailing "hash" field)' };
  const hash = match[1] ?? '';
  const text0 = `${text.slice(0, match.index)}}`;
  let value: unknown;
  try {
    value = JSON.parse(text0);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const prevHash = record.prevHash;
  if (typeof prevHash !== 'string' || !/^[0-9a-f]{64}$/.test(prevHash)) {
    return { ok: false, reason: 'no valid "prevHash" field' };
  }
  return { ok: true, hash, prevHash, value: record, intact: sha256Hex(text0) === hash };
}
