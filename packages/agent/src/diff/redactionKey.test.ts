import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import { RedactionKeyError } from '../errors.js';
import { REDACTION_KEY_BYTES, openRedactionKey } from './redactionKey.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ path: dir, cleanup } = await createTempDir('fso-redaction-key-'));
});
afterEach(() => cleanup());

describe('openRedactionKey', () => {
  it('makes a private random key once and returns the same one after a restart', async () => {
    const file = path.join(dir, 'redaction.key');
    const key = await openRedactionKey(file);
    expect(key).toHaveLength(REDACTION_KEY_BYTES);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await openRedactionKey(file)).equals(key)).toBe(true);
    expect((await openRedactionKey(path.join(dir, 'other.key'))).equals(key)).toBe(false);
  });

  it('refuses a key file of the wrong size and an unreadable path, naming the file', async () => {
    const file = path.join(dir, 'short.key');
    await writeFile(file, 'short');
    await expect(openRedactionKey(file)).rejects.toThrow(new RedactionKeyError(file, `holds 5 bytes, not ${REDACTION_KEY_BYTES}`));
    await expect(openRedactionKey(dir)).rejects.toBeInstanceOf(RedactionKeyError);
    await expect(openRedactionKey(path.join(dir, 'missing', 'redaction.key'))).rejects.toThrow(/cannot create/);
  });
});
