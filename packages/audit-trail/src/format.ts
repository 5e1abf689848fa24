/** Readable one-line renderings of audit records, for `fso-audit tail`. */

import { describeWho, whoSchema } from '@fso/common';

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});

/** Control characters (a newline in a file name…) shown escaped, so one record stays one line. */
function clean(value: string): string {
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, (ch) => JSON.stringify(ch).slice(1, -1));
}

const TOPIC_AGENT = /(?:^|\/)agents\/([^/]+)\/[^/]+$/;

/**
 * The agent a record is about: its `agentId`, or the agent of its topic (an
 * agent's config record carries no `agentId`); undefined for the default config.
 */
export function agentOf(record: Record<string, unknown>): string | undefined {
  return text(record.agentId) ?? TOPIC_AGENT.exec(text(record.topic) ?? '')?.[1];
}

/**
 * One readable line for an audit record, e.g.
 * `2026-11-22T10:00:00.131Z web-01 rename /srv/a.conf -> /srv/b.conf file 2048 B sha256:3f2a…`.
 */
export function formatRecord(record: Record<string, unknown>): string {
  const head = [text(record.receivedAt) ?? '-', agentOf(record) ?? '(default)'];
  const parts = [...head, ...describe(record)];
  return clean(parts.filter((p) => p !== '').join(' '));
}

/** `by alice(1000) sed[4242] /usr/bin/sed`, `(who: process-gone)`, or nothing where who-data is off. */
function byWhom(who: unknown, missing: unknown): string {
  if (who === null) return `(who: ${text(missing) ?? 'unknown'})`;
  const parsed = whoSchema.safeParse(who);
  return parsed.success ? `by ${describeWho(parsed.data)}` : '';
}

function describe(r: Record<string, unknown>): string[] {
  switch (r.record) {
    case 'event': {
      const where = r.oldPath !== undefined ? `${text(r.oldPath)} -> ${text(r.path)}` : (text(r.path) ?? '');
      const size = num(r.size);
      const sha = text(r.sha256);
      return [
        text(r.type) ?? 'event',
        where,
        text(r.kind) ?? '',
        size !== undefined ? `${size} B` : '',
        sha ? `sha256:${sha.slice(0, 4)}…` : '',
        r.origin === 'scan' ? '(scan)' : '',
        byWhom(r.who, r.whoMissing),
      ];
    }
    case 'diff': {
      const skipped = text(r.skipped);
      return ['diff', text(r.path) ?? '', skipped ? `skipped: ${skipped}` : `+${num(r.added) ?? 0} -${num(r.removed) ?? 0}`];
    }
    case 'status': {
      const config = obj(r.config);
      const revision = num(config.revision);
      const error = text(config.error);
      return [
        'status',
        text(r.state) ?? '',
        revision === undefined ? 'config none' : `config r${revision} ${text(config.state) ?? ''}`,
        error ? `(${error})` : '',
      ];
    }
    case 'config': {
      if (r.cleared === true) return ['config', 'cleared'];
      const watch = Array.isArray(r.watch) ? r.watch.map((w) => text(obj(w).path) ?? '?') : [];
      return ['config', `r${num(r.revision) ?? '?'}`, `watch ${watch.length > 0 ? watch.join(', ') : '(none)'}`];
    }
    case 'gap':
      if (r.fromSeq === undefined) {
        // An agent's own announcement: a time window its watcher may have missed.
        const roots = Array.isArray(r.roots) ? r.roots.map((root) => text(root) ?? '?').join(', ') : '?';
        return ['gap', text(r.reason) ?? '', `${text(r.since) ?? '?'} .. ${text(r.until) ?? '?'}`, `rescanning ${roots}`];
      }
      return ['gap', `epoch ${text(r.epoch) ?? '?'}`, `seq ${num(r.fromSeq) ?? '?'}-${num(r.toSeq) ?? '?'}`, text(r.reason) ?? ''];
    case 'alert':
      return ['alert', text(r.state) ?? '', text(r.severity) ?? '', text(r.rule) ?? '', `x${num(r.count) ?? '?'}`, text(r.summary) ?? ''];
    default:
      return [text(r.record) ?? 'record', text(r.topic) ?? ''];
  }
}
