import { execFile, spawnSync } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
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
  /** How long auditd may take to write a record after the syscall (ms); default 250. */
  flushMs?: number;
  /** How often the log is read for new records (ms); default 100. */
  pollMs?: number;
  /** A read of the log failed (it is tried again at the next poll). */
  onError?(err: unknown): void;
}

/** The audit reader: the addon's shape, and a start that opens the log (auditd must run). */
export interface AuditReader extends FanotifyAddon {
  /** Opens the log at its end and starts reading; throws (ENOENT, EACCES, no auditd) when there is nothing to read. */
  start(): Promise<void>;
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

/** The kernel records of one audit event, as the fanotify reader would give them. */
export function recordsOf(event: Gathering, atMs: number): WhoRecord[] {
  const f = event.fields;
  const who = {
    pid: Number(f.pid), ppid: id(f.ppid), uid: id(f.uid), euid: id(f.euid), gid: id(f.gid), auid: id(f.auid),
    exe: auditString(f.exe), comm: auditString(f.comm), procError: null, at: atMs,
  };
  const full = (name: string | null): string | null => (name === null ? null : path.isAbsolute(name) ? path.normalize(name) : event.cwd ? path.resolve(event.cwd, name) : null);
  const items = event.paths
    .filter((p) => auditString(p.nametype) !== 'PARENT')
    .map((p) => ({ type: auditString(p.nametype) ?? 'NORMAL', name: full(auditString(p.name)), inode: p.inode ?? '' }))
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
 * serve both: `caughtUp` is the last read of the log to its end, less
 * `flushMs` (auditd writes asynchronously).
 */
export function createAuditReader(options: AuditReaderOptions): AuditReader {
  const logFile = options.logFile ?? '/var/log/audit/audit.log';
  const auditctl = options.auditctl ?? '/usr/sbin/auditctl';
  const flushMs = options.flushMs ?? 250;
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

  const under = (p: string): boolean => roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : `${r}/`));
  const finish = (out: WhoRecord[]): void => {
    // `at` is the syscall's own time: before the watcher saw the change, as the index expects of the record behind it.
    if (gathering && auditString(gathering.fields.key) === keyField) for (const r of recordsOf(gathering, gathering.atMs)) if (under(r.path) || (r.oldPath && under(r.oldPath))) out.push(r);
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
    const before = gathering ? Math.min(started - flushMs, gathering.atMs - 1) : started - flushMs;
    deliver(out, before);
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

  return {
    open(onBatch) {
      deliver = onBatch;
      return {};
    },
    mark(_handle, root) {
      // Synchronous (a few ms): the rule is in the kernel before the root's watch starts.
      if (rules.has(root)) return true;
      const added = spawnSync(auditctl, ['-w', root, '-p', 'wa', '-k', keyField], { encoding: 'utf8', timeout: 10_000 });
      // "Rule exists": left by an agent that did not stop cleanly; it is this agent's now.
      if (added.status !== 0 && !/exists/i.test(added.stderr ?? '')) throw new Error(`auditctl -w ${root}: ${(added.stderr ?? '').trim() || `exit ${added.status}`}`);
      rules.add(root);
      return true;
    },
    setRoots(_handle, next) {
      roots = next;
    },
    sync() {
      void readSoon();
    },
    close() {
      closed = true;
      clearInterval(timer);
      // After the read in flight, if any: it stops at `closed` and never reads a closed handle.
      const last = file;
      file = undefined;
      void (reading ?? Promise.resolve()).then(() => last?.close()).catch(() => undefined);
      for (const root of rules) spawnSync(auditctl, ['-W', root, '-p', 'wa', '-k', keyField], { timeout: 10_000 });
      rules.clear();
    },
    async start(): Promise<void> {
      const status = await run(auditctl, ['-s']).then((r) => r.stdout, () => '');
      const pid = /^pid (\d+)/m.exec(status)?.[1];
      if (!pid || pid === '0') throw Object.assign(new Error('auditd is not running (auditctl -s: no daemon pid)'), { code: 'ENOAUDITD' });
      file = await open(logFile, 'r');
      position = (await file.stat()).size;
      timer = setInterval(() => void readSoon(), options.pollMs ?? 100);
      timer.unref();
    },
  };
}
