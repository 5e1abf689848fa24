import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveAuditd, startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import { eventSchema, parseAgentConfig } from '@fso/common';
import { createTempDir, readAuditLines, waitFor } from './helpers.js';
import type { AuditLine } from './helpers.js';

const agentCli = fileURLToPath(new URL('../packages/agent/dist/cli.js', import.meta.url));
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
/** `auditctl -s`, for a failure's message (what the kernel says of its audit daemon). */
const auditStatus = (): string => (spawnSync('/usr/sbin/auditctl', ['-s'], { encoding: 'utf8' }).stdout ?? '').replace(/\n/g, '; ');
/** Linux audit through a live auditd (.ci/run installs and starts it): the pid the kernel names may be a dead daemon's. */
const auditdRuns = isRoot && 'pid' in liveAuditd(spawnSync('/usr/sbin/auditctl', ['-s'], { encoding: 'utf8' }).stdout ?? '');
const addonBuilt = spawnSync(process.execPath, ['-e', "require('./packages/agent/build/Release/fso_fanotify.node')"], { cwd: fileURLToPath(new URL('..', import.meta.url)) }).status === 0;

/** True when both paths are on one file system (fanotify's mark, and so FAN_OPEN_EXEC, covers the watched one's). */
async function sameFileSystem(a: string, b: string): Promise<boolean> {
  return (await stat(a)).dev === (await stat(b)).dev;
}

/** Runs `command` to its end (a real process, so the kernel names it); rejects on a non-zero exit. */
function run(command: string, args: string[], options: { uid?: number; gid?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`))));
  });
}

/** A broker, a recorder and an in-process agent with `who`, watching a directory anyone may write. */
interface WhoStack {
  watched: string;
  auditDir: string;
  agent: Agent;
  /** The first event in the trail that `match`es, waited for. */
  event(match: (e: AuditLine) => boolean, what: string): Promise<AuditLine>;
  close(): Promise<void>;
}

async function startWhoStack(agentId: string, who: 'fanotify' | 'audit'): Promise<WhoStack> {
  const tmp = await createTempDir(`fso-${agentId}-`);
  // nobody must reach into the watched directory and write there.
  await chmod(tmp.path, 0o755);
  const watched = path.join(tmp.path, 'watched');
  await mkdir(watched);
  await chmod(watched, 0o777);
  const auditDir = path.join(tmp.path, 'audit');
  const broker = await startBroker({ port: 0 });
  const recorder = await startRecorder({ brokerUrl: broker.url, dir: auditDir });
  const agent = await startAgent({
    agentId, brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), who, pairWindowMs: 100,
    initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched }] }, 'test'),
  });
  await agent.ready();
  return {
    watched, agent, auditDir,
    event: (match, what) => waitFor(async () => (await readAuditLines(auditDir)).find((l) => l.record === 'event' && match(l)), what, 30_000, 50),
    async close() {
      await agent.close();
      await recorder.close();
      await broker.close();
      await tmp.cleanup();
    },
  };
}

/** How a tree comes to be watched before it is removed. */
const TREES = ['made while watched', 'moved in whole (its directories never seen by the reader)'];

/** Makes a tree of 16 directories and 160 files in the stack's watched directory (`how`), removes it with `rm -rf`, and expects every delete attributed to rm by `source`. */
async function expectRmRfAttributed(stack: WhoStack, how: string, source: 'fanotify' | 'audit'): Promise<void> {
  const { watched } = stack;
  const movedIn = how.startsWith('moved');
  const top = path.join(watched, movedIn ? 'moved-tree' : 'tree');
  const made = movedIn ? path.join(path.dirname(watched), 'unwatched-tree') : top;
  const files: string[] = [];
  for (let a = 0; a < 4; a++) {
    for (let b = 0; b < 4; b++) {
      const dir = path.join(made, `a${a}`, `b${b}`);
      await mkdir(dir, { recursive: true });
      for (let f = 0; f < 10; f++) files.push(path.join(dir, `f${f}.txt`));
    }
  }
  await Promise.all(files.map((f) => writeFile(f, 'x\n')));
  if (movedIn) {
    await run('mv', [made, top]);
    files.forEach((f, i) => (files[i] = top + f.slice(made.length)));
  }
  await waitFor(async () => {
    const created = new Set((await readAuditLines(stack.auditDir)).filter((l) => l.record === 'event' && l.type === 'create').map((l) => l.path));
    return files.every((f) => created.has(f)) || undefined;
  }, 'every create of the tree', 30_000, 100);
  await run('rm', ['-rf', top]);
  // Every file and directory of the tree: each one's delete, whatever order the agent reports them in.
  const dirs = [top, ...[0, 1, 2, 3].flatMap((a) => [path.join(top, `a${a}`), ...[0, 1, 2, 3].map((b) => path.join(top, `a${a}`, `b${b}`))])];
  const expected = new Set([...files, ...dirs]);
  const deleted = await waitFor(async () => {
    const lines = (await readAuditLines(stack.auditDir)).filter((l) => l.record === 'event' && l.type === 'delete' && expected.has(String(l.path)));
    return new Set(lines.map((l) => l.path)).size === expected.size ? lines : undefined;
  }, `the deletes of the tree's ${expected.size} files and directories`, 30_000, 100);
  const unattributed = deleted
    .filter((l) => (l.who as { comm?: string; source?: string } | null)?.comm !== 'rm' || (l.who as { source?: string }).source !== source)
    .map((l) => `${String(l.path)}: ${JSON.stringify(l.who)} ${String(l.whoMissing)}`);
  expect(unattributed, `${unattributed.length} of ${deleted.length} deletes not attributed to rm`).toEqual([]);
  expect(deleted).toHaveLength(expected.size);
}

// The kernel's own answer, on this host, as root: fanotify with a filesystem mark (the CI machine is root).
describe.runIf(isRoot && addonBuilt)('who made a change: fanotify (real processes, real broker, agent and recorder)', () => {
  let stack: WhoStack;
  let watched: string;
  let agent: Agent;
  const event = (match: (e: AuditLine) => boolean, what: string): Promise<AuditLine> => stack.event(match, what);
  beforeAll(async () => {
    stack = await startWhoStack('who-01', 'fanotify');
    ({ watched, agent } = stack);
  });
  afterAll(() => stack?.close());

  it('says so in its status', () => {
    expect(agent.status().who).toEqual({ mode: 'fanotify', source: 'fanotify', reason: null });
  });

  it('a file written by a process running as nobody is attributed to uid 65534 and its executable', async () => {
    const file = path.join(watched, 'by-nobody.txt');
    // The child stays a moment after writing: its /proc entry is there to be read, whatever the load.
    await run(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(file)}, 'x\\n'); setTimeout(() => {}, 300)`], { uid: NOBODY, gid: NOBODY });
    const e = await event((l) => l.path === file && l.type === 'create', 'the create of by-nobody.txt');
    expect(e.who, JSON.stringify(e)).toMatchObject({ uid: NOBODY, user: 'nobody', gid: NOBODY, euid: NOBODY, exe: await realpath(process.execPath), source: 'fanotify' });
    expect(eventSchema.safeParse(e).success).toBe(true);
    expect(e.whoMissing).toBeUndefined();
  });

  it('short-lived processes: sed -i (a name taken over by a rename) and cp', async () => {
    const conf = path.join(watched, 'app.conf');
    await writeFile(conf, 'port=80\n');
    await event((l) => l.path === conf && l.type === 'create', 'the create of app.conf');
    await run('sed', ['-i', 's/80/8080/', conf]);
    const copy = path.join(watched, 'app.conf.bak');
    await run('cp', [conf, copy]);
    const sed = await event((l) => l.path === conf && l.type === 'modify', "sed's modify of app.conf");
    const cp = await event((l) => l.path === copy && l.type === 'create', "cp's create of app.conf.bak");
    for (const [e, exe] of [[sed, '/usr/bin/sed'], [cp, '/usr/bin/cp']] as const) {
      expect(e.who, JSON.stringify(e)).toMatchObject({ uid: 0, user: 'root', source: 'fanotify' });
      // The program is known from its exec (FAN_OPEN_EXEC) when it lives on the marked file system, even if the process is gone.
      const who = e.who as { exe: string | null; comm: string | null };
      if (await sameFileSystem(exe, watched)) expect(who.exe, JSON.stringify(e)).toBe(exe);
      else if (who.exe !== null) expect(who.exe).toBe(exe);
      expect(who.comm ?? path.basename(exe)).toBe(path.basename(exe));
    }
  });

  it('processes of a millisecond: 20 touches run as nobody are attributed to nobody and to touch (the process table and its exec, when /proc has no entry any more)', async () => {
    const files = Array.from({ length: 20 }, (_, i) => path.join(watched, `touched-by-nobody-${i}`));
    for (const file of files) await run('touch', [file], { uid: NOBODY, gid: NOBODY });
    const withExe = await sameFileSystem('/usr/bin/touch', watched);
    for (const file of files) {
      const e = await event((l) => l.path === file && l.type === 'create', `the create of ${path.basename(file)}`);
      expect(e.who, JSON.stringify(e)).toMatchObject({ uid: NOBODY, user: 'nobody', gid: NOBODY, source: 'fanotify' });
      // Its program too, from its exec, where touch lives on the watched file system (else from /proc, if it was still there).
      if (withExe) expect(e.who, JSON.stringify(e)).toMatchObject({ exe: '/usr/bin/touch' });
    }
  });

  it.each(TREES)('rm -rf of a tree %s: every delete, the deepest file to the top directory, is attributed to rm', (how) => expectRmRfAttributed(stack, how, 'fanotify'));

  it('a rename is attributed to the process that renamed it, with both names', async () => {
    const from = path.join(watched, 'old-name.txt');
    const to = path.join(watched, 'new-name.txt');
    await writeFile(from, 'x\n');
    await event((l) => l.path === from && l.type === 'create', 'the create of old-name.txt');
    await run('mv', [from, to]);
    const e = await event((l) => l.path === to && l.type === 'rename', 'the rename to new-name.txt');
    expect(e.oldPath).toBe(from);
    expect(e.who, JSON.stringify(e)).toMatchObject({ uid: 0, source: 'fanotify' });
    // Its name and executable are read at its exec: a mv gone before the reader looked has none (its ids come with its fork).
    expect((e.who as { comm: string | null }).comm ?? 'mv').toBe('mv');
  });

  it('a delete by nobody is attributed to nobody', async () => {
    const file = path.join(watched, 'doomed.txt');
    await writeFile(file, 'x\n');
    await event((l) => l.path === file && l.type === 'create', 'the create of doomed.txt');
    await run(process.execPath, ['-e', `require('fs').unlinkSync(${JSON.stringify(file)}); setTimeout(() => {}, 300)`], { uid: NOBODY, gid: NOBODY });
    const e = await event((l) => l.path === file && l.type === 'delete', 'the delete of doomed.txt');
    expect(e.who, JSON.stringify(e)).toMatchObject({ uid: NOBODY, user: 'nobody', source: 'fanotify' });
  });
});

// Linux audit, through a running auditd (.ci/run installs and starts it): the syscall's own record, so even a process gone at once is named.
describe.runIf(auditdRuns)('who made a change: Linux audit (--who audit; real auditd, real processes)', () => {
  let stack: WhoStack;
  let watched: string;
  let agent: Agent;
  const event = (match: (e: AuditLine) => boolean, what: string): Promise<AuditLine> => stack.event(match, what);
  beforeAll(async () => {
    stack = await startWhoStack('who-audit', 'audit');
    ({ watched, agent } = stack);
    // The watch rule is in the kernel before the watch starts.
    expect(spawnSync('/usr/sbin/auditctl', ['-l'], { encoding: 'utf8' }).stdout).toContain(`-w ${watched} -p wa -k fso-who-audit`);
  });

  afterAll(() => stack?.close());

  it.each(TREES)('rm -rf of a tree %s: every delete is attributed to rm (unlinkat names no directory: the watched ones are known by inode)', (how) => expectRmRfAttributed(stack, how, 'audit'));

  it('names the user of a touch run as nobody, a sed -i and a mv; its rule is gone when the agent stops', async () => {
    expect(agent.status().who).toMatchObject({ mode: 'audit', source: 'audit' });
    const touched = path.join(watched, 'touched-by-nobody');
    await run('touch', [touched], { uid: NOBODY, gid: NOBODY });
    const created = await event((l) => l.path === touched && l.type === 'create', 'the create of touched-by-nobody');
    expect(created.who, `${JSON.stringify(created)}; status ${JSON.stringify(agent.status().who)}; auditctl -s: ${auditStatus()}`).toMatchObject({ uid: NOBODY, user: 'nobody', exe: '/usr/bin/touch', comm: 'touch', source: 'audit' });

    const conf = path.join(watched, 'app.conf');
    await writeFile(conf, 'port=80\n');
    await event((l) => l.path === conf && l.type === 'create', 'the create of app.conf');
    await run('sed', ['-i', 's/80/8080/', conf]);
    const sed = await event((l) => l.path === conf && l.type === 'modify', "sed's modify of app.conf");
    expect(sed.who, JSON.stringify(sed)).toMatchObject({ uid: 0, exe: '/usr/bin/sed', source: 'audit' });

    const moved = path.join(watched, 'app.conf.old');
    await run('mv', [conf, moved]);
    const mv = await event((l) => l.path === moved && l.type === 'rename', 'the rename to app.conf.old');
    expect(mv.who, JSON.stringify(mv)).toMatchObject({ uid: 0, exe: '/usr/bin/mv', source: 'audit' });

    await agent.close();
    expect(spawnSync('/usr/sbin/auditctl', ['-l'], { encoding: 'utf8' }).stdout).not.toContain(watched);
  });
});

/**
 * Runs the fso-agent bin on a fresh broker and recorder with `args` and
 * `spawnOptions` (as nobody, another env) until one live event of a written
 * file is in the trail; returns it and what the agent logged.
 */
async function liveEventOfAgent(extraArgs: string[], spawnOptions: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv }): Promise<{ event: AuditLine; logs: string; refused: ReturnType<typeof spawnSync> }> {
  const tmp = await createTempDir('fso-who-cli-');
  const broker = await startBroker({ port: 0 });
  const auditDir = path.join(tmp.path, 'audit');
  const recorder = await startRecorder({ brokerUrl: broker.url, dir: auditDir });
  try {
    await chmod(tmp.path, 0o777);
    const watched = path.join(tmp.path, 'watched');
    await mkdir(watched);
    await chmod(watched, 0o777);
    const args = [agentCli, '--id', 'who-cli', '--broker', broker.url, '--watch', watched, '--state-dir', path.join(tmp.path, 'state'), ...extraArgs];
    const refused = spawnSync(process.execPath, [...args, '--who', 'fanotify'], { ...spawnOptions, encoding: 'utf8', timeout: 30_000 });
    const child = spawn(process.execPath, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    try {
      const file = path.join(watched, 'a.txt');
      // Written until the agent's watch is up (its first scan may run after the first write).
      const event = await waitFor(async () => {
        await writeFile(file, `${Date.now()}\n`);
        return (await readAuditLines(auditDir)).find((l) => l.record === 'event' && l.path === file && l.origin === 'live');
      }, 'a live event of a.txt from the agent', 30_000, 200);
      return { event, logs, refused };
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  } finally {
    await recorder.close();
    await broker.close();
    await tmp.cleanup();
  }
}

describe('who-data where the host does not allow it: events flow with who: null and the reason', () => {
  it.runIf(isRoot)('an agent running as nobody says why once (EPERM), its events carry whoMissing not-root; --who fanotify refuses to start', async () => {
    const { event, logs, refused } = await liveEventOfAgent([], { uid: NOBODY, gid: NOBODY });
    expect(refused.status, String(refused.stderr)).not.toBe(0);
    expect(String(refused.stderr)).toMatch(/--who fanotify: fanotify needs root/);
    expect(event.who).toBeNull();
    expect(event.whoMissing).toBe('not-root');
    expect(logs.match(/who-data unavailable/g)?.length, logs).toBe(1);
    expect(logs).toMatch(/EPERM|Operation not permitted/);
  });

  it('an agent whose addon cannot load (not built, another Node.js) runs: auto falls back to audit where auditd runs, else says why once (whoMissing unsupported)', async () => {
    const { event, logs, refused } = await liveEventOfAgent([], { env: { ...process.env, FSO_FANOTIFY_ADDON: '/nonexistent/fso_fanotify.node' } });
    expect(refused.status).not.toBe(0);
    expect(String(refused.stderr)).toMatch(/--who fanotify: unavailable \(the addon did not load: Cannot find module/);
    if (auditdRuns) {
      expect(event.who, `${JSON.stringify(event)}; auditctl -s: ${auditStatus()}; the agent's log: ${logs}`).toMatchObject({ uid: 0, source: 'audit' });
    } else {
      expect(event.who).toBeNull();
      expect(event.whoMissing).toBe('unsupported');
      expect(logs.match(/who-data unavailable/g)?.length, logs).toBe(1);
      expect(logs).toMatch(/the addon did not load/);
    }
  });

  it('an unknown --who mode is refused, naming the modes', async () => {
    const bad = spawnSync(process.execPath, [agentCli, '--id', 'x', '--watch', '/tmp', '--who', 'ebpf'], { encoding: 'utf8', timeout: 30_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--who.*"ebpf" is not a mode: use auto, fanotify, audit, off/);
  });
});
