import { readFile, stat } from 'node:fs/promises';
import { MAX_PAYLOAD_BYTES, errorCode, parseJson } from '@fso/common';
import { ConfigFileError } from './errors.js';

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/**
 * Reads a config file as JSON (not yet validated: that is
 * `parseAgentConfig`'s job). Throws {@link ConfigFileError} when the file is
 * missing, unreadable, too big or not JSON.
 *
 * @example
 * const raw = await readConfigFile('cfg.json');
 */
export async function readConfigFile(file: string): Promise<unknown> {
  let text: string;
  try {
    const info = await stat(file);
    if (info.isDirectory()) throw new ConfigFileError(file, 'it is a directory');
    if (info.size > MAX_PAYLOAD_BYTES) throw new ConfigFileError(file, `${info.size} bytes is more than ${MAX_PAYLOAD_BYTES}`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    const code = errorCode(err);
    const reason = (code && READ_ERRORS[code]) ?? (err instanceof Error ? err.message : String(err));
    throw new ConfigFileError(file, reason, { cause: err });
  }
  const json = parseJson(text);
  if (!json.ok) throw new ConfigFileError(file, json.error);
  return json.value;
}
