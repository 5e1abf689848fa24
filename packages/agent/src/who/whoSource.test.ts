import { realpathSync, symlinkSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSilentLogger } from '@fso/common';
import { describe, expect, it } from 'vitest';
import type { Change } from '../watch/reconciler.js';
import { FAN } from './whoIndex.js';
import type { WhoRecord } from './whoIndex.js';
import { WhoUnavailableError, startWhoSource } from './whoSource.js';
import type { FanotifyAddon } from './whoSource.js';

/**
 * The addon's JavaScript side, driven by the test: what the reader thread
 * would deliver (batches, and `caughtUp` after a drain) is handed over by
 * `deliver`. The kernel side is tested on real processes in tests/who.e2e.
 */
function scriptedAddon() {
  let onBatch: ((records: WhoRecord[], caughtUp: number | null) => void) | undefined;
  const calls = { marks: [] as string[], roots: [] as string[][], syncs: 0, closed: false };
  const addon: FanotifyAddon = {
    open(cb) {
      onBatch = cb;
      return {};
    },
    mark: (_h, p) => (calls.marks.push(p), true),
    setRoots: (_h, roots) => void calls.roots.push(roots),
    sync: () => void (calls.syncs += 1),
    close: () => void (calls.closed = true),
  };
  return { addon, calls, deliver: (records: WhoRecord[], caughtUp: number | null) => onBatch?.(records, caughtUp) };
}

const record = (over: Partial<WhoRecord>): WhoRecord => ({
  mask: FAN.CREATE, path: '/w/a', oldPath: null, pid: 4242, uid: 1000, euid: 1000, gid: 1000, auid: 1000, ppid: 1,
  exe: '/usr/bin/vim.basic', comm: 'vim', procError: null, at: Date.now(), ...over,
});

const change = (over: Partial<Change>): Change => ({
  type: 'create', path: '/w/a', kind: 'file', size: 1, sha256: null, hashSkipped: null, origin: 'live', mtimeMs: 0, observedAtMs: Date.now(), ops: [], ...over,
});

const users = { name: (uid: number | null | undefined) => (uid === 1000 ? 'alice' : uid === 0 ? 'root' : null) };

describe('startWhoSource: answering who made a change from the reader\'s records', () => {
  it('marks each root once and keeps records under the roots; answers at once when the reader is past the change', async () => {
    const { addon, calls, deliver } = scriptedAddon();
    const who = await startWhoSource({ mode: 'fanotify', log: createSilentLogger(), addon, users });
    who.watch(['/tmp']);
    who.watch(['/tmp']);
    expect(calls.marks).toHaveLength(1);
    const seen = Date.now();
    deliver([record({ path: '/tmp/a', at: seen })], seen + 5);
    const answer = who.lookup(change({ path: '/tmp/a', observedAtMs: seen }));
    expect(answer).toEqual({ who: { uid: 1000, user: 'alice', gid: 1000, euid: 1000, euser: 'alice', auid: 1000, auser: 'alice', pid: 4242, ppid: 1, exe: '/usr/bin/vim.basic', comm: 'vim', source: 'fanotify' } });
    expect(calls.syncs).toBe(0);
    expect(who.state()).toEqual({ mode: 'fanotify', source: 'fanotify', reason: null });
  });

  it('waits for the reader to drain past the change (one sync for all waiting), then answers; no record then is no-record', async () => {
    const { addon, calls, deliver } = scriptedAddon();
    const who = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon, users });
    who.watch(['/w']);
    const seen = Date.now();
    const first = who.lookup(change({ path: '/w/a', observedAtMs: seen }));
    const second = who.lookup(change({ path: '/w/b', type: 'delete', observedAtMs: seen }));
    expect(first).toBeInstanceOf(Promise);
    expect(calls.syncs).toBe(1);
    deliver([record({ path: '/w/a', at: seen + 1 })], seen - 1); // not yet past: still waiting
    deliver([], seen + 2);
    expect(await first).toMatchObject({ who: { pid: 4242, user: 'alice' } });
    expect(await second).toEqual({ who: null, whoMissing: 'no-record' });
  });

  it('watched directories are remembered by the reader under their real paths, and forgotten when their watch goes', async () => {
    const { addon } = scriptedAddon();
    const kept = new Map<string, string>();
    const calls: string[] = [];
    const remembering: FanotifyAddon = {
      ...addon,
      remember: (_h, dir) => (calls.push(`remember ${dir}`), kept.set(dir, dir), Buffer.from(dir)),
      forget: (_h, key, dir) => (calls.push(`forget ${dir}`), key.toString() === dir && kept.delete(dir)),
    };
    const who = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon: remembering, users });
    // A root named through a symbolic link: the reader's paths are real ones.
    const tmp = realpathSync(os.tmpdir());
    const link = path.join(tmp, `fso-who-link-${process.pid}`);
    symlinkSync(tmp, link);
    try {
      who.watch([link]);
      who.directory(`${link}/a`, true);
      who.directory(`${link}/a`, true);
      who.directory(`${link}/a`, false);
      who.directory(`${link}/a`, false);
      who.directory(`${link}/b`, true);
      expect(calls).toEqual([`remember ${tmp}/a`, `forget ${tmp}/a`, `remember ${tmp}/a`, `forget ${tmp}/a`, `remember ${tmp}/b`]);
      expect([...kept.keys()]).toEqual([`${tmp}/b`]);
      who.close();
      who.directory(`${link}/c`, true);
      expect(calls).toHaveLength(5);
    } finally {
      unlinkSync(link);
    }
  });

  it('a process gone before its ids were read is process-gone; a change found by a walk is scan, without waiting', async () => {
    const { addon, deliver } = scriptedAddon();
    const who = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon, users });
    who.watch(['/w']);
    const seen = Date.now();
    deliver([record({ path: '/w/a', uid: null, procError: 'ENOENT', at: seen })], seen + 1);
    expect(who.lookup(change({ path: '/w/a', observedAtMs: seen }))).toEqual({ who: null, whoMissing: 'process-gone' });
    expect(who.lookup(change({ path: '/w/z', origin: 'scan', observedAtMs: seen + 10_000 }))).toEqual({ who: null, whoMissing: 'scan' });
  });

  it('a reader that never catches up costs at most maxWaitMs per change, then no-record', async () => {
    const { addon } = scriptedAddon();
    const who = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon, users, maxWaitMs: 50 });
    who.watch(['/w']);
    const started = Date.now();
    expect(await who.lookup(change({ path: '/w/a' }))).toEqual({ who: null, whoMissing: 'no-record' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('without fanotify: auto says why in every answer and the status, fanotify refuses, off adds nothing', async () => {
    const refusing: FanotifyAddon = { ...scriptedAddon().addon, open: () => { throw Object.assign(new Error('fanotify_init: Operation not permitted'), { code: 'EPERM' }); } };
    const noAuditd = { ...scriptedAddon().addon, start: () => Promise.reject(new Error('auditd is not running')), problem: () => null };
    const auto = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon: refusing, auditReader: noAuditd });
    expect(auto.lookup(change({}))).toEqual({ who: null, whoMissing: 'not-root' });
    expect(auto.state()).toEqual({ mode: 'auto', source: null, reason: 'not-root: fanotify_init: Operation not permitted; audit: auditd is not running' });
    await expect(startWhoSource({ mode: 'fanotify', log: createSilentLogger(), addon: refusing })).rejects.toThrow(WhoUnavailableError);
    await expect(startWhoSource({ mode: 'audit', log: createSilentLogger(), auditReader: noAuditd })).rejects.toThrow(/--who audit: unavailable \(audit: auditd is not running\)/);
    expect((await startWhoSource({ mode: 'off', log: createSilentLogger() })).lookup(change({}))).toEqual({});
  });

  it('auto without fanotify falls back to audit: its records answer, with source audit', async () => {
    const refusing: FanotifyAddon = { ...scriptedAddon().addon, open: () => { throw Object.assign(new Error('fanotify_init: Invalid argument'), { code: 'EINVAL' }); } };
    const audit = scriptedAddon();
    const who = await startWhoSource({ mode: 'auto', log: createSilentLogger(), addon: refusing, auditReader: { ...audit.addon, start: () => Promise.resolve(), problem: () => null }, users });
    who.watch(['/tmp']);
    const seen = Date.now();
    audit.deliver([record({ path: '/tmp/a', at: seen })], seen + 1);
    expect(who.lookup(change({ path: '/tmp/a', observedAtMs: seen }))).toMatchObject({ who: { source: 'audit', user: 'alice' } });
    expect(who.state()).toMatchObject({ mode: 'auto', source: 'audit' });
  });
});
