import { stat } from 'node:fs/promises';
import { listAuditFiles, pathHistory, queryAuditRecords, treeFromTrail, verifyAuditDir } from '@fso/audit-trail';
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
