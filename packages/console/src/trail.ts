import { stat } from 'node:fs/promises';
import { followTrailIndex, listAuditFiles, openTrailIndex, pathHistory, queryAuditRecords, treeFromTrail, verifyAuditDir } from '@fso/audit-trail';
import type { AuditQuery, AuditQueryResult, AuditRecordLine, TrailEntry, VerifyResult } from '@fso/audit-trail';
import type { Logger } from '@fso/common';

/** What the console's API reads from the audit directory. It never writes there. */
export interface TrailReader {
  query(q: AuditQuery): Promise<AuditQueryResult>;
  history(path: string, options: { agent?: string }): Promise<AuditRecordLine[]>;
  tree(options: { agent: string; under?: string; until?: number }): Promise<Map<string, TrailEntry>>;
  close(): Promise<void>;
}

/** The linear reader: every query reads the JSONL (fine for a small trail; the index is the fast path). */
export function linearTrailReader(auditDir: string): TrailReader {
  return {
    query: (q) => queryAuditRecords(auditDir, q),
    history: (path, options) => pathHistory(auditDir, path, options),
    tree: (options) => treeFromTrail(auditDir, options),
    close: async () => {},
  };
}

/**
 * The indexed reader: an index of `auditDir` kept in `indexDir` (never the
 * audit directory), caught up as the recorder appends, rebuilt from the JSONL
 * when missing or stale. Where the index cannot open (better-sqlite3 did not
 * build, the directory is not writable), the console says why once and reads
 * the JSONL linearly: slower on a big trail, the same answers.
 */
export async function indexedTrailReader(auditDir: string, indexDir: string, log: Logger): Promise<TrailReader> {
  let index: Awaited<ReturnType<typeof openTrailIndex>>;
  try {
    index = await openTrailIndex({ auditDir, indexDir });
  } catch (err) {
    log.warn({ err, indexDir }, `the trail index cannot open (${(err as Error).message}); searching the JSONL without it`);
    return linearTrailReader(auditDir);
  }
  const stop = new AbortController();
  let failures = 0;
  const following = followTrailIndex(index, {
    signal: stop.signal,
    onError: (err: unknown) => {
      failures += 1;
      if (failures === 1 || failures % 100 === 0) log.warn({ err, failures }, 'the trail index could not catch up; it tries again');
    },
  });
  // Searches answer from what is indexed: the follower catches up as soon as the directory changes
  // (and every second), and a first build of a big trail must not hold every search until it ends.
  let closing: Promise<void> | undefined;
  return {
    query: (q) => index.query(q),
    history: (p, options) => index.history(p, options),
    tree: (options) => index.tree(options),
    close: () => {
      closing ??= (async () => {
        stop.abort();
        await following;
        await index.close();
      })();
      return closing;
    },
  };
}

/** The last verify result of the trail, and whether a newer one is being computed. */
export interface IntegrityReport {
  /** Undefined until the first check has finished. */
  result?: VerifyResult;
  checkedAt?: string;
  running: boolean;
  /** Why the last check could not run (the directory is unreadable…). */
  error?: string;
}

/** Re-verifies the trail in the background whenever its files changed. */
export interface IntegrityMonitor {
  report(): IntegrityReport;
  close(): Promise<void>;
}

/**
 * Runs `verifyAuditDir` at start and again every `intervalMs` when an audit
 * file's size or mtime moved since the last run, one run at a time: the page
 * shows the last finished result (intact, or the first broken file:line).
 */
export function watchIntegrity(auditDir: string, log: Logger, intervalMs = 30_000): IntegrityMonitor {
  let last: IntegrityReport = { running: false };
  let fingerprint = '';
  let current: Promise<void> | undefined;
  let closed = false;

  const fingerprintNow = async (): Promise<string> => {
    const files = await listAuditFiles(auditDir);
    const parts = await Promise.all(files.map(async (f) => {
      const s = await stat(f.path).catch(() => undefined);
      return `${f.name}:${s?.size ?? -1}:${s?.mtimeMs ?? -1}`;
    }));
    return parts.join('|');
  };

  const run = async (): Promise<void> => {
    try {
      const now = await fingerprintNow();
      if (now === fingerprint && last.result) return;
      last = { ...last, running: true };
      const result = await verifyAuditDir(auditDir);
      fingerprint = now;
      last = { result, checkedAt: new Date().toISOString(), running: false };
      if (!result.ok) log.warn({ failure: result.failure }, 'the audit trail does not verify');
    } catch (err) {
      last = { ...last, running: false, error: (err as Error).message };
    }
  };
  const tick = (): void => {
    if (closed || current) return;
    current = run().finally(() => { current = undefined; });
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  let closing: Promise<void> | undefined;
  return {
    report: () => last,
    close: () => {
      closing ??= (async () => {
        closed = true;
        clearInterval(timer);
        await current;
      })();
      return closing;
    },
  };
}
