/**
 * Audit records as Elastic Common Schema documents, for SIEMs (Elastic,
 * OpenSearch, and anything that reads ECS through Filebeat, Vector or
 * Logstash): `fso-audit tail --format ecs` prints one per line. The mapping
 * is documented in docs/protocol.md ("ECS output"); this module is its only
 * implementation.
 */
import path from 'node:path';
import type { EntryKind, EventType } from '@fso/common';
import { agentOf, formatRecord } from './format.js';

/** The ECS version the documents follow (`ecs.version`). */
export const ECS_VERSION = '8.11.0';

/** An ECS document: nested objects, as Elasticsearch stores them. Absent values are left out, never null. */
export interface EcsDocument {
  '@timestamp': string;
  ecs: { version: string };
  message: string;
  event: EcsEvent;
  [field: string]: unknown;
}

/** The `event.*` fields every document has, and those it may have. */
export interface EcsEvent {
  kind: 'event' | 'state' | 'alert';
  category: string[];
  type: string[];
  action: string;
  module: 'fso';
  dataset: string;
  id?: string;
  sequence?: number;
  created?: string;
  ingested?: string;
  /** The audit line's `hash` (its seal in the hash chain): unique per line, a stable document id for a SIEM. */
  hash?: string;
  start?: string;
  end?: string;
  reason?: string;
  severity?: number;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : undefined);

/** A copy without undefined values (and without objects left empty), so a document never carries `"x": null` for "unknown". */
function compact<T extends Record<string, unknown>>(fields: T): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const inner = compact(value as Record<string, unknown>);
      if (Object.keys(inner).length > 0) out[key] = inner;
    } else {
      out[key] = value;
    }
  }
  return out as T;
}

/** ECS `event.type` and `event.action` of each FSO event type. A rename is a change: ECS has no "move" type. */
const EVENT_MAP: Record<EventType, { type: string; action: string }> = {
  create: { type: 'creation', action: 'created' },
  modify: { type: 'change', action: 'modified' },
  delete: { type: 'deletion', action: 'deleted' },
  rename: { type: 'change', action: 'renamed' },
};

/** ECS `file.type` is `file`, `dir` or `symlink`. */
const FILE_TYPES: Record<EntryKind, string> = { file: 'file', directory: 'dir', symlink: 'symlink' };

/**
 * `event.severity` of an FSO alert: the numbers Elastic Security gives its
 * own severities (low 21, medium 47, high 73, critical 99), so a SIEM sorts
 * FSO's alerts with the rest.
 */
const SEVERITY: Readonly<Record<string, number>> = { info: 1, low: 21, medium: 47, high: 73, critical: 99 };

/** `file.*` of a path: its name, directory and extension (the last one, no dot; none for a directory or a dot file). */
function fileFields(p: string | undefined, kind: string | undefined): Record<string, unknown> {
  if (p === undefined) return {};
  const name = path.posix.basename(p);
  const extension = kind === 'directory' ? '' : path.posix.extname(name).slice(1);
  return {
    path: p,
    name: name === '' ? undefined : name,
    directory: path.posix.dirname(p),
    extension: extension === '' ? undefined : extension,
    type: kind === undefined ? undefined : (FILE_TYPES[kind as EntryKind] ?? kind),
  };
}

/** `agent.*`, `host.name` and `related.hosts` of the agent a record is about, if any. */
function agentFields(record: Record<string, unknown>): Record<string, unknown> {
  const agentId = agentOf(record);
  if (agentId === undefined) return {};
  return {
    agent: { id: agentId, name: agentId, type: 'fso-agent' },
    // The agent id names the host in FSO (one agent per host, web-01…); the
    // status's `hostname` goes to host.hostname, so both are searchable.
    host: { name: agentId },
    related: { hosts: [agentId] },
  };
}

/** Deep merge of plain objects (later wins); arrays and scalars are replaced. */
function merge(...parts: Array<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      const prev = out[key];
      const both = typeof prev === 'object' && prev !== null && !Array.isArray(prev) && typeof value === 'object' && value !== null && !Array.isArray(value);
      out[key] = both ? merge(prev as Record<string, unknown>, value as Record<string, unknown>) : value;
    }
  }
  return out;
}

/** An id as ECS keeps it (a keyword string). */
const idText = (v: unknown): string | undefined => (typeof v === 'number' ? String(v) : undefined);

/**
 * `user.*` and `process.*` of an event's `who` (issue 16), as Auditbeat
 * fills them: the real user, `user.effective`, `user.audit` (the login
 * user), `user.group`, the process and its parent's pid.
 */
function whoFields(who: unknown): Record<string, unknown> {
  if (typeof who !== 'object' || who === null) return {};
  const w = who as Record<string, unknown>;
  const names = [text(w.user), text(w.euser), text(w.auser)].filter((n): n is string => n !== undefined);
  return {
    user: {
      id: idText(w.uid), name: text(w.user), group: { id: idText(w.gid) },
      effective: { id: idText(w.euid), name: text(w.euser) },
      audit: { id: idText(w.auid), name: text(w.auser) },
    },
    process: { pid: num(w.pid), executable: text(w.exe), name: text(w.comm), parent: { pid: num(w.ppid) } },
    related: { user: names.length > 0 ? [...new Set(names)] : undefined },
  };
}

/** The fields of each record kind that are not common to all. */
function specific(r: Record<string, unknown>): { event: Omit<EcsEvent, 'module'>; fields: Record<string, unknown> } {
  switch (r.record) {
    case 'event': {
      const type = text(r.type);
      const mapped = EVENT_MAP[type as EventType] ?? { type: 'info', action: type ?? 'unknown' };
      const sha256 = text(r.sha256);
      const important = r.important === true;
      return {
        event: { kind: 'event', category: ['file'], type: [mapped.type], action: mapped.action, dataset: 'fso.file' },
        fields: merge({
          file: { ...fileFields(text(r.path), text(r.kind)), size: num(r.size), mtime: text(r.mtime), hash: { sha256 } },
          related: { hash: sha256 === undefined ? undefined : [sha256] },
          // ECS labels are keyword strings.
          labels: { important: String(important) },
          // ECS has no field for where a renamed file was: file.target_path is a symlink's target.
          fso: { old_path: text(r.oldPath), root: text(r.root), origin: text(r.origin), important, hash_skipped: text(r.hashSkipped), who_missing: text(r.whoMissing) },
        }, whoFields(r.who)),
      };
    }
    case 'diff':
      // The change itself is its event's document; the diff tells about it, so it is `info`, not a second change.
      return {
        event: { kind: 'event', category: ['file'], type: ['info'], action: 'diffed', dataset: 'fso.diff' },
        fields: {
          file: fileFields(text(r.path), 'file'),
          fso: {
            diff: {
              event_id: text(r.eventId), format: text(r.format), patch: text(r.patch), added: num(r.added), removed: num(r.removed),
              skipped: text(r.skipped), redactions: Array.isArray(r.redactions) ? r.redactions : undefined,
            },
          },
        },
      };
    case 'status': {
      const config = obj(r.config);
      const state = text(r.state) ?? 'unknown';
      return {
        event: { kind: 'state', category: ['host'], type: ['info'], action: `agent-${state}`, dataset: 'fso.status' },
        fields: {
          agent: { version: text(r.version) },
          host: { hostname: text(r.hostname) },
          fso: {
            status: {
              state, last_seq: num(r.lastSeq),
              config: { revision: num(config.revision), state: text(config.state), error: text(config.error) },
              watching: strings(Array.isArray(r.watching) ? r.watching.map((w) => obj(w).path) : undefined),
            },
          },
        },
      };
    }
    case 'config': {
      const cleared = r.cleared === true;
      const watch = Array.isArray(r.watch) ? r.watch.map((w) => obj(w).path) : undefined;
      return {
        event: { kind: 'state', category: ['configuration'], type: [cleared ? 'deletion' : 'change'], action: cleared ? 'config-cleared' : 'config-set', dataset: 'fso.config' },
        fields: { fso: { config: { scope: agentOf(r) === undefined ? 'default' : 'agent', revision: num(r.revision), cleared, watch_paths: strings(watch) } } },
      };
    }
    case 'gap': {
      // A fact the trail records (what may be missing), not a detection: alerting
      // on gaps is fso-alert's rules' job, whose `alert` records are ECS alerts.
      const reason = text(r.reason);
      return {
        event: { kind: 'event', category: ['file'], type: ['info'], action: 'gap', dataset: 'fso.gap', reason, start: text(r.since), end: text(r.until) },
        fields: {
          fso: { gap: { reason, from_seq: num(r.fromSeq), to_seq: num(r.toSeq), roots: strings(r.roots), notifications: num(r.notifications) } },
        },
      };
    }
    case 'alert': {
      const state = text(r.state) ?? 'unknown';
      const rule = text(r.rule);
      return {
        event: {
          kind: 'alert', category: ['file'], type: ['info'], action: `alert-${state}`, dataset: 'fso.alert',
          severity: SEVERITY[text(r.severity) ?? ''], start: text(r.firstAt), end: text(r.lastAt),
        },
        fields: {
          rule: { id: rule, name: rule, description: text(r.summary) },
          file: fileFields(text(r.path), undefined),
          fso: {
            alert: {
              state, severity: text(r.severity), key: text(r.key), count: num(r.count), source: text(r.source),
              samples: Array.isArray(r.samples) ? r.samples : undefined,
            },
          },
        },
      };
    }
    default:
      return { event: { kind: 'event', category: [], type: ['info'], action: text(r.record) ?? 'unknown', dataset: 'fso.other' }, fields: {} };
  }
}

/**
 * Maps one audit record (a line of DIR/events-*.jsonl or diffs-*.jsonl,
 * parsed) to an ECS 8.x document. Pure: the same record gives the same
 * document. `@timestamp` is when the change was observed (`observedAt`;
 * the message's `at`, else `receivedAt`, for records without one),
 * `event.created` when the agent sent it, `event.ingested` when the
 * recorder received it, `event.hash` the line's seal in the hash chain
 * (unique per line: a document id that makes a replay idempotent); FSO's
 * own fields are under `fso.*`.
 *
 * @example
 * for await (const { record } of readAuditRecords('./audit')) {
 *   process.stdout.write(`${JSON.stringify(toEcs(record))}\n`); // → Filebeat, Vector, Logstash
 * }
 */
export function toEcs(record: Record<string, unknown>): EcsDocument {
  const { event: { kind, category, type, action, ...moreEvent }, fields } = specific(record);
  const timestamp = text(record.observedAt) ?? text(record.at) ?? text(record.receivedAt) ?? '';
  const common = {
    '@timestamp': timestamp,
    ecs: { version: ECS_VERSION },
    message: formatRecord(record),
    event: {
      kind,
      category,
      type,
      action,
      module: 'fso',
      ...moreEvent,
      id: text(record.id),
      sequence: num(record.seq),
      created: text(record.emittedAt),
      ingested: text(record.receivedAt),
      hash: text(record.hash),
    },
    fso: { record: text(record.record), topic: text(record.topic), epoch: text(record.epoch), seq: num(record.seq) },
  };
  // FSO's own namespace last, after the ECS fields a reader looks for first.
  const { fso, ...ecs } = merge(common, agentFields(record), fields);
  return compact({ ...ecs, fso }) as unknown as EcsDocument;
}
