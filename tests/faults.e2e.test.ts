/**
 * Fault-injection tests (issue 3, item 6): the broker, the recorder and the
 * agent run as real child processes from their built bins, and each test
 * kills, stops or starves one of them mid-stream, then checks the audit
 * files against what the test itself did to the watched folder: 0 lost,
 * 0 duplicated (by id, by agent/epoch/seq, and by path), `fso-audit verify`
 * intact. Each prints a `[figures]` line; docs/reliability.md tabulates them.
 *
 * Needs `pnpm build` first (the tests run dist/cli.js). The disk-full test
 * mounts a tmpfs and so needs root (it fails, saying why, without it).
 */
import { execFile } from 'node:child_process';
import { appendFile, chmod, cp, mkdir, readFile, rename, rm, statfs, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ackSchema, createTopics } from '@fso/common';
import {
  assertBuilt,
  countBy,
  createFiles,
  createWhileKilling,
  describeTally,
  eventsFileOf,
  FAULT_TEST_TIMEOUT_MS,
  fileNames,
  freePort,
  killAll,
  readAudit,
  readEvents,
  recoverMs,
  reportFigure,
  resendRounds,
  saveLogs,
  startAgentProcess,
  startBrokerProcess,
  startRecorderProcess,
  tally,
  verify,
  waitForAll,
  waitForExit,
  waitForSettled,
} from './faultHarness.js';
import type { Daemon, ExpectedChange, Tally } from './faultHarness.js';
import { createCollector, createTempDir, readAuditLines } from './helpers.js';

const run = promisify(execFile);
const AGENT = 'fault-01';

/** The expected creates of `files`. */
const creates = (files: readonly string[]): ExpectedChange[] => files.map((p) => ({ type: 'create', path: p }));

/** 0 lost, 0 duplicated by id, by seq and by path, nothing unexpected; the tally in the message otherwise. */
function expectExact(t: Tally): void {
  const summary = describeTally(t);
  expect(t.lost, summary).toHaveLength(0);
  expect(t.duplicatedById, summary).toBe(0);
  expect(t.duplicatedBySeq, summary).toBe(0);
  expect(t.duplicatedByPath, summary).toHaveLength(0);
  expect(t.unexpected, summary).toHaveLength(0);
  expect(t.gaps, summary).toHaveLength(0);
}

const duplicates = (t: Tally): number => t.duplicatedById + t.duplicatedByPath.reduce((sum, [, n]) => sum + n - 1, 0);

/** The counts of a tally as a figure reports them. */
const counts = (t: Tally): Record<'expected' | 'lost' | 'duplicated' | 'contentModifies' | 'sameContentModifies', number> => ({
  expected: t.expected, lost: t.lost.length, duplicated: duplicates(t),
  contentModifies: t.contentModifies.length, sameContentModifies: t.sameContentModifies.length,
});

describe('fault injection on real processes (broker, recorder, agent bins)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let watched: string;
  let stateDir: string;
  let auditDir: string;
  let dataDir: string;
  let port: number;
  let brokerUrl: string;
  const mounts: string[] = [];

  /** Mounts a `size` tmpfs on `dir` (root only); unmounted in afterEach. Fails, saying why, where it cannot. */
  const mountTmpfs = async (dir: string, size: string): Promise<void> => {
    try {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
    } catch (err) {
      const reason = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
      throw new Error(
        `cannot mount a ${size} tmpfs on ${dir}: ${reason}. The disk-full test needs root (CAP_SYS_ADMIN) to mount a ` +
          'size-limited file system; a loop-device file needs the same right. Run the fault tests as root (e.g. in the dev container).',
      );
    }
    mounts.push(dir);
  };
  const unmount = async (dir: string): Promise<void> => {
    await run('umount', [dir]).catch(() => run('umount', ['-l', dir]));
  };

  beforeAll(() => assertBuilt());
  beforeEach(async () => {
    tmp = await createTempDir('fso-fault-');
    watched = path.join(tmp.path, 'watched');
    stateDir = path.join(tmp.path, 'state');
    auditDir = path.join(tmp.path, 'audit');
    dataDir = path.join(tmp.path, 'broker-data');
    await mkdir(watched);
    port = await freePort();
    brokerUrl = `mqtt://127.0.0.1:${port}`;
  });
  afterEach(async (context) => {
    await killAll();
    for (const dir of mounts.splice(0)) await unmount(dir);
    // A failed run keeps its dirs and the daemons' logs: the evidence of what went wrong.
    const keep = context.task.result?.state === 'fail' || Boolean(process.env.FSO_FAULT_KEEP);
    await saveLogs(keep ? path.join(tmp.path, 'logs') : undefined);
    if (keep) process.stdout.write(`[kept] ${tmp.path} (daemon logs in logs/)\n`);
    else await tmp.cleanup();
  });

  /**
   * The tally once the trail has settled (every expected change is there already):
   * late resends and queued copies have arrived, so a duplicate would show.
   */
  const settledTally = async (expected: readonly ExpectedChange[]): Promise<Tally> => {
    await waitForSettled({ dir: auditDir, brokerUrl, agentId: AGENT });
    return tally(auditDir, expected);
  };

  /** Broker, recorder and agent as child processes; the agent's first start records an empty baseline. */
  const startStack = async (): Promise<{ broker: Daemon; recorder: Daemon; agent: Daemon }> => {
    const broker = await startBrokerProcess({ port, dataDir });
    const recorder = await startRecorderProcess({ dir: auditDir, brokerUrl });
    const agent = await startAgentProcess({ id: AGENT, watch: watched, stateDir, brokerUrl });
    return { broker, recorder, agent };
  };

  it('a 10,000-file burst: every create recorded exactly once', async () => {
    const { agent } = await startStack();
    const files = fileNames(watched, 'burst', 10_000);
    const started = Date.now();
    await createFiles(files, { chunk: 500 });
    const written = Date.now();
    await waitForAll(auditDir, creates(files), '10,000 creates in the audit files');
    const done = Date.now();
    const t = await settledTally(creates(files));
    // The agent runs with its default --who auto: as root, fanotify names this test's own process for every create.
    const live = (await readAuditLines(auditDir)).filter((l) => l.record === 'event' && String(l.path).includes('/burst-'));
    const attributed = live.filter((l) => (l.who as { pid?: number } | null | undefined)?.pid === process.pid).length;
    reportFigure({
      fault: '10,000-file burst', behaviour: 'all creates recorded once', ...counts(t), recoverMs: null,
      writtenMs: written - started, allRecordedMs: done - started, resendRounds: resendRounds(agent), whoAttributed: attributed,
    });
    expectExact(t);
    if (process.getuid?.() === 0) expect(attributed, 'creates attributed to the writing process').toBe(live.length);
    else expect(live.every((l) => l.who === null && l.whoMissing === 'not-root')).toBe(true);
    expect((await verify(auditDir)).code).toBe(0);
  }, FAULT_TEST_TIMEOUT_MS);

  it('recorder SIGKILLed mid-stream, restarted on its dir: every change once, torn tail repaired, verify intact', async () => {
    const { agent, recorder } = await startStack();
    const files = fileNames(watched, 'rk', 3000);
    const killedAtRecords = await createWhileKilling(files, recorder, auditDir);
    expect(killedAtRecords, 'the recorder was killed while records were arriving').toBeLessThan(files.length);
    // Whether SIGKILL cut a write in half is luck; a torn last line is made certain here.
    const eventsFile = await eventsFileOf(auditDir);
    await appendFile(eventsFile, '{"schema":"fso.event/1","id":"torn-by-a-cras');
    const broken = await verify(auditDir);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/incomplete last line/);

    const restarted = await startRecorderProcess({ dir: auditDir, brokerUrl });
    await restarted.waitForLog((l) => l.msg?.startsWith('repaired a torn tail') === true, 'the torn tail repair');
    await waitForAll(auditDir, creates(files), '3,000 creates after the recorder restart', 60_000);
    const t = await settledTally(creates(files));
    reportFigure({
      fault: 'recorder SIGKILL mid-stream', behaviour: 'restart repaired the torn tail; broker queue + agent resend filled the rest',
      ...counts(t), recoverMs: recoverMs(t, restarted),
      recordsAtKill: killedAtRecords, resendRounds: resendRounds(agent),
    });
    expectExact(t);
    const intact = await verify(auditDir);
    expect(intact.code, intact.stderr).toBe(0);
  }, FAULT_TEST_TIMEOUT_MS);

  it('broker SIGKILLed mid-stream, restarted on its data dir and port: 0 lost, 0 duplicated', async () => {
    const { agent, broker } = await startStack();
    const files = fileNames(watched, 'bk', 3000);
    const killedAtRecords = await createWhileKilling(files, broker, auditDir);
    expect(killedAtRecords, 'the broker was killed while records were arriving').toBeLessThan(files.length);
    const restarted = await startBrokerProcess({ port, dataDir });
    await waitForAll(auditDir, creates(files), '3,000 creates after the broker restart', 60_000);
    const t = await settledTally(creates(files));
    reportFigure({
      fault: 'broker SIGKILL mid-stream', behaviour: 'clients reconnected; recorder session kept in --data-dir; agent resent its outbox',
      ...counts(t), recoverMs: recoverMs(t, restarted),
      recordsAtKill: killedAtRecords, resendRounds: resendRounds(agent),
    });
    expectExact(t);
    expect((await verify(auditDir)).code).toBe(0);
  }, FAULT_TEST_TIMEOUT_MS);

  it('agent SIGKILLed mid-burst, restarted on its state dir: 0 lost, each path created once', async () => {
    const { agent } = await startStack();
    const files = fileNames(watched, 'ak', 3000);
    const killedAtRecords = await createWhileKilling(files, agent, auditDir);
    expect(killedAtRecords, 'the agent was killed while records were arriving').toBeLessThan(files.length);
    // The state the crash left, for the evidence should this test fail.
    await cp(stateDir, path.join(tmp.path, 'state-at-kill'), { recursive: true });
    const restarted = await startAgentProcess({ id: AGENT, watch: watched, stateDir, brokerUrl });
    // Every path must arrive; then the agent's outbox must drain, so late duplicates are in the files too.
    await waitForAll(auditDir, creates(files), '3,000 creates after the agent restart', 60_000);
    const t = await settledTally(creates(files));
    const origins = countBy(await readEvents(auditDir), (e) => `${String(e.type)}/${String(e.origin)}`);
    reportFigure({
      fault: 'agent SIGKILL mid-burst', behaviour: 'outbox resent; start-up scan reported files made while it was down',
      ...counts(t), recoverMs: recoverMs(t, restarted),
      recordsAtKill: killedAtRecords, duplicatedByPath: t.duplicatedByPath.length, origins,
    });
    expectExact(t);
  }, FAULT_TEST_TIMEOUT_MS);

  it('agent stopped (SIGTERM) while files change, then started: each offline change once, origin "scan", nothing for unchanged files', async () => {
    const keep = fileNames(watched, 'keep', 100);
    const modified = fileNames(watched, 'mod', 20);
    const deleted = fileNames(watched, 'del', 20);
    const renamed = fileNames(watched, 'ren', 20);
    await createFiles([...keep, ...modified, ...deleted, ...renamed]);
    const { agent } = await startStack();
    // The first start records the 160 files silently; a live change proves the agent is publishing.
    const before = path.join(watched, 'sentinel-before.txt');
    await writeFile(before, 'live');
    await waitForAll(auditDir, [{ type: 'create', path: before }], 'the live sentinel');

    // Files created while SIGTERM arrives: each is reported once, live or by the next start's scan.
    const racing = fileNames(watched, 'race', 200);
    const racingDone = createFiles(racing, { chunk: 10, pauseMs: 5 });
    const exit = await agent.kill('SIGTERM');
    await racingDone;
    expect(exit, agent.output().slice(-2000)).toEqual({ code: 0, signal: null });

    const created = fileNames(watched, 'new', 20);
    await createFiles(created);
    for (const f of modified) await appendFile(f, 'changed while the agent was down\n');
    for (const f of deleted) await rm(f);
    const renames = renamed.map((f) => ({ from: f, to: f.replace('/ren-', '/renamed-') }));
    for (const { from, to } of renames) await rename(from, to);
    const offline: ExpectedChange[] = [
      ...creates(created),
      ...modified.map((p): ExpectedChange => ({ type: 'modify', path: p })),
      ...deleted.map((p): ExpectedChange => ({ type: 'delete', path: p })),
      ...renames.map(({ from, to }): ExpectedChange => ({ type: 'rename', path: to, oldPath: from })),
    ];

    const restarted = await startAgentProcess({ id: AGENT, watch: watched, stateDir, brokerUrl });
    const after = path.join(watched, 'sentinel-after.txt');
    await writeFile(after, 'live');
    const expected = [...offline, ...creates(racing), { type: 'create', path: before }, { type: 'create', path: after }] as ExpectedChange[];
    await waitForAll(auditDir, expected, 'every offline change and the sentinels', 60_000);
    const t = await settledTally(expected);
    const events = await readEvents(auditDir);
    const offlineKeys = new Set(offline.map((c) => `${c.type} ${c.path}`));
    const offlineEvents = events.filter((e) => offlineKeys.has(`${String(e.type)} ${String(e.path)}`));
    reportFigure({
      fault: 'agent stopped (SIGTERM), files changed, agent started', behaviour: 'start-up scan against the saved baseline',
      ...counts(t), recoverMs: recoverMs(t, restarted),
      offlineChanges: offline.length, racingCreates: racing.length,
      racingOrigins: countBy(events.filter((e) => racing.includes(String(e.path))), (e) => String(e.origin)),
    });
    expectExact(t);
    expect(offlineEvents.map((e) => e.origin)).toEqual(offline.map(() => 'scan'));
    expect(events.filter((e) => keep.includes(String(e.path)))).toEqual([]);
  }, FAULT_TEST_TIMEOUT_MS);

  it('inotify queue overflow (agent SIGSTOPped past fs.inotify.max_queued_events): a watcher-overflow gap record, then every missed file by rescan, once', async () => {
    const maxQueued = Number.parseInt((await readFile('/proc/sys/fs/inotify/max_queued_events', 'utf8')).trim(), 10);
    expect(maxQueued, 'this test needs Linux inotify').toBeGreaterThan(0);
    const { agent } = await startStack();
    const churn = fileNames(watched, 'churn', 2);
    // The dropped creates go into a folder of their own: no notification of it survives, so
    // chokidar has no reason to read it again (a surviving one makes it re-read the folder).
    const quiet = path.join(watched, 'quiet');
    await mkdir(quiet);
    await createFiles(churn);
    await waitForAll(auditDir, [...creates(churn), { type: 'create', path: quiet }], 'the churn files');
    // A stopped agent reads nothing: the kernel queues notifications until the queue is
    // full, then drops the rest. Alternating chmods of two files are never merged.
    process.kill(agent.pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    let resumed = false;
    try {
      for (let i = 0; i < maxQueued + 1000; i += 1) await chmod(churn[i % 2] as string, i % 4 < 2 ? 0o600 : 0o644);
      // The queue is full now: these creates are never notified.
      const missed = fileNames(quiet, 'missed', 50);
      await createFiles(missed);
      // A folder made inside the window: chokidar never heard of it, so it watches nothing in it.
      const unseenDir = path.join(quiet, 'made-while-blind');
      await mkdir(unseenDir);
      // Created and deleted inside the window: no trace can be recovered (that is what the gap says).
      await writeFile(path.join(quiet, 'ephemeral.txt'), 'gone before anyone looked');
      await rm(path.join(quiet, 'ephemeral.txt'));
      process.kill(agent.pid, 'SIGCONT');
      resumed = true;
      const resumedAt = Date.now();
      const expected: ExpectedChange[] = [...creates(churn), { type: 'create', path: quiet }, ...creates(missed), { type: 'create', path: unseenDir }];
      await waitForAll(auditDir, expected, 'the 50 creates the kernel dropped', 60_000);
      const recoveredAt = Date.now();
      // After the rescan the new folder is watched live like any other.
      const later = path.join(unseenDir, 'later.txt');
      await writeFile(later, 'seen live');
      expected.push({ type: 'create', path: later });
      await waitForAll(auditDir, expected, 'a create inside the folder made while the watcher was blind');
      const t = await settledTally(expected);
      expect(t.lost, describeTally(t)).toHaveLength(0);
      expect(t.duplicatedById + t.duplicatedBySeq, describeTally(t)).toBe(0);
      expect(t.duplicatedByPath, describeTally(t)).toHaveLength(0);
      expect(t.unexpected, describeTally(t)).toHaveLength(0);
      const events = await readEvents(auditDir);
      // The kernel really dropped them: only the rescan found them.
      for (const p of [...missed, unseenDir]) expect(events.find((e) => e.path === p)?.origin, p).toBe('scan');
      expect(events.find((e) => e.path === later)?.origin).toBe('live');
      expect(t.gaps).toHaveLength(1);
      const gap = t.gaps[0] as Record<string, unknown>;
      expect(gap).toMatchObject({ schema: 'fso.gap/1', reason: 'watcher-overflow', roots: [watched], agentId: AGENT, topic: `fso/agents/${AGENT}/gaps` });
      expect(gap.notifications as number).toBeGreaterThanOrEqual(Math.floor(maxQueued / 2));
      expect(Date.parse(gap.since as string)).toBeLessThanOrEqual(stoppedAt);
      expect(Date.parse(gap.until as string)).toBeGreaterThanOrEqual(resumedAt);
      // The gap comes before the rescan's events, and its seq is one of the agent's.
      const gapLine = (await readAudit(auditDir)).findIndex((l) => l.record === 'gap');
      const firstMissed = (await readAudit(auditDir)).findIndex((l) => l.record === 'event' && String(l.path).includes('missed-'));
      expect(gapLine).toBeLessThan(firstMissed);
      expect(agent.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('inotify queue overflowed'))).toBe(true);
      // The status says so too (the recorder keeps every status it receives).
      const statuses = (await readAudit(auditDir)).filter((l) => l.record === 'status');
      expect(statuses.some((l) => (l.inotify as { overflows?: number } | undefined)?.overflows === 1), 'a status with inotify.overflows 1').toBe(true);
      expect((await verify(auditDir)).code).toBe(0);
      reportFigure({
        fault: 'inotify queue overflow (agent stopped while > max_queued_events notifications)',
        behaviour: `gap record (watcher-overflow, ${String(gap.notifications)} notifications at once), rescan reported the 50 dropped creates`,
        expected: expected.length, lost: t.lost.length, duplicated: duplicates(t), recoverMs: recoveredAt - resumedAt,
      });
    } finally {
      if (!resumed) process.kill(agent.pid, 'SIGCONT');
    }
  }, FAULT_TEST_TIMEOUT_MS);

  it('audit disk full (2 MiB tmpfs): the recorder exits non-zero, never acks what it could not write; space freed and restarted: 0 lost, 0 duplicated', async () => {
    await mkdir(auditDir);
    await mountTmpfs(auditDir, '2m');
    const { agent, recorder } = await startStack();
    const acks = await createCollector(brokerUrl, createTopics().ack(AGENT));
    try {
      // Leave the recorder ~150 KiB: a few hundred records, then ENOSPC.
      const filler = path.join(auditDir, 'filler.bin');
      const { bavail, bsize } = await statfs(auditDir);
      await writeFile(filler, Buffer.alloc(Math.max(0, bavail * bsize - 150 * 1024)));
      const files = fileNames(watched, 'full', 1500);
      await createFiles(files, { chunk: 100 });
      const exit = await waitForExit(recorder, 'it should stop on ENOSPC', async () => `${(await readEvents(auditDir)).length} records`);
      expect(exit.code, recorder.output().slice(-2000)).toBe(1);
      expect(recorder.output()).toMatch(/ENOSPC/);

      // Every seq an ack covered is in the files (complete lines): nothing acked was left unwritten.
      const written = await readEvents(auditDir);
      const epoch = String(written.find((e) => e.agentId === AGENT)?.epoch);
      const seqs = new Set(written.filter((e) => e.epoch === epoch).map((e) => Number(e.seq)));
      // The acks seen live, and the one the broker retained last (a fresh subscription gets it).
      const retained = await createCollector(brokerUrl, createTopics().ack(AGENT));
      await retained.waitFor(() => true, 'the retained ack').finally(() => retained.close());
      const ackSeqs = [...acks.messages, ...retained.messages]
        .map((m) => ackSchema.parse(m.json))
        .filter((a) => a.epoch === epoch)
        .map((a) => a.seq);
      const maxAck = Math.max(0, ...ackSeqs);
      const unwrittenButAcked = Array.from({ length: maxAck }, (_, i) => i + 1).filter((seq) => !seqs.has(seq));
      expect(unwrittenButAcked, `acked up to ${maxAck}`).toEqual([]);
      expect(seqs.size, 'the disk filled before every record was written').toBeLessThan(files.length);
      expect(maxAck).toBeLessThan(files.length);

      await rm(filler);
      const restarted = await startRecorderProcess({ dir: auditDir, brokerUrl });
      await waitForAll(auditDir, creates(files), '1,500 creates after space was freed', 60_000);
      const t = await settledTally(creates(files));
      reportFigure({
        fault: 'audit disk full (tmpfs), then space freed', behaviour: 'recorder exited 1 on ENOSPC, acking nothing it had not written; restart repaired the tail; agent resent',
        ...counts(t), recoverMs: recoverMs(t, restarted),
        recordsWhenFull: seqs.size, maxAckWhenFull: maxAck, resendRounds: resendRounds(agent),
        tornTailRepaired: restarted.logs().some((l) => l.msg?.startsWith('repaired a torn tail') === true),
      });
      expectExact(t);
      const verdict = await verify(auditDir);
      expect(verdict.code, verdict.stderr).toBe(0);
    } finally {
      await acks.close();
    }
  }, FAULT_TEST_TIMEOUT_MS);

  it('verify on a real trail: an edited, a deleted and a swapped line each exit 1 naming the file and line', async () => {
    const { agent, recorder } = await startStack();
    const files = fileNames(watched, 'tamper', 30);
    await createFiles(files);
    await waitForAll(auditDir, creates(files), '30 creates');
    await agent.kill('SIGTERM');
    expect((await recorder.kill('SIGTERM')).code).toBe(0);
    const intact = await verify(auditDir);
    expect(intact.code, intact.stderr).toBe(0);
    expect(intact.stdout).toMatch(/audit trail intact/);

    const file = await eventsFileOf(auditDir);
    const name = path.basename(file);
    const lines = (await readFile(file, 'utf8')).split('\n').slice(0, -1);
    const target = files[10] as string;
    const index = lines.findIndex((l) => l.includes(`"path":${JSON.stringify(target)}`));
    expect(index, 'the create of tamper-10.txt is a line of the trail').toBeGreaterThan(0);
    expect(index + 1).toBeLessThan(lines.length);
    const lineNo = index + 1;
    const tampered = async (label: string, edit: (copy: string[]) => string[]): Promise<{ code: number; stderr: string }> => {
      const dir = path.join(tmp.path, `tampered-${label}`);
      await cp(auditDir, dir, { recursive: true });
      await writeFile(path.join(dir, name), `${edit([...lines]).join('\n')}\n`);
      return verify(dir);
    };
    const edited = await tampered('edited', (copy) => {
      copy[index] = (copy[index] as string).replace('tamper-10.txt', 'tamper-99.txt');
      return copy;
    });
    const deleted = await tampered('deleted', (copy) => copy.filter((_, i) => i !== index));
    const swapped = await tampered('swapped', (copy) => {
      [copy[index], copy[index + 1]] = [copy[index + 1] as string, copy[index] as string];
      return copy;
    });
    for (const result of [edited, deleted, swapped]) {
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`${name} line ${lineNo}:`);
    }
    expect(edited.stderr).toMatch(/hash mismatch: the record was edited/);
    expect(deleted.stderr).toMatch(/deleted, inserted or reordered/);
    expect(swapped.stderr).toMatch(/deleted, inserted or reordered/);
    reportFigure({
      fault: 'audit line edited / deleted / swapped', behaviour: `verify exit 1 naming ${name} line ${lineNo} each time`,
      expected: 3, lost: 0, duplicated: 0, recoverMs: null,
    });
  }, FAULT_TEST_TIMEOUT_MS);
});
