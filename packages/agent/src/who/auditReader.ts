import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { FAN } from './whoIndex.js';
import type { WhoRecord } from './whoIndex.js';
import type { FanotifyAddon } from './whoSource.js';

const run = promisify(execFile);

/** Options of {@link createAuditReader}. */
export interface AuditReaderOptions {
  /** The audit rules' key, so that only the agent's own records are read (`fso-<agentId>`, at most 31 bytes). */
  key: string;
  /** auditd's log (auditd.conf `log_file`); default /var/log/audit/audit.log. */
  logFile?: string;
  auditctl?: string;
  /**
   * A file of the agent's own, under its own watch rule: a wait is answered
   * when the record of a write to it (made after the change was seen) is in
   * the log, so auditd's delay, whatever the load, is waited for and no more.
   * Without it, a fixed `flushMs` is assumed.
   */
  canaryFile?: string;
  /** How long a writer may take from its change to its syscall's end (ms): the canary is written this long after the wait began; default 20. */
  graceMs?: number;
  /** A canary not in the log after this long (ms) means auditd is not writing this agent's records; default 5 s. */
  canaryTimeoutMs?: number;
  /** Without a canary file: how long auditd may take to write a record after the syscall (ms); default 250. */
  flushMs?: number;
  /** How often the log is read for new records (ms); default 100. */
  pollMs?: number;
  /** A read of the log failed (it is tried again at the next poll). */
  onError?(err: unknown): void;
  /** auditd stopped writing this agent's records (the reason), or wrote them again (null). */
  onHealth?(problem: string | null): void;
}

/**
 * The pid of the audit daemon the kernel names, when it is a live auditd.
 * The kernel keeps naming a daemon that died while no rule was loaded (it
 * notices only when it next sends a record), and a machine restored from a
 * snapshot names one that never ran there: `auditctl -s` alone says nothing.
 */
export function liveAuditd(status: string): { pid: number } | { reason: string } {
  const pid = Number(/^pid (\d+)/m.exec(status)?.[1] ?? 0);
  if (pid === 0) return { reason: 'auditd is not running (auditctl -s: no daemon pid)' };
  let proc = '';
  try {
    proc = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // nothing: no such process here
  }
  const name = /^Name:\s*(\S+)/m.exec(proc)?.[1];
  const state = /^State:\s*(\S)/m.exec(proc)?.[1];
  if (name !== 'auditd' || state === 'Z') return { reason: `auditd is not running (the kernel names pid ${pid}, ${name === undefined ? 'which is gone' : state === 'Z' ? 'a dead auditd' : `which is ${name}`})` };
  return { pid };
}

/** The audit reader: the addon's shape, and a start that opens the log (auditd must run). */
export interface AuditReader extends FanotifyAddon {
  /** Opens the log at its end and starts reading; throws (ENOENT, EACCES, no live auditd) when there is nothing to read. */
  start(): Promise<void>;
  /** Why auditd's records do not come (a canary not written within canaryTimeoutMs), else null. */
  problem(): string | null;
}

/** One audit event being gathered: its SYSCALL, CWD and PATH records share a serial. */
interface Gathering {
  serial: string;
  /** The syscall's time (epoch ms, from `msg=audit(…)`). */
  atMs: number;
  fields: Record<string, string>;
  cwd: string | null;
  paths: Array<Record<string, string>>;
}

/** `key=value key="quoted value"` pairs of one audit record (the enriched part after 0x1d too), values as written (quotes kept). */
export function auditFields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)=("[^"]*"|\S*)/g;
  for (const m of line.replace(/\x1d/g, ' ').matchAll(re)) {
    const [, k, v] = m;
    if (k === undefined || v === undefined || k in out) continue;
    out[k] = v;
  }
  return out;
}

/**
 * An audit string field: quoted, the text between the quotes; unquoted, the
 * kernel's hex encoding of a value with a space, a quote or a control
 * character (a file named `4A4B` is written quoted, so never decoded);
 * `(null)` is null.
 */
export function auditString(v: string | undefined): string | null {
  if (v === undefined || v === '(null)' || v === '?') return null;
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return v.slice(1, -1);
  if (/^[0-9A-F]+$/.test(v) && v.length % 2 === 0) return Buffer.from(v, 'hex').toString('utf8');
  return v;
}

const id = (v: string | undefined): number | null => {
  const n = Number(v);
  return v === undefined || !Number.isInteger(n) || n < 0 || n === 4294967295 ? null : n;
};

/** Syscalls that open for writing or truncate: a PATH of theirs is a write; anything else (chmod, chown, xattr…) an attribute change. */
const WRITES = new Set(['open', 'openat', 'openat2', 'creat', 'truncate', 'ftruncate', 'open_by_handle_at']);

/** A directory's key as a PATH record gives it (`dev=fe:00 inode=2203677`) and as stat does: `dev:ino`, dev as glibc's makedev encodes it. */
export function directoryKey(dev: number, ino: number | string): string {
  return `${dev}:${ino}`;
}

/** The `dev=MAJOR:MINOR` (hex) of a PATH record as glibc's makedev would encode it (stat's dev), or null. */
function auditDev(v: string | undefined): number | null {
  const m = /^([0-9a-f]+):([0-9a-f]+)$/i.exec(v ?? '');
  if (!m) return null;
  const major = parseInt(m[1] as string, 16);
  const minor = parseInt(m[2] as string, 16);
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 0x1000 * 0x100000000;
}

/**
 * The kernel records of one audit event, as the fanotify reader would give
 * them. A relative name is of its PARENT item's directory: named by
 * `directoryPath` (the directories the agent watches, by device and inode)
 * where it knows it, since a syscall relative to a directory descriptor
 * (`rm -rf`'s unlinkat) names neither that directory nor its path; else of
 * the process's cwd.
 */
export function recordsOf(event: Gathering, atMs: number, directoryPath: (key: string) => string | undefined = () => undefined): WhoRecord[] {
  const f = event.fields;
  const who = {
    pid: Number(f.pid), ppid: id(f.ppid), uid: id(f.uid), euid: id(f.euid), gid: id(f.gid), auid: id(f.auid),
    exe: auditString(f.exe), comm: auditString(f.comm), procError: null, at: atMs,
  };
  const parents = event.paths.filter((p) => auditString(p.nametype) === 'PARENT');
  const children = event.paths.filter((p) => auditString(p.nametype) !== 'PARENT');
  const renamedInodes = new Set(children.filter((p) => auditString(p.nametype) === 'CREATE').map((p) => p.inode));
  /**
   * The PARENT item of a child: the one named by the child's directory part
   * (`sub/` for `sub/file`), else, of a rename's two, the old name's
   * directory for the renamed inode's DELETE and the new name's for the rest
   * (its CREATE, and a target it replaced).
   */
  const parentOf = (child: Record<string, string>, name: string): Record<string, string> | undefined => {
    const slash = name.lastIndexOf('/');
    const named = slash < 0 ? [] : parents.filter((p) => auditString(p.name) === name.slice(0, slash + 1));
    if (named.length === 1) return named[0];
    if (parents.length === 1) return parents[0];
    return auditString(child.nametype) === 'DELETE' && renamedInodes.has(child.inode) ? parents[0] : parents.at(-1);
  };
  const full = (child: Record<string, string>): string | null => {
    const name = auditString(child.name);
    if (name === null) return null;
    if (path.isAbsolute(name)) return path.normalize(name);
    // The directory holding the last component, when the agent watches it: its path and the name's last part.
    const parent = parentOf(child, name);
    const dev = auditDev(parent?.dev);
    const dir = parent?.inode === undefined || dev === null ? undefined : directoryPath(directoryKey(dev, parent.inode));
    if (dir !== undefined) return path.join(dir, path.basename(name));
    return event.cwd ? path.resolve(event.cwd, name) : null;
  };
  const items = children
    .map((p) => ({ type: auditString(p.nametype) ?? 'NORMAL', name: full(p), inode: p.inode ?? '' }))
    .filter((p): p is { type: string; name: string; inode: string } => p.name !== null);
  const out: WhoRecord[] = [];
  const created = items.filter((p) => p.type === 'CREATE');
  const deleted = items.filter((p) => p.type === 'DELETE');
  for (const c of created) {
    // A rename: the same inode deleted under its old name and created under the new one.
    const from = deleted.find((d) => d.inode === c.inode && d.name !== c.name);
    out.push({ ...who, mask: from ? FAN.RENAME : FAN.CREATE, path: c.name, oldPath: from?.name ?? null });
  }
  for (const d of deleted) {
    if (created.some((c) => c.inode === d.inode || c.name === d.name)) continue; // the rename's old name, or a target replaced by it
    out.push({ ...who, mask: FAN.DELETE, path: d.name, oldPath: null });
  }
  const syscall = auditString(f.SYSCALL) ?? '';
  for (const n of items.filter((p) => p.type === 'NORMAL')) out.push({ ...who, mask: WRITES.has(syscall) ? FAN.MODIFY : FAN.ATTRIB, path: n.name, oldPath: null });
  return out;
}

/**
 * Who-data from Linux audit (issue 16's `--who audit`, Wazuh's "whodata"
 * way): a watch rule per root (`auditctl -w ROOT -p wa -k KEY`, recursive
 * for a directory), removed at close, and auditd's log read as it grows.
 * auditd must run and own the audit stream (the agent does not replace it);
 * the agent only reads the records with its key. It gives the ids of the
 * syscall itself, so a process that exited at once is still named; what it
 * costs is a record per matching syscall written by auditd to disk.
 *
 * It has the fanotify addon's shape, so the same index, waits and answers
 * serve both. `caughtUp` moves when the log holds everything the kernel
 * recorded before a moment: with a canary file, `sync()` writes it (after
 * `graceMs`, for a writer still between its change and its syscall's end)
 * and the canary's own record in the log marks the moment (auditd writes in
 * the kernel's order); without one, the last read of the log less `flushMs`.
 * A canary that does not come within `canaryTimeoutMs` (auditd died,
 * suspended on a full disk, or is far behind) is said once through
 * `onHealth`; until one comes, waits are answered at once (no-record).
 */
export function createAuditReader(options: AuditReaderOptions): AuditReader {
  const logFile = options.logFile ?? '/var/log/audit/audit.log';
  const auditctl = options.auditctl ?? '/usr/sbin/auditctl';
  const flushMs = options.flushMs ?? 250;
  const graceMs = options.graceMs ?? 20;
  const canaryTimeoutMs = options.canaryTimeoutMs ?? 5_000;
  const canaryFile = options.canaryFile === undefined ? undefined : path.resolve(options.canaryFile);
  const keyField = options.key;
  let roots: string[] = [];
  const rules = new Set<string>();
  let file: FileHandle | undefined;
  let position = 0;
  let partial = '';
  let gathering: Gathering | undefined;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  let closed = false;
  let deliver: (records: WhoRecord[], caughtUp: number | null) => void = () => {};
  /** The canary in flight: when its wait began (its caughtUp), when it was written, its deadline and fast poll. */
  let canary: { from: number; writtenAt: number; late: NodeJS.Timeout; poll: NodeJS.Timeout } | undefined;
  /** The wait before the next canary is written. */
  let grace: NodeJS.Timeout | undefined;
  /** The caughtUp of the canary read in this pass of the log. */
  let canaryFrom: number | undefined;
  let problem: string | null = null;
  /** The directories the agent watches, by `dev:ino`: relative names of *at syscalls are theirs. */
  const directories = new Map<string, { path: string }>();

  const under = (p: string): boolean => roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`));
  const finish = (out: WhoRecord[]): void => {
    if (gathering && auditString(gathering.fields.key) === keyField) {
      // `at` is the syscall's own time: before the watcher saw the change, as the index expects of the record behind it.
      for (const r of recordsOf(gathering, gathering.atMs, (key) => directories.get(key)?.path)) {
        if (under(r.path) || (r.oldPath && under(r.oldPath))) out.push(r);
        // The canary in flight (not an older one that came late: audit's clock is coarse, by a few ms at most).
        else if (canary && r.path === canaryFile && r.pid === process.pid && r.at >= canary.writtenAt - 1_000) canaryFrom = canary.from;
      }
    }
    gathering = undefined;
  };

  const readNew = async (): Promise<void> => {
    const current = file;
    if (!current || closed) return;
    const started = Date.now();
    const out: WhoRecord[] = [];
    // auditd rotated its log (max_log_file): the rest is in the new file, from its start.
    const [now, held] = await Promise.all([stat(logFile).catch(() => undefined), current.stat()]);
    if (closed) return;
    if (now && (now.ino !== held.ino || now.size < position)) {
      await readRest(current, out);
      // The old handle is kept until the new file opens (a failed open is tried again at the next poll).
      const next = await open(logFile, 'r');
      if (closed) {
        await next.close();
        return;
      }
      file = next;
      position = 0;
      partial = '';
      await current.close().catch(() => undefined);
    }
    const handle = file;
    if (!handle || closed) return;
    await readRest(handle, out);
    if (closed) return;
    // An event still gathering at the end of the log may have records to come (auditd writes them one by one):
    // finished once it is older than flushMs, and until then caughtUp stays before it.
    if (gathering && started - gathering.atMs > flushMs) finish(out);
    if (!canaryFile) {
      const before = gathering ? Math.min(started - flushMs, gathering.atMs - 1) : started - flushMs;
      deliver(out, before);
      return;
    }
    const seen = canaryFrom;
    canaryFrom = undefined;
    if (seen !== undefined && canary) {
      clearTimeout(canary.late);
      clearInterval(canary.poll);
      canary = undefined;
      if (problem !== null) {
        problem = null;
        options.onHealth?.(null);
      }
    }
    deliver(out, seen ?? null);
  };
  /** Reads `handle` from `position` to its end, gathering events into `out`. */
  const readRest = async (handle: FileHandle, out: WhoRecord[]): Promise<void> => {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const text = partial + buf.subarray(0, bytesRead).toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const m = /^type=(\w+) msg=audit\(([\d.]+):(\d+)\):/.exec(line);
        if (!m) continue;
        const [, type, time, serial] = m;
        if (gathering && gathering.serial !== serial) finish(out);
        if (type === 'SYSCALL') gathering = { serial: serial as string, atMs: Number(time) * 1000, fields: auditFields(line), cwd: null, paths: [] };
        else if (gathering && type === 'CWD') gathering.cwd = auditString(auditFields(line).cwd);
        else if (gathering && type === 'PATH') gathering.paths.push(auditFields(line));
        else if (gathering && (type === 'PROCTITLE' || type === 'EOE')) finish(out);
      }
    }
  };
  const readSoon = (): Promise<void> => {
    // Never a rejection out of a timer: a read that fails (EBADF at close, EACCES after a rotation) is tried again at the next poll.
    reading ??= readNew()
      .catch((err: unknown) => options.onError?.(err))
      .finally(() => (reading = undefined));
    return reading;
  };
  /** Writes the canary for a wait that began at `from`; its record in the log answers every wait begun by then. */
  const writeCanary = (from: number, target: string): void => {
    if (closed || canary) return;
    const writtenAt = Date.now();
    canary = {
      from, writtenAt,
      // Read often while a wait is open: the answer comes as soon as auditd has written.
      poll: setInterval(() => void readSoon(), 10),
      late: setTimeout(() => {
        const daemon = liveAuditd(spawnSync(auditctl, ['-s'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '');
        canaryFailed(
          current,
          `auditd wrote no record of this agent's canary (${target}) to ${logFile} within ${canaryTimeoutMs} ms: ${'reason' in daemon ? daemon.reason : `auditd (pid ${daemon.pid}) runs, but is suspended (a full disk?), far behind, or writes elsewhere`}`,
        );
      }, canaryTimeoutMs),
    };
    const current = canary;
    canary.late.unref();
    canary.poll.unref();
    // A canary that cannot be written (a full disk, its directory gone) is said at once, with why, not as auditd's silence 5 s later.
    writeFile(target, `${writtenAt}\n`).catch((err: unknown) => canaryFailed(current, `cannot write this agent's canary (${target}): ${err instanceof Error ? err.message : String(err)}`));
  };
  /** The canary in flight did not come: said once (until one comes again), and the waits are answered (no-record) rather than held. */
  const canaryFailed = (failed: NonNullable<typeof canary>, next: string): void => {
    if (canary !== failed) return;
    clearTimeout(failed.late);
    clearInterval(failed.poll);
    canary = undefined;
    if (problem === null) options.onHealth?.(next);
    problem = next;
    deliver([], Date.now());
  };

  return {
    open(onBatch) {
      deliver = onBatch;
      return {};
    },
    mark(_handle, root) {
      // Synchronous (a few ms): the rule is in the kernel before the root's watch starts.
      if (rules.has(root)) return true;
      addRule(root);
      rules.add(root);
      return true;
    },
    setRoots(_handle, next) {
      roots = next;
    },
    remember(_handle, dir) {
      let key: string;
      try {
        const st = statSync(dir);
        key = directoryKey(st.dev, st.ino);
      } catch {
        return undefined; // gone already
      }
      directories.set(key, { path: dir });
      return Buffer.from(key);
    },
    forget(_handle, key, dir) {
      const k = key.toString();
      // Only under this name: a directory renamed is remembered under its new name before its old watch goes.
      if (directories.get(k)?.path === dir) directories.delete(k);
    },
    sync() {
      if (closed) return;
      if (!canaryFile) {
        void readSoon();
        return;
      }
      // While auditd is away, a wait is answered at once; the canary sent with it tells when auditd is back.
      if (problem !== null) {
        deliver([], Date.now());
        writeCanary(Date.now(), canaryFile);
        return;
      }
      if (canary || grace) return;
      const from = Date.now();
      grace = setTimeout(() => {
        grace = undefined;
        writeCanary(from, canaryFile);
      }, graceMs);
      grace.unref();
    },
    problem: () => problem,
    close() {
      closed = true;
      clearInterval(timer);
      clearTimeout(grace);
      if (canary) {
        clearTimeout(canary.late);
        clearInterval(canary.poll);
        canary = undefined;
      }
      // After the read in flight, if any: it stops at `closed` and never reads a closed handle.
      const last = file;
      file = undefined;
      void (reading ?? Promise.resolve()).then(() => last?.close()).catch(() => undefined);
      for (const root of rules) spawnSync(auditctl, ['-W', root, '-p', 'wa', '-k', keyField], { timeout: 10_000 });
      rules.clear();
    },
    async start(): Promise<void> {
      const status = await run(auditctl, ['-s']).then((r) => r.stdout, () => '');
      const daemon = liveAuditd(status);
      if ('reason' in daemon) throw Object.assign(new Error(daemon.reason), { code: 'ENOAUDITD' });
      file = await open(logFile, 'r');
      position = (await file.stat()).size;
      if (canaryFile) {
        await mkdir(path.dirname(canaryFile), { recursive: true });
        await writeFile(canaryFile, '', { flag: 'a' });
        addRule(canaryFile);
        rules.add(canaryFile);
      }
      timer = setInterval(() => void readSoon(), options.pollMs ?? 100);
      timer.unref();
    },
  };

  /** `auditctl -w target -p wa -k KEY`; a rule left by an agent that did not stop cleanly ("Rule exists") is this agent's now. */
  function addRule(target: string): void {
    const added = spawnSync(auditctl, ['-w', target, '-p', 'wa', '-k', keyField], { encoding: 'utf8', timeout: 10_000 });
    if (added.status !== 0 && !/exists/i.test(added.stderr ?? '')) throw new Error(`auditctl -w ${target}: ${(added.stderr ?? '').trim() || `exit ${added.status}`}`);
  }
}
