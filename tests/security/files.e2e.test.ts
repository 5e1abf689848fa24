/**
 * Issue 4 item 7 against the whole running system, started under umask 000
 * so that no mode comes from the umask: audit dir 0700 and files 0600,
 * agent state dir 0700 (everything in it private), the recorder never
 * builds a file path from message content, and the agent never follows a
 * symlink out of its roots.
 */
import { lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecorder } from '@fso/audit-recorder';
import { createTopics, eventSchema } from '@fso/common';
import { createTempDir, waitFor } from '../helpers.js';
import { SEC_USERS, observe, readAuditLines, startSecureSystem, tryLogin } from '../securityHarness.js';
import type { SecureSystem } from '../securityHarness.js';

const topics = createTopics();
let sys: SecureSystem;
let outside: { path: string; cleanup: () => Promise<void> };
let previousUmask: number;

beforeAll(async () => {
  previousUmask = process.umask(0o000);
  outside = await createTempDir('fso-security-outside-');
  sys = await startSecureSystem();
});
afterAll(async () => {
  await sys?.close();
  await outside?.cleanup();
  process.umask(previousUmask);
});

/** Every path under `root` (itself included) that group or others may access, with its mode. */
async function openToOthers(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const stats = await lstat(p);
    if (stats.isSymbolicLink()) return;
    if ((stats.mode & 0o077) !== 0) found.push(`${path.relative(root, p) || '.'} ${(stats.mode & 0o777).toString(8)}`);
    if (stats.isDirectory()) for (const name of await readdir(p)) await walk(path.join(p, name));
  };
  await walk(root);
  return found;
}

describe('files, modes and paths', () => {
  it('keeps the audit dir 0700 with 0600 files, and the agent state dir private (under umask 000)', async () => {
    await writeFile(path.join(sys.watched, 'app.conf'), 'password=hunter2-state-dir\n');
    await sys.proveDelivery('modes');
    const login = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.agentB));
    await login.client!.publishAsync(topics.event('agent-b', 'create'), 'not json', { qos: 1 });
    await login.client!.endAsync();
    await waitFor(async () => (await readAuditLines(sys.auditDir, 'rejected')).length > 0, 'a rejected record');
    const auditModes = (await lstat(sys.auditDir)).mode & 0o777;
    const auditOpen = await openToOthers(sys.auditDir);
    const stateDir = path.join(sys.root, 'agent-state');
    const stateOpen = await openToOthers(stateDir);
    observe({
      attack: 'file modes under umask 000: audit dir and files, agent state dir (outbox, baselines, content copies, redaction key)',
      expected: 'audit dir 0700, files 0600; state dir 0700, nothing in it readable by others',
      observed: `audit dir ${auditModes.toString(8)}, ${(await readdir(sys.auditDir)).length} files, open to others: ${auditOpen.join(', ') || 'none'}; state dir ${((await lstat(stateDir)).mode & 0o777).toString(8)}, open to others: ${stateOpen.join(', ') || 'none'}`,
    });
    expect(auditModes).toBe(0o700);
    expect(auditOpen).toEqual([]);
    expect(stateOpen).toEqual([]);
  });

  // HOLE (reported, low): mkdir's mode applies only to a dir it creates, and the recorder does
  // not chmod one that exists (the agent's state dir and content store do), so an audit dir
  // made beforehand 0755 (a package, a volume mount) stays listable by everyone; the files
  // in it are still 0600. Remove `.fails` once the recorder tightens or refuses it.
  it('tightens (or refuses) an audit dir that already exists with mode 0755', async () => {
    const dir = path.join(sys.root, 'audit-preexisting');
    await mkdir(dir, { mode: 0o755 });
    const recorder = await startRecorder({
      brokerUrl: sys.broker.url, dir, clientId: 'audit-recorder-3',
      username: SEC_USERS.recorder.username, passwordFile: sys.passwordFile(SEC_USERS.recorder),
    });
    await recorder.close();
    const mode = (await lstat(dir)).mode & 0o777;
    observe({
      attack: 'audit dir created beforehand with mode 0755',
      expected: 'recorder makes it 0700 (or refuses to start)',
      observed: `HOLE (low): recorder started and left it ${mode.toString(8)} (files inside still 0600)`,
    });
    expect(mode).toBe(0o700);
  });

  it('never builds an audit file path from message content', async () => {
    const marker = 'FORGED-path';
    const at = new Date().toISOString();
    const event = {
      schema: 'fso.event/1', id: `${marker}-1`, agentId: 'agent-b', epoch: '../../../../tmp', seq: 1, type: 'create',
      path: `../../../../${outside.path}/${marker}`, root: '/../..', kind: 'file', size: 1, mtime: at, sha256: null,
      important: false, origin: 'live', observedAt: at, emittedAt: at,
    };
    const login = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.agentB));
    const client = login.client!;
    await client.publishAsync(topics.event('agent-b', 'create'), JSON.stringify(eventSchema.parse(event)), { qos: 1 });
    await client.publishAsync(topics.event('agent-b', 'create'), JSON.stringify({ ...event, id: `${marker}-2`, seq: 2, receivedAt: '../../../../tmp/x' }), { qos: 1 });
    await client.endAsync();
    const reserved = await waitFor(
      async () => (await readAuditLines(sys.auditDir, 'rejected')).find((l) => String(l.payload).includes(`${marker}-2`)),
      'the rejected event with its own receivedAt',
    );
    await waitFor(async () => (await readAuditLines(sys.auditDir, 'events')).find((l) => l.id === `${marker}-1`), 'the traversal-path event, as data');
    const names = await readdir(sys.auditDir);
    const strays = names.filter((n) => !/^(events|diffs|rejected)-\d{4}-\d{2}-\d{2}\.jsonl$/.test(n));
    const outsideNames = await readdir(outside.path);
    observe({
      attack: "agent-b's own events with ../ in path, root and epoch, and one carrying its own receivedAt",
      expected: 'recorded as data or rejected; no file named after message content',
      observed: `traversal strings recorded as plain fields; own receivedAt rejected ("${String(reserved.reason)}"); audit dir holds only ${[...new Set(names.map((n) => n.replace(/\d{4}-\d{2}-\d{2}/, 'DAY')))].join(', ')}; nothing created outside`,
    });
    expect(strays).toEqual([]);
    expect(outsideNames).toEqual([]);
  });

  it('never follows a symlink out of its root: no content, no events from the target', async () => {
    const secret = 'OUTSIDE-SECRET-5c1d';
    const targetDir = path.join(outside.path, 'elsewhere');
    await mkdir(targetDir);
    await writeFile(path.join(outside.path, 'target.conf'), `token=${secret}\n`);
    await symlink(path.join(outside.path, 'target.conf'), path.join(sys.watched, 'link.conf'));
    await symlink(targetDir, path.join(sys.watched, 'linkdir'));
    const events = async (): Promise<Array<Record<string, unknown>>> => (await readAuditLines(sys.auditDir, 'events')).filter((l) => l.record === 'event');
    const link = await waitFor(async () => (await events()).find((l) => l.path === path.join(sys.watched, 'link.conf')), 'the file symlink event');
    await waitFor(async () => (await events()).find((l) => l.path === path.join(sys.watched, 'linkdir')), 'the directory symlink event');
    // Changes in the target, through the link, must not be seen.
    await writeFile(path.join(targetDir, 'planted.conf'), `token=${secret}\n`);
    await writeFile(path.join(outside.path, 'target.conf'), `token=${secret}-changed\n`);
    await sys.proveDelivery('symlinks');
    const all = JSON.stringify([...(await readAuditLines(sys.auditDir, 'events')), ...(await readAuditLines(sys.auditDir, 'diffs'))]);
    const planted = (await events()).filter((l) => String(l.path).includes('planted'));
    const diffOfLink = (await readAuditLines(sys.auditDir, 'diffs')).find((l) => l.path === path.join(sys.watched, 'link.conf'));
    observe({
      attack: 'symlinks in the watched root to a secret file and a directory outside it',
      expected: 'reported as symlinks, never followed: no hash, no content, no events from the target',
      observed: `link.conf: kind ${String(link.kind)}, sha256 ${String(link.sha256)}, diff ${diffOfLink ? `skipped ${String(diffOfLink.skipped)}` : 'none'}; ${planted.length} events from the linked directory; target content in the trail: ${all.includes(secret) ? 'YES' : 'no'}`,
    });
    expect(link).toMatchObject({ kind: 'symlink', sha256: null });
    expect(planted).toEqual([]);
    expect(all).not.toContain(secret);
  });
});

