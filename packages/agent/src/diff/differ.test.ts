import { createHash, createHmac } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { applyPatch } from 'diff';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import type { ContentStore } from './contentStore.js';
import { createContentStore } from './contentStore.js';
import { createDiffWorker } from './diffWorker.js';
import { DifferClosedError } from '../errors.js';
import { createDiffer, isNodiff } from './differ.js';
import type { DiffRequest, DiffResult, Differ } from './differ.js';
import { ALL_SECRETS, SECRETS, SECRET_FILES, expectedMarker, pemBody } from '../testing/secretFixtures.js';

const OPTIONS: DiffRequest['options'] = { maxFileBytes: 1024 * 1024, timeoutMs: 5000, context: 3, nodiff: [], redact: [] };

/** The bench's files: `bytes` of 100-byte lines, line i reading `tag` when i % every === 0 (else `a`). */
const benchText = (bytes: number, tag: string, every: number): string =>
  Array.from({ length: Math.ceil(bytes / 100) }, (_, i) => `${i % every === 0 ? tag : 'a'} line ${String(i).padStart(8, '0')} `.padEnd(99, i % 2 ? 'x' : 'y') + '\n').join('');

/** `count` distinct lines tagged `tag`: two such texts share no line. */
const lines = (tag: string, count: number): string =>
  Array.from({ length: count }, (_, i) => `${tag} line ${i} ${'x'.repeat(40)}\n`).join('');

let dir: string;
let cleanup: () => Promise<void>;
let store: ContentStore;
let differ: Differ;
beforeEach(async () => {
  ({ path: dir, cleanup } = await createTempDir('fso-differ-'));
  store = await createContentStore(path.join(dir, 'state', 'content'));
  differ = createDiffer({ store });
});
afterEach(async () => {
  await differ.close();
  await store.close();
  await cleanup();
});

const file = (name: string): string => path.join(dir, name);
const createHmacHex = (key: Uint8Array, secret: string): string => createHmac('sha256', key).update(secret).digest('hex').slice(0, 8);
const request = (p: string, change: DiffRequest['change'], options: Partial<typeof OPTIONS> = {}): DiffRequest => ({
  path: p,
  change,
  options: { ...OPTIONS, ...options },
});

describe('differ: patches', () => {
  it('diffs a create from empty, a modify from the last content, a delete to empty; patches apply', async () => {
    const p = file('app.conf');
    const v1 = 'a = 1\nb = 2\nc = 3\n';
    const v2 = 'a = 1\nb = two\nc = 3\nd = 4\ne = 5\n';
    await writeFile(p, v1);
    const created = await differ.diff(request(p, 'create'));
    expect(created).toMatchObject({ added: 3, removed: 0, skipped: null });
    expect(created.patch?.startsWith(`--- a${p}\n+++ b${p}\n@@ -0,0 +1,3 @@\n`)).toBe(true);
    expect(applyPatch('', created.patch ?? '')).toBe(v1);

    await writeFile(p, v2);
    const modified = await differ.diff(request(p, 'modify'));
    expect(modified).toMatchObject({ added: 3, removed: 1, skipped: null });
    expect(applyPatch(v1, modified.patch ?? '')).toBe(v2);

    await rm(p);
    const deleted = await differ.diff(request(p, 'delete'));
    expect(deleted).toMatchObject({ added: 0, removed: 5, skipped: null });
    expect(applyPatch(v2, deleted.patch ?? '')).toBe('');
    expect(await store.has(p)).toBe(false);
  });

  it('uses the context option and counts only hunk lines, not headers or "no newline" markers', async () => {
    const p = file('ctx.txt');
    const v1 = lines('same', 20);
    const v2 = v1.replace('same line 10 ', 'changed line 10 ') + 'tail without newline';
    await writeFile(p, v1);
    await differ.remember(p, OPTIONS.maxFileBytes);
    await writeFile(p, v2);
    const result = await differ.diff(request(p, 'modify', { context: 1 }));
    expect(result).toMatchObject({ added: 2, removed: 1, skipped: null });
    expect(result.patch).toContain('\\ No newline at end of file');
    expect(result.patch).not.toContain('same line 8 ');
    expect(result.patch).toContain(' same line 9 ');
    expect(applyPatch(v1, result.patch ?? '')).toBe(v2);
  });

  it('diffs a modify of a file never seen from empty', async () => {
    const p = file('new.yml');
    await writeFile(p, 'x: 1\n');
    const result = await differ.diff(request(p, 'modify'));
    expect(result).toMatchObject({ added: 1, removed: 0, skipped: null });
  });

  it('makes the first diff after a restart against the content stored before it', async () => {
    const p = file('kept.conf');
    await writeFile(p, 'before restart\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    await differ.close();
    await store.close();
    store = await createContentStore(path.join(dir, 'state', 'content'));
    differ = createDiffer({ store });
    await writeFile(p, 'after restart\n');
    const result = await differ.diff(request(p, 'modify'));
    expect(result).toMatchObject({ added: 1, removed: 1, skipped: null });
    expect(applyPatch('before restart\n', result.patch ?? '')).toBe('after restart\n');
  });

  it('diffs against nothing stored when the stored content is torn or damaged, and stores the new content', async () => {
    const p = file('torn.conf');
    const stored = path.join(dir, 'state', 'content', createHash('sha256').update(p).digest('hex'));
    await writeFile(p, 'a = 1\nb = 2\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    // A crash before the unsynced store write reached the disk: the file is short of its header's length.
    await writeFile(stored, (await readFile(stored)).subarray(0, -4));
    await writeFile(p, 'a = 1\nb = 3\n');
    // The previous content is unknown: the diff is from empty, as for a file never seen.
    expect(await differ.diff(request(p, 'modify'))).toMatchObject({ added: 2, removed: 0, skipped: null });
    expect((await store.get(p))?.toString()).toBe('a = 1\nb = 3\n');
    // Same length, a byte changed: the checksum catches it.
    const bytes = await readFile(stored);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 1, bytes.length - 2);
    await writeFile(stored, bytes);
    await writeFile(p, 'a = 1\nb = 4\n');
    expect(await differ.diff(request(p, 'modify'))).toMatchObject({ added: 2, removed: 0, skipped: null });
    await writeFile(p, 'a = 2\nb = 4\n');
    expect(await differ.diff(request(p, 'modify'))).toMatchObject({ added: 1, removed: 1, skipped: null });
  });

  it('remember stores the content, and does not rewrite content that is already stored', async () => {
    const p = file('seen.conf');
    const stored = path.join(dir, 'state', 'content', createHash('sha256').update(p).digest('hex'));
    await writeFile(p, 'v1\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    const first = await stat(stored);
    await differ.remember(p, OPTIONS.maxFileBytes);
    expect((await stat(stored)).ino).toBe(first.ino);
    await writeFile(p, 'v2\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    expect((await store.get(p))?.toString()).toBe('v2\n');
    expect((await stat(stored)).ino).not.toBe(first.ino);
  });

  it('moves the last content with a rename', async () => {
    const [from, to] = [file('from.conf'), file('to.conf')];
    await writeFile(from, 'k = v\n');
    await differ.remember(from, OPTIONS.maxFileBytes);
    await differ.rename(from, to);
    await writeFile(to, 'k = w\n');
    expect(await differ.diff(request(to, 'modify'))).toMatchObject({ added: 1, removed: 1, skipped: null });
    await differ.forget(to);
    expect(await store.has(to)).toBe(false);
  });
});

describe('differ: skipped', () => {
  it('makes a modify that changed no byte, and an empty create or delete, a patch without hunks', async () => {
    const p = file('same');
    const stored = path.join(dir, 'state', 'content', createHash('sha256').update(p).digest('hex'));
    await writeFile(p, 'same\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    const before = await stat(stored);
    const headers = (f: string): string => `--- a${f}\n+++ b${f}\n`;
    expect(await differ.diff(request(p, 'modify'))).toEqual({ patch: headers(p), added: 0, removed: 0, skipped: null, redactions: [] });
    // Nothing new: the stored copy is not rewritten.
    expect((await stat(stored)).ino).toBe(before.ino);
    const empty = file('empty.conf');
    await writeFile(empty, '');
    const nothing = { patch: headers(empty), added: 0, removed: 0, skipped: null, redactions: [] };
    expect(await differ.diff(request(empty, 'create'))).toEqual(nothing);
    expect(await differ.diff(request(empty, 'modify'))).toEqual(nothing);
    await rm(empty);
    expect(await differ.diff(request(empty, 'delete'))).toEqual(nothing);
  });

  it('skips binary content (NUL byte, invalid UTF-8) but stores it so the next diff is right', async () => {
    const p = file('blob');
    await writeFile(p, Buffer.from([0x68, 0x69, 0x00, 0x0a]));
    expect(await differ.diff(request(p, 'create'))).toEqual({ patch: null, added: 0, removed: 0, skipped: 'binary', redactions: [] });
    const latin1 = Buffer.from('caf\xe9\n', 'latin1');
    await writeFile(p, latin1);
    expect((await differ.diff(request(p, 'modify'))).skipped).toBe('binary');
    expect((await store.get(p))?.equals(latin1)).toBe(true);
    await writeFile(p, 'text again\n');
    expect((await differ.diff(request(p, 'modify'))).skipped).toBe('binary');
    await writeFile(p, 'text now\n');
    expect(await differ.diff(request(p, 'modify'))).toMatchObject({ added: 1, removed: 1, skipped: null });
  });

  it('skips a file over maxFileBytes as too-large and drops the stale stored content', async () => {
    const p = file('big');
    await writeFile(p, 'small\n');
    await differ.remember(p, 100);
    await writeFile(p, 'y'.repeat(101));
    expect(await differ.diff(request(p, 'modify', { maxFileBytes: 100 }))).toEqual({
      patch: null,
      added: 0,
      removed: 0,
      skipped: 'too-large',
      redactions: [],
    });
    expect(await store.has(p)).toBe(false);
  });

  it('skips a patch larger than maxPatchBytes as too-large', async () => {
    const small = createDiffer({ store, maxPatchBytes: 1000 });
    try {
      const p = file('wide');
      await writeFile(p, lines('new', 100));
      expect((await small.diff(request(p, 'create'))).skipped).toBe('too-large');
      expect(await store.has(p)).toBe(true);
    } finally {
      await small.close();
    }
  });

  it('skips a patch over the config\'s diff.maxPatchBytes as too-large, with its line counts', async () => {
    const p = file('wide.conf');
    await writeFile(p, lines('new', 100));
    expect(await differ.diff(request(p, 'create', { maxPatchBytes: 2000 }))).toEqual({ patch: null, added: 100, removed: 0, skipped: 'too-large', redactions: [] });
    await writeFile(p, lines('new', 99));
    expect(await differ.diff(request(p, 'modify', { maxPatchBytes: 2000 }))).toMatchObject({ added: 0, removed: 1, skipped: null });
  });

  // Generous limits: these check the patch, not the speed (that is `pnpm bench`); the worker runs at nice 10.
  it.each([
    { what: 'a 1 MB file rewritten end to end (100% changed)', name: 'rewrite.conf', bytes: 1024 * 1024, every: 1, maxFileBytes: 2 * 1024 * 1024, lines: 10_486 },
    { what: 'a 10 MB file with 1% of its lines changed', name: 'big.conf', bytes: 10 * 1024 * 1024, every: 100, maxFileBytes: 16 * 1024 * 1024, lines: 1049 },
  ])('diffs $what into a minimal patch that applies', async ({ name, bytes, every, maxFileBytes, lines: changed }) => {
    const p = file(name);
    const [v1, v2] = [benchText(bytes, 'a', every), benchText(bytes, 'b', every)];
    const options = { maxFileBytes, timeoutMs: 30_000 };
    await writeFile(p, v1);
    await differ.remember(p, options.maxFileBytes);
    await writeFile(p, v2);
    const result = await differ.diff(request(p, 'modify', options));
    expect(result).toMatchObject({ added: changed, removed: changed, skipped: null });
    expect(applyPatch(v1, result.patch ?? '')).toBe(v2);
  });

  it('skips a change the diff cannot finish within timeoutMs as timeout, and stores the new content', async () => {
    const p = file('rewritten');
    await writeFile(p, lines('old', 20_000));
    await differ.remember(p, 4 * 1024 * 1024);
    const v2 = lines('new', 20_000);
    await writeFile(p, v2);
    const result = await differ.diff(request(p, 'modify', { maxFileBytes: 4 * 1024 * 1024, timeoutMs: 1 }));
    expect(result).toEqual({ patch: null, added: 0, removed: 0, skipped: 'timeout', redactions: [] });
    expect((await store.get(p))?.toString()).toBe(v2);
  });

  it('reports a vanished file, a symlink and a directory as unreadable and leaves the store alone', async () => {
    const p = file('gone');
    await writeFile(p, 'kept\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    await rm(p);
    expect(await differ.diff(request(p, 'modify'))).toEqual({ patch: null, added: 0, removed: 0, skipped: 'unreadable', redactions: [] });
    expect((await store.get(p))?.toString()).toBe('kept\n');
    await symlink('/etc/hostname', file('link'));
    expect((await differ.diff(request(file('link'), 'create'))).skipped).toBe('unreadable');
    expect((await differ.diff(request(dir, 'modify'))).skipped).toBe('unreadable');
  });
});

describe('differ: secrets never leave in a patch', () => {
  /** Every file under `root`, read: what an attacker with the state dir or the published diffs would grep. */
  const readAll = async (root: string): Promise<string> => {
    const names = await readdir(root, { recursive: true, withFileTypes: true });
    const files = names.filter((d) => d.isFile()).map((d) => path.join(d.parentPath, d.name));
    return (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n');
  };

  it('redacts each realistic file on create, modify and delete, with its kinds counted; no patch holds a test secret', async () => {
    const patches: string[] = [];
    const keep = (result: DiffResult): DiffResult => {
      patches.push(result.patch ?? '');
      return result;
    };
    for (const [i, { text, kinds }] of SECRET_FILES.entries()) {
      const p = file(`settings-${i}.conf`);
      await writeFile(p, text);
      const created = keep(await differ.diff(request(p, 'create')));
      expect(created.skipped).toBeNull();
      expect(Object.fromEntries(created.redactions.map((r) => [r.kind, r.count]))).toEqual(kinds);
      // A change next to the secrets: they come back as context, as the same markers.
      await writeFile(p, `# reviewed\n${text}`);
      const modified = keep(await differ.diff(request(p, 'modify', { context: 100 })));
      expect(modified).toMatchObject({ added: 1, removed: 0, skipped: null });
      expect(modified.patch!.split('\n').slice(4).join('\n')).toBe(created.patch!.split('\n').slice(3).map((l) => l.replace(/^\+/, ' ')).join('\n'));
      await rm(p);
      expect(keep(await differ.diff(request(p, 'delete'))).redactions).toEqual(created.redactions);
    }
    const published = patches.join('\n');
    expect(published).toContain('[REDACTED:');
    for (const secret of ALL_SECRETS) expect(published, secret).not.toContain(secret);
  });

  it('keeps the marker of an unchanged secret and changes it with the secret', async () => {
    const p = file('db.yml');
    await writeFile(p, 'password: first-pass\nport: 1\n');
    await differ.remember(p, OPTIONS.maxFileBytes);
    await writeFile(p, 'password: first-pass\nport: 2\n');
    const same = await differ.diff(request(p, 'modify'));
    expect(same.patch).toContain(` password: ${expectedMarker('password', 'first-pass')}\n-port: 1\n+port: 2\n`);
    await writeFile(p, 'password: second-pass\nport: 2\n');
    const changed = await differ.diff(request(p, 'modify'));
    expect(changed.patch).toContain(`-password: ${expectedMarker('password', 'first-pass')}\n+password: ${expectedMarker('password', 'second-pass')}\n`);
    expect(changed.redactions).toEqual([{ kind: 'password', count: 2 }]);
  });

  it('redacts the changed line in the middle of a private key, though the hunk does not show BEGIN', async () => {
    const p = file('bundle.conf');
    const body = pemBody('bundle', 30);
    const v1 = ['-----BEGIN EC PRIVATE KEY-----', ...body, '-----END EC PRIVATE KEY-----', ''].join('\n');
    const v2 = v1.replace(body[15]!, pemBody('rotated', 1)[0]!);
    await writeFile(p, v1);
    await differ.remember(p, OPTIONS.maxFileBytes);
    await writeFile(p, v2);
    const result = await differ.diff(request(p, 'modify', { context: 2 }));
    expect(result.patch).not.toContain('BEGIN');
    expect(result).toMatchObject({ added: 1, removed: 1, redactions: [{ kind: 'private-key', count: 6 }] });
    for (const secret of [...body, pemBody('rotated', 1)[0]!]) expect(result.patch).not.toContain(secret);
  });

  it('applies the configured extra patterns and the redaction key', async () => {
    const key = Buffer.from('per-agent-key');
    const keyed = createDiffer({ store, redactionKey: key });
    try {
      const p = file('hr.conf');
      await writeFile(p, 'owner = EMP-123456\n');
      const redact = [{ name: 'employee-id', pattern: 'EMP-\\d{6}' }];
      const result = await keyed.diff(request(p, 'create', { redact }));
      const hmac = createHmacHex(key, 'EMP-123456');
      expect(result.patch).toContain(`+owner = [REDACTED:employee-id:${hmac}]\n`);
      expect(result.redactions).toEqual([{ kind: 'employee-id', count: 1 }]);
    } finally {
      await keyed.close();
    }
  });

  it('checks the size again once redacted and JSON-escaped', async () => {
    const p = file('many.conf');
    // 200 lines of `password=N`: 2.5 kB raw, 8 kB once each value is a marker.
    await writeFile(p, Array.from({ length: 200 }, (_, i) => `password=${i % 10}\n`).join(''));
    const small = createDiffer({ store, maxPatchBytes: 4000 });
    try {
      // Measured, not published: the line counts stay.
      expect(await small.diff(request(p, 'create'))).toEqual({ patch: null, added: 200, removed: 0, skipped: 'too-large', redactions: [] });
      // Control characters are text, and grow sixfold as JSON (\u0001).
      await writeFile(p, '\u0001'.repeat(1000));
      expect((await small.diff(request(p, 'modify'))).skipped).toBe('too-large');
      const fits = file('few.conf');
      await writeFile(fits, 'password=1\n');
      expect(await small.diff(request(fits, 'create'))).toMatchObject({ skipped: null, redactions: [{ kind: 'password', count: 1 }] });
    } finally {
      await small.close();
    }
  });

  it('never reads, diffs or keeps a nodiff path (DEFAULT_NODIFF and diff.nodiff), and drops a copy stored before', async () => {
    const secretText = `DB_PASSWORD=${SECRETS.dbPassword}\n`;
    const names = ['.env', '.env.production', 'server.key', 'tls.pem', 'id_ed25519', 'shadow', path.join('.aws', 'credentials'), 'vault.secret', path.join('private', 'app.conf')];
    await mkdir(file('.aws'));
    await mkdir(file('private'));
    const nodiff = ['*.secret', `${dir}/private/**`];
    for (const name of names) {
      const p = file(name);
      await writeFile(p, secretText);
      expect(await differ.diff(request(p, 'create', { nodiff })), name).toEqual({ patch: null, added: 0, removed: 0, skipped: 'nodiff', redactions: [] });
      await writeFile(p, `${secretText}more\n`);
      expect((await differ.diff(request(p, 'modify', { nodiff }))).skipped, name).toBe('nodiff');
      await differ.remember(p, OPTIONS.maxFileBytes, nodiff);
      expect(await store.has(p), name).toBe(false);
    }
    // Stored while not nodiff, then the config says nodiff: the copy goes at the next diff or remember.
    const conf = file('app.conf');
    await writeFile(conf, secretText);
    await differ.remember(conf, OPTIONS.maxFileBytes);
    expect(await store.has(conf)).toBe(true);
    expect((await differ.diff(request(conf, 'modify', { nodiff: ['*.conf'] }))).skipped).toBe('nodiff');
    expect(await store.has(conf)).toBe(false);
    await differ.remember(conf, OPTIONS.maxFileBytes);
    await differ.remember(conf, OPTIONS.maxFileBytes, ['app.*']);
    expect(await store.has(conf)).toBe(false);
    // A rename to a nodiff name drops the content instead of moving it.
    const plain = file('plain.conf');
    await writeFile(plain, secretText);
    await differ.remember(plain, OPTIONS.maxFileBytes);
    await differ.rename(plain, file('plain.key'));
    expect(await store.has(plain)).toBe(false);
    expect(await store.has(file('plain.key'))).toBe(false);
    expect(await readAll(path.join(dir, 'state'))).not.toContain(SECRETS.dbPassword);
  });

  it("keeps this host's nodiff globs (fso-agent --nodiff) whatever the request's config says", async () => {
    const local = createDiffer({ store, nodiff: ['*.local'] });
    try {
      const p = file('db.local');
      await writeFile(p, 'password=x1\n');
      expect((await local.diff(request(p, 'create', { nodiff: [] }))).skipped).toBe('nodiff');
      await local.remember(p, OPTIONS.maxFileBytes);
      expect(await store.has(p)).toBe(false);
      expect((await differ.diff(request(p, 'create'))).skipped).toBeNull();
    } finally {
      await local.close();
    }
  });

  it('isNodiff: globs with a slash match the absolute path, globs without one the base name', () => {
    expect(isNodiff('/srv/app/.env')).toBe(true);
    expect(isNodiff('/home/u/.ssh/id_rsa.pub')).toBe(true);
    expect(isNodiff('/etc/shadow')).toBe(true);
    expect(isNodiff('/srv/app/app.conf')).toBe(false);
    expect(isNodiff('/srv/app/environment.conf')).toBe(false);
    expect(isNodiff('/srv/app/app.conf', ['*.conf'])).toBe(true);
    expect(isNodiff('/srv/app/app.conf', ['/srv/app/**'])).toBe(true);
    expect(isNodiff('/srv/other/app.conf', ['/srv/app/**', '**/keys/*'])).toBe(false);
  });
});

describe('differ: ordering and lifecycle', () => {
  it('runs requests for one path in call order (create, delete, modify, rename, delete fired at once)', async () => {
    const [p, q] = [file('p.conf'), file('q.conf')];
    await writeFile(p, 'one\ntwo\n');
    const results = await Promise.all([
      differ.diff(request(p, 'create')),
      differ.diff(request(p, 'delete')),
      differ.diff(request(p, 'modify')),
      differ.rename(p, q).then(() => null),
      differ.diff(request(q, 'delete')),
    ]);
    expect(results.map((r) => r && [r.added, r.removed, r.skipped])).toEqual([
      [2, 0, null],
      [0, 2, null],
      [2, 0, null],
      null,
      [0, 2, null],
    ]);
  });

  it('keeps the event loop responsive while 10 MB 100%-changed diffs run, and gives their line counts', async () => {
    const p = file('huge');
    const big = { maxFileBytes: 16 * 1024 * 1024, timeoutMs: 5000 };
    const versions = [benchText(10 * 1024 * 1024, 'a', 1), benchText(10 * 1024 * 1024, 'b', 1)];
    await writeFile(p, versions[0]!);
    await differ.remember(p, big.maxFileBytes);
    let last = performance.now();
    let maxLag = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    let shortestRoundMs = Number.POSITIVE_INFINITY;
    try {
      for (let round = 1; round <= 3; round++) {
        await writeFile(p, versions[round % 2]!);
        const started = performance.now();
        // A ~21 MB patch: measured in the worker, never built, never sent.
        expect(await differ.diff(request(p, 'modify', big))).toEqual({ patch: null, added: 104_858, removed: 104_858, skipped: 'too-large', redactions: [] });
        shortestRoundMs = Math.min(shortestRoundMs, performance.now() - started);
      }
    } finally {
      clearInterval(timer);
    }
    // Reading, checking, storing and diffing happen in the worker: this thread never holds a whole file.
    // On this thread a diff would stall it for the whole round; a loaded machine stretches both
    // (the bound grows with the shortest round, never below 200 ms).
    expect(maxLag).toBeLessThan(Math.max(200, shortestRoundMs / 4));
  });

  it('close() ends the worker thread, rejects diffs in flight and later calls, and is idempotent', async () => {
    const p = file('c');
    await writeFile(p, lines('old', 20_000));
    const threads = (): number => readdirSync('/proc/self/task').length;
    const big = { maxFileBytes: 4 * 1024 * 1024, timeoutMs: 30_000 };
    const before = threads();
    expect(await differ.diff(request(p, 'create', big))).toMatchObject({ added: 20_000, skipped: null });
    const withWorker = threads();
    expect(withWorker).toBeGreaterThan(before);
    await writeFile(p, lines('new', 20_000));
    const inFlight = expect(differ.diff(request(p, 'modify', big))).rejects.toBeInstanceOf(DifferClosedError);
    const closed = differ.close();
    expect(differ.close()).toBe(closed);
    await closed;
    await inFlight;
    await expect(differ.diff(request(p, 'modify'))).rejects.toBeInstanceOf(DifferClosedError);
    expect(threads()).toBeLessThan(withWorker);
  });
});

describe('diff worker', () => {
  const job = (oldText: string, newText: string, timeoutMs = 5000) => ({
    oldName: 'a/f',
    newName: 'b/f',
    oldContent: Buffer.from(oldText),
    newContent: Buffer.from(newText),
    context: 3,
    timeoutMs,
    maxPatchBytes: 64 * 1024 * 1024,
  });

  it('starts its thread on the first job and ends it on close', async () => {
    const worker = createDiffWorker();
    expect(worker.threadId).toBeNull();
    expect(await worker.run(job('a\n', 'b\n'))).toMatchObject({ outcome: 'patch', added: 1, removed: 1 });
    expect(worker.threadId).toEqual(expect.any(Number));
    const closed = worker.close();
    // A second call waits for the same termination (chokidar's habit).
    expect(worker.close()).toBe(closed);
    await closed;
    expect(worker.threadId).toBeNull();
  });

  it('rejects the running and the queued jobs on close', async () => {
    const worker = createDiffWorker();
    const running = worker.run(job(lines('old', 20_000), lines('new', 20_000), 30_000));
    const queued = worker.run(job('a\n', 'b\n'));
    expect(worker.threadId).toEqual(expect.any(Number));
    const rejected = Promise.all([
      expect(running).rejects.toBeInstanceOf(DifferClosedError),
      expect(queued).rejects.toBeInstanceOf(DifferClosedError),
    ]);
    await worker.close();
    await rejected;
    await expect(worker.run(job('a\n', 'b\n'))).rejects.toBeInstanceOf(DifferClosedError);
  });

  it('answers a job whose worker crashed (out of memory) as failed, and runs the next on a new worker', async () => {
    const worker = createDiffWorker({ memoryLimitMb: 16 });
    try {
      expect(await worker.run(job('a\n', 'b\n'))).toMatchObject({ outcome: 'patch' });
      const first = worker.threadId;
      const crashed = await worker.run(job('', lines('new', 150_000)));
      expect(crashed).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/memory/i) });
      expect(await worker.run(job('a\n', 'c\n'))).toMatchObject({ outcome: 'patch', added: 1, removed: 1 });
      expect(worker.threadId).not.toBe(first);
    } finally {
      await worker.close();
    }
  });

  it("times each diff in the worker (onDiffed, for the agent's metrics), not the jobs that only keep content", async () => {
    const timed: number[] = [];
    const timedDiffer = createDiffer({ store, onDiffed: (seconds) => timed.push(seconds) });
    try {
      const p = file('timed.conf');
      await writeFile(p, 'a = 1\n');
      await timedDiffer.remember(p, OPTIONS.maxFileBytes);
      expect(timed).toEqual([]);
      await writeFile(p, 'a = 2\n');
      expect(await timedDiffer.diff(request(p, 'modify'))).toMatchObject({ added: 1, removed: 1 });
      expect(timed).toHaveLength(1);
      expect(timed[0]).toBeGreaterThan(0);
      expect(timed[0]).toBeLessThan(30);
    } finally {
      await timedDiffer.close();
    }
  });

  it('replaces a worker that does not answer within 2 × timeout + grace (watchdog)', async () => {
    const worker = createDiffWorker({ watchdogGraceMs: 0 });
    try {
      // 2 ms is less than a thread takes to start: the watchdog fires first.
      expect(await worker.run(job('a\n', 'b\n', 1))).toMatchObject({ outcome: 'failed', reason: expect.stringMatching(/no answer/) });
      expect(await worker.run(job('a\n', 'b\n', 60_000))).toMatchObject({ outcome: 'patch' });
    } finally {
      await worker.close();
    }
  });
});
