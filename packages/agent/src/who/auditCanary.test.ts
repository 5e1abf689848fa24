import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFile, chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditReader, liveAuditd } from './auditReader.js';
import type { AuditReader } from './auditReader.js';
import type { WhoRecord } from './whoIndex.js';

/**
 * The audit reader's waits, with the test as auditd: a log the test writes
 * in auditd's format, and an `auditctl` that names a live process called
 * auditd (a copy of sleep). The real auditd is in tests/who.e2e; here the
 * test decides when (and whether) a record reaches the log.
 */
let dir: string;
let daemon: ChildProcess;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fso-audit-canary-'));
  await copyFile('/bin/sleep', path.join(dir, 'auditd'));
  daemon = spawn(path.join(dir, 'auditd'), ['600'], { stdio: 'ignore' });
  await new Promise((resolve, reject) => daemon.once('spawn', resolve).once('error', reject));
});

afterAll(async () => {
  daemon?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** An `auditctl` that reports `pid` for -s and accepts rules. */
async function fakeAuditctl(name: string, pid: number): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\nif [ "$1" = -s ]; then printf 'enabled 1\\npid ${pid}\\n'; fi\nexit 0\n`);
  await chmod(file, 0o755);
  return file;
}

let serial = 100;
/** The records auditd writes for a write to `name` by `pid` (log_format ENRICHED, as tests/who.e2e's auditd wrote them). */
function writeRecords(name: string, pid: number, key: string): string {
  serial += 1;
  const at = `${(Date.now() / 1000).toFixed(3)}:${serial}`;
  return [
    `type=SYSCALL msg=audit(${at}): arch=c000003e syscall=257 success=yes exit=3 items=2 ppid=1 pid=${pid} auid=4294967295 uid=0 gid=0 euid=0 comm="node" exe="/usr/bin/node" key="${key}"\x1dARCH=x86_64 SYSCALL=openat`,
    `type=CWD msg=audit(${at}): cwd="/"`,
    `type=PATH msg=audit(${at}): item=0 name="${path.dirname(name)}/" inode=1 nametype=PARENT`,
    `type=PATH msg=audit(${at}): item=1 name="${name}" inode=2 nametype=NORMAL`,
    `type=PROCTITLE msg=audit(${at}): proctitle="node"`,
    '',
  ].join('\n');
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

interface Run {
  reader: AuditReader;
  batches: Array<{ records: WhoRecord[]; caughtUp: number | null }>;
  health: Array<string | null>;
  log: string;
  canary: string;
  root: string;
}

async function startReader(name: string, canaryTimeoutMs: number): Promise<Run> {
  const log = path.join(dir, `${name}.log`);
  await writeFile(log, 'type=DAEMON_START msg=audit(1.000:1): op=start\n');
  const canary = path.join(dir, name, 'who-audit.canary');
  const root = path.join(dir, `${name}-root`);
  const health: Array<string | null> = [];
  const reader = createAuditReader({
    key: 'fso-t', logFile: log, auditctl: await fakeAuditctl(`${name}-auditctl`, daemon.pid as number), canaryFile: canary, canaryTimeoutMs, graceMs: 5, pollMs: 20,
    onHealth: (problem) => health.push(problem),
  });
  const batches: Run['batches'] = [];
  const handle = reader.open((records, caughtUp) => batches.push({ records, caughtUp }));
  await reader.start();
  reader.mark(handle, root);
  reader.setRoots(handle, [root]);
  return { reader, batches, health, log, canary, root };
}

/** Waits until the reader has written its canary (the wait's write), returns its content. */
const canaryWritten = (run: Run, after: string): Promise<string> =>
  until('the canary written', async () => {
    const text = await readFile(run.canary, 'utf8');
    return text !== '' && text !== after ? text : undefined;
  });

describe('the audit reader waits for auditd by a canary of its own, not by a guess', () => {
  it('a wait is answered once the canary written after it is in the log, whatever auditd took, never before', async () => {
    const run = await startReader('slow', 60_000);
    try {
      const asked = Date.now();
      run.reader.sync({});
      await canaryWritten(run, '');
      // auditd is slow: the writer's record is in the log, the canary's not yet (another process's write to it is not
      // the canary). The reader reads them and still waits.
      await appendFile(run.log, writeRecords(run.canary, process.pid + 1, 'fso-t') + writeRecords(path.join(run.root, 'a.txt'), 4242, 'fso-t'));
      await until('the record of a.txt read', () => run.batches.find((b) => b.records.some((r) => r.path.endsWith('a.txt'))));
      expect(run.batches.every((b) => b.caughtUp === null)).toBe(true);
      // Then the canary: the wait is over, as of when it was asked.
      await appendFile(run.log, writeRecords(run.canary, process.pid, 'fso-t'));
      const answered = await until('caughtUp', () => run.batches.find((b) => b.caughtUp !== null));
      expect(answered.caughtUp).toBeGreaterThanOrEqual(asked);
      expect(answered.caughtUp).toBeLessThanOrEqual(Date.now());
      expect(run.batches.flatMap((b) => b.records.map((r) => r.path))).toEqual([path.join(run.root, 'a.txt')]);
      expect(run.health).toEqual([]);
    } finally {
      run.reader.close({});
    }
  });

  it('a canary that never comes: said once, waits answered at once (no-record) while auditd is away; its return is said too', async () => {
    const run = await startReader('away', 300);
    try {
      run.reader.sync({});
      const first = await canaryWritten(run, '');
      const problem = await until('the problem said', () => run.health[0]);
      expect(problem).toMatch(new RegExp(`no record of this agent's canary .* within 300 ms: auditd \\(pid ${daemon.pid}\\) runs, but is suspended`));
      expect(run.reader.problem()).toBe(problem);
      // The waits were answered (a read of the log in flight may add a batch without caughtUp after it).
      expect(run.batches.some((b) => b.caughtUp !== null && b.caughtUp > 0)).toBe(true);
      // While away: a wait is answered in the call itself, and a canary goes with it.
      const before = run.batches.length;
      const asked = Date.now();
      run.reader.sync({});
      expect(run.batches.length).toBe(before + 1);
      expect(run.batches.at(-1)?.caughtUp).toBeGreaterThanOrEqual(asked);
      await canaryWritten(run, first);
      // auditd is back: the canary's record comes, the problem is gone, said once.
      await appendFile(run.log, writeRecords(run.canary, process.pid, 'fso-t'));
      await until('auditd back', () => (run.health.length === 2 ? true : undefined));
      expect(run.health).toEqual([problem, null]);
      expect(run.reader.problem()).toBeNull();
    } finally {
      run.reader.close({});
    }
  });
});

describe('a canary that cannot be written', () => {
  it('is said at once with why (not as auditd silent 60 s later), and the waits are answered', async () => {
    const run = await startReader('unwritable', 60_000);
    try {
      // Its directory gone under it (the agent's state dir removed while it runs).
      await rm(path.dirname(run.canary), { recursive: true, force: true });
      run.reader.sync({});
      const problem = await until('the problem said', () => run.health[0], 10_000);
      expect(problem).toMatch(/^cannot write this agent's canary .*ENOENT/);
      expect(run.reader.problem()).toBe(problem);
      expect(run.batches.some((b) => b.caughtUp !== null)).toBe(true);
    } finally {
      run.reader.close({});
    }
  });
});

describe('a live auditd, not the pid the kernel names', () => {
  it('a pid that is gone, or not auditd, or auditd dead is refused with the reason; a live auditd is taken', async () => {
    expect(liveAuditd('enabled 1\npid 0\n')).toEqual({ reason: 'auditd is not running (auditctl -s: no daemon pid)' });
    const gone = spawn('/bin/true');
    await new Promise((resolve) => gone.once('exit', resolve));
    expect(liveAuditd(`pid ${gone.pid}\n`)).toEqual({ reason: `auditd is not running (the kernel names pid ${gone.pid}, which is gone)` });
    expect(liveAuditd(`pid ${process.pid}\n`)).toMatchObject({ reason: expect.stringContaining(`the kernel names pid ${process.pid}, which is `) });
    expect(liveAuditd(`pid ${process.pid}\n`)).not.toMatchObject({ reason: expect.stringContaining('gone') });
    expect(liveAuditd(`pid ${daemon.pid}\n`)).toEqual({ pid: daemon.pid });
    const stale = createAuditReader({ key: 'fso-t', logFile: path.join(dir, 'none.log'), auditctl: await fakeAuditctl('stale-auditctl', gone.pid as number) });
    await expect(stale.start()).rejects.toThrow(/the kernel names pid \d+, which is gone/);
  });
});
