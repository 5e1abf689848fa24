import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { errorCode, toError } from '@fso/common';
import type { AgentStatus, Logger, Who, WhoMissingReason } from '@fso/common';

type WhoSourceName = Who['source'];
import type { Change } from '../watch/reconciler.js';
import { createUserNames } from './users.js';
import type { UserNames } from './users.js';
import { createAuditReader } from './auditReader.js';
import type { AuditReader } from './auditReader.js';
import { WhoIndex } from './whoIndex.js';
import type { WhoRecord } from './whoIndex.js';

/** `--who`: `auto` uses fanotify where the host allows it, else Linux audit (a running auditd); `fanotify` and `audit` insist on theirs; `off` adds nothing. */
export const WHO_MODES = ['auto', 'fanotify', 'audit', 'off'] as const;
export type WhoMode = (typeof WHO_MODES)[number];

/** What an event gains: nothing (`off`), or `who`, null with `whoMissing` saying why. */
export interface WhoAnswer {
  who?: Who | null;
  whoMissing?: WhoMissingReason;
}

/** The native addon's API (native/fanotify.c). */
export interface FanotifyAddon {
  open(onBatch: (records: WhoRecord[], caughtUp: number | null) => void): unknown;
  /** A filesystem mark on `path`'s file system; true when the kernel reports renames whole (FAN_RENAME). */
  mark(handle: unknown, path: string): boolean;
  setRoots(handle: unknown, roots: string[]): void;
  sync(handle: unknown): void;
  close(handle: unknown): void;
  /** Why the reader's records do not come now (the audit reader: auditd not writing them), else null. */
  problem?(): string | null;
  /** Keeps a watched directory's handle with its path (for its events read after it is gone); its key, or undefined. */
  remember?(handle: unknown, dir: string): Buffer | undefined;
  /** Drops what `remember` kept for `dir`. */
  forget?(handle: unknown, key: Buffer, dir: string): void;
}

/** Who-data for the change publisher. */
export interface WhoSource {
  /** The status's `who`: the mode asked, the source in use, why none. */
  state(): NonNullable<AgentStatus['who']>;
  /** The watched roots (a config applied): marks their file systems, keeps records under them only. */
  watch(roots: string[]): void;
  /**
   * A directory under a root was watched (true) or is no longer (false):
   * the reader keeps its handle, so that the events of an `rm -rf`, read
   * after their directories are gone, still have names.
   */
  directory(dir: string, watched: boolean): void;
  /**
   * Who made `change`: at once when the kernel's records are read past the
   * moment the change was seen, else once they are (the reader is asked to
   * drain its queue, at most `maxWaitMs`).
   */
  lookup(change: Change): WhoAnswer | Promise<WhoAnswer>;
  close(): void;
}

/** Options of {@link startWhoSource}. */
export interface WhoSourceOptions {
  mode: WhoMode;
  /** The agent: its audit rules' key is `fso-<agentId>`. */
  agentId?: string;
  /** The audit reader's canary (auditReader.ts), a file of the agent's own: `<stateDir>/who-audit.canary`. */
  auditCanaryFile?: string;
  /** The audit reader (`audit`, and `auto` without fanotify); default: auditd's log (auditReader.ts). */
  auditReader?: AuditReader;
  log: Logger;
  /** The addon; default: build/Release/fso_fanotify.node (or FSO_FANOTIFY_ADDON), loaded now (lazily: only when who-data is on). */
  addon?: FanotifyAddon;
  users?: UserNames;
  /** Longest wait for the reader to catch up before a change goes without `who` (ms); default 2 s (fanotify), 5 s (audit: auditd writes to disk, behind a loaded host). */
  maxWaitMs?: number;
  /** Counts each answer (the agent's metrics). */
  onAnswer?(answer: 'attributed' | WhoMissingReason): void;
}

/** Thrown by {@link startWhoSource} when `--who fanotify` was asked and the host cannot give it. */
export class WhoUnavailableError extends Error {
  override readonly name = 'WhoUnavailableError';
}

const ADDON_FILE = '../../build/Release/fso_fanotify.node';

/** The addon built at install, or the file FSO_FANOTIFY_ADDON names (one built elsewhere for this Node.js). */
function loadAddon(): FanotifyAddon {
  return createRequire(import.meta.url)(process.env.FSO_FANOTIFY_ADDON ?? ADDON_FILE) as FanotifyAddon;
}

/** Why the host gives no fanotify: not root (EPERM), or no such kernel feature. */
function unavailableReason(err: unknown): WhoMissingReason {
  return errorCode(err) === 'EPERM' ? 'not-root' : 'unsupported';
}

/**
 * Starts the who-data layer (issue 16). With `auto`, a host without
 * fanotify (not root, an old kernel, the addon not built) logs why once and
 * every event carries `who: null` with the reason; with `fanotify` the same
 * is an error; with `off` events carry no `who` at all.
 *
 * @example
 * const who = startWhoSource({ mode: 'auto', log });
 * who.watch(['/etc']);
 * const answer = await who.lookup(change); // { who: { uid: 0, user: 'root', exe: '/usr/bin/sed', … } }
 */
export async function startWhoSource(options: WhoSourceOptions): Promise<WhoSource> {
  const { mode, log } = options;
  const count = options.onAnswer ?? (() => {});
  if (mode === 'off') {
    return { state: () => ({ mode, source: null, reason: 'off' }), watch() {}, directory() {}, lookup: () => ({}), close() {} };
  }
  let addon: FanotifyAddon | undefined;
  let handle: unknown;
  let source: WhoSourceName = 'fanotify';
  const index = new WhoIndex();
  const waiters: Array<{ at: number; done: () => void }> = [];
  let caughtUp = 0;
  let syncing = false;
  let closed = false;
  let lastPrune = Date.now();
  /** [real path, root as configured], for records named by real paths. */
  let roots: Array<[string, string]> = [];
  const unmarked = new Set<string>();
  const marked = new Set<string>();
  const onBatch = (records: WhoRecord[], at: number | null): void => {
      for (const record of records) {
        // A record without a name (the reader should not send one) is nothing to index; never a throw here, in the reader's callback.
        if (typeof record.path !== 'string') continue;
        record.path = asConfigured(record.path);
        if (typeof record.oldPath === 'string') record.oldPath = asConfigured(record.oldPath);
        else record.oldPath = null;
        index.add(record);
      }
      if (at !== null && at > caughtUp) {
        caughtUp = at;
        syncing = false;
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i];
          if (w && w.at <= caughtUp) {
            waiters.splice(i, 1);
            w.done();
          }
        }
        // Changes seen after that moment: the reader is asked again (the audit reader's canary answers only the waits begun before it).
        if (waiters.length > 0 && addon && !closed) {
          syncing = true;
          addon.sync(handle);
        }
      }
      const now = Date.now();
      if (now - lastPrune > 5_000) {
        lastPrune = now;
        index.prune(now);
      }
  };
  // fanotify first (auto, fanotify), then audit (auto, audit): the first that opens is the source.
  let failed: { reason: WhoMissingReason; detail: string } | undefined;
  if (mode !== 'audit') {
    try {
      addon = options.addon ?? loadAddon();
      handle = addon.open(onBatch);
    } catch (err) {
      addon = undefined;
      const reason = unavailableReason(err);
      const detail = errorCode(err) === 'MODULE_NOT_FOUND' || errorCode(err) === 'ERR_DLOPEN_FAILED' ? `the addon did not load: ${toError(err).message.split('\n')[0]}` : toError(err).message;
      if (mode === 'fanotify') throw new WhoUnavailableError(`--who fanotify: ${reason === 'not-root' ? 'fanotify needs root (CAP_SYS_ADMIN)' : 'unavailable'} (${detail})`);
      failed = { reason, detail };
    }
  }
  if (!addon) {
    try {
      const reader = options.auditReader ?? createAuditReader({
        key: `fso-${options.agentId ?? 'agent'}`.slice(0, 31),
        canaryFile: options.auditCanaryFile,
        onError: (err) => log.warn({ err: toError(err).message }, 'who-data: reading the audit log failed; trying again'),
        onHealth: (problem) =>
          problem === null ? log.info('who-data: auditd writes this agent\'s records again') : log.warn({ problem }, 'who-data: auditd is not writing this agent\'s records: events carry no-record until it does'),
      });
      await reader.start();
      handle = reader.open(onBatch);
      addon = reader;
      source = 'audit';
    } catch (err) {
      const detail = `audit: ${toError(err).message}`;
      if (mode === 'audit') throw new WhoUnavailableError(`--who audit: unavailable (${detail})`);
      failed = { reason: failed?.reason ?? unavailableReason(err), detail: failed ? `${failed.detail}; ${detail}` : detail };
    }
  }
  if (!addon) {
    const { reason, detail } = failed ?? { reason: 'unsupported' as const, detail: 'no source' };
    log.warn({ reason, detail }, 'who-data unavailable: events carry who: null');
    return {
      state: () => ({ mode, source: null, reason: `${reason}: ${detail}` }),
      watch() {},
      directory() {},
      lookup: (change) => {
        const answer: WhoAnswer = { who: null, whoMissing: change.origin === 'scan' ? 'scan' : reason };
        count(answer.whoMissing ?? reason);
        return answer;
      },
      close() {},
    };
  }
  const running = addon;
  const maxWaitMs = options.maxWaitMs ?? (source === 'audit' ? 5_000 : 2_000);
  let lastStallLog = 0;
  const users = options.users ?? createUserNames();

  /** Watched directories remembered by the reader: their key and real path. */
  const remembered = new Map<string, { key: Buffer; real: string }>();

  /** `p` under a root named through a symbolic link, from the name as configured to the real one (or back). */
  function rebased(p: string, toReal: boolean): string {
    for (const [real, root] of roots) {
      const [from, to] = toReal ? [root, real] : [real, root];
      if (from === to) continue;
      if (p === from) return to;
      if (p.startsWith(`${from}/`)) return to + p.slice(from.length);
    }
    return p;
  }
  function asReal(p: string): string {
    return rebased(p, true);
  }
  function asConfigured(p: string): string {
    return rebased(p, false);
  }

  const answerFor = (change: Change): WhoAnswer => {
    const record = index.pick(change.type, change.path, change.observedAtMs, change.oldPath);
    let answer: WhoAnswer;
    if (!record) answer = { who: null, whoMissing: 'no-record' };
    else if (record.procError !== null || record.uid === null) answer = { who: null, whoMissing: 'process-gone' };
    else
      answer = {
        who: {
          uid: record.uid, user: users.name(record.uid), gid: record.gid,
          euid: record.euid, euser: users.name(record.euid),
          auid: record.auid, auser: users.name(record.auid),
          pid: record.pid, ppid: record.ppid, exe: record.exe, comm: record.comm, source,
        },
      };
    count(answer.who ? 'attributed' : (answer.whoMissing ?? 'no-record'));
    return answer;
  };

  const under = (p: string, root: string): boolean => p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);

  return {
    state: () => ({
      mode, source,
      reason:
        unmarked.size > 0 ? `no ${source === 'audit' ? 'audit rule' : 'filesystem mark'} on ${[...unmarked].join(', ')}` : (running.problem?.() ?? (failed ? `fanotify ${failed.reason}: ${failed.detail}` : null)),
    }),
    watch(wanted) {
      if (closed) return;
      // A root no longer watched says nothing any more.
      for (const root of [...unmarked]) if (!wanted.includes(root)) unmarked.delete(root);
      const next: Array<[string, string]> = [];
      for (const root of wanted) {
        let real: string;
        try {
          real = realpathSync(root);
        } catch {
          real = path.resolve(root);
        }
        if (!marked.has(real)) {
          try {
            running.mark(handle, real);
            marked.add(real);
            unmarked.delete(root);
          } catch (err) {
            unmarked.add(root);
            log.warn({ root, err: toError(err).message }, 'who-data: cannot mark this root\'s file system; its events carry who: null');
            continue;
          }
        }
        next.push([real, root]);
      }
      roots = next;
      running.setRoots(handle, next.map(([real]) => real));
    },
    directory(dir, watched) {
      if (closed || !running.remember || !running.forget) return;
      const known = remembered.get(dir);
      if (known) {
        running.forget(handle, known.key, known.real);
        remembered.delete(dir);
      }
      if (!watched) return;
      const real = asReal(dir);
      const key = running.remember(handle, real);
      if (key) remembered.set(dir, { key, real });
    },
    lookup(change) {
      if (change.origin === 'scan') {
        count('scan');
        return { who: null, whoMissing: 'scan' };
      }
      if ([...unmarked].some((root) => under(change.path, root))) {
        count('unsupported');
        return { who: null, whoMissing: 'unsupported' };
      }
      // After close(), or past the longest wait counted from when the change was seen (a backlog is answered at once).
      const leftMs = change.observedAtMs + maxWaitMs - Date.now();
      if (caughtUp >= change.observedAtMs || closed || leftMs <= 0) return answerFor(change);
      return new Promise<WhoAnswer>((resolve) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          if (Date.now() - lastStallLog > 60_000) {
            lastStallLog = Date.now();
            log.warn({ path: change.path, waitedMs: maxWaitMs, source }, 'who-data: the reader did not catch up in time (said once a minute)');
          }
          resolve(answerFor(change));
        }, leftMs);
        timer.unref();
        const waiter = {
          at: change.observedAtMs,
          done: () => {
            clearTimeout(timer);
            resolve(answerFor(change));
          },
        };
        waiters.push(waiter);
        if (!syncing) {
          syncing = true;
          running.sync(handle);
        }
      });
    },
    close() {
      if (closed) return;
      closed = true;
      remembered.clear();
      running.close(handle);
      for (const w of waiters.splice(0)) w.done();
    },
  };
}
