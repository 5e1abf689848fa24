import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errorCode, writeFileAtomic } from '@fso/common';
import { RedactionKeyError } from '../errors.js';

/** Bytes of a redaction key (the HMAC-SHA-256 block is 64; 32 random bytes are 256 bits). */
export const REDACTION_KEY_BYTES = 32;

/**
 * The agent's redaction key: read from `file`, or made (random, mode 0600,
 * written atomically) when there is none. With it, redaction markers are
 * HMACs: stable across restarts, and nobody reading the diffs can test
 * guesses of a short password against them.
 *
 * @example
 * const redactionKey = await openRedactionKey(state.resolve('redaction.key'));
 * const differ = createDiffer({ store, redactionKey });
 */
export async function openRedactionKey(file: string): Promise<Buffer> {
  try {
    const key = await readFile(file);
    if (key.length !== REDACTION_KEY_BYTES) throw new RedactionKeyError(file, `holds ${key.length} bytes, not ${REDACTION_KEY_BYTES}`);
    return key;
  } catch (err) {
    if (err instanceof RedactionKeyError) throw err;
    if (errorCode(err) !== 'ENOENT') throw new RedactionKeyError(file, 'cannot read', { cause: err });
  }
  const key = randomBytes(REDACTION_KEY_BYTES);
  try {
    await writeFileAtomic(file, key);
  } catch (err) {
    throw new RedactionKeyError(file, 'cannot create', { cause: err });
  }
  return key;
}
