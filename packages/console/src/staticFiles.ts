import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

/** A file of the web app to send, or undefined for a 404. */
export interface StaticFile {
  body: Buffer;
  type: string;
}

/**
 * The built web app's files under `root` (dist/web), read once and kept: the
 * app is small, and a request never reaches outside `root`.
 */
export function createStaticFiles(root: string): (urlPath: string) => Promise<StaticFile | undefined> {
  // Only files found are kept: a request for a missing name costs a stat, never memory.
  const cache = new Map<string, StaticFile>();
  return async (urlPath) => {
    const name = urlPath === '/' ? '/index.html' : urlPath;
    const cached = cache.get(name);
    if (cached) return cached;
    const file = path.resolve(root, `.${path.posix.normalize(name)}`);
    const type = TYPES[path.extname(file)];
    if (!file.startsWith(root + path.sep) || type === undefined) return undefined;
    let found: StaticFile | undefined;
    try {
      found = { body: await readFile(file), type };
    } catch (err) {
      if (errorCode(err) !== 'ENOENT' && errorCode(err) !== 'EISDIR') throw err;
    }
    if (found) cache.set(name, found);
    return found;
  };
}
