import { createHash } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { auditFileName, dayOf } from '../auditFiles.js';
import type { AuditFileKind } from '../auditFiles.js';
import { GENESIS_HASH, sealLine } from '../chain.js';

/** Records of a generated trail, by file kind, in the order the recorder would write them. */
export interface GeneratedTrail {
  events: Array<Record<string, unknown>>;
  diffs: Array<Record<string, unknown>>;
}

/** Numbers in [0, 1), the same for the same seed: sha256 of a counter (as the agent's secret fixtures make theirs). */
function random(seed: number): () => number {
  let n = 0;
  return () => createHash('sha256').update(`${seed}/${(n += 1)}`).digest().readUInt32BE(0) / 2 ** 32;
}

/**
 * A trail as the recorder writes it, over several days and agents: creates,
 * modifies, deletes, file renames (some back to an earlier name), directory
 * renames, diffs (some in the same millisecond as their event), statuses,
 * gaps, an agent's config and the default config.
 */
export function generateTrail(options: { records: number; agents?: number; days?: number; seed?: number; start?: string }): GeneratedTrail {
  const { records, agents = 4, days = 3, seed = 7, start = '2026-11-01T00:00:00.000Z' } = options;
  const rnd = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const trail: GeneratedTrail = { events: [], diffs: [] };
  const startMs = Date.parse(start);
  const step = (days * 86_400_000) / records;
  let at = startMs;
  const live = new Map<string, Set<string>>();
  const seqs = new Map<string, number>();
  for (let i = 0; i < records; i += 1) {
    at += rnd() < 0.2 ? 0 : Math.ceil(rnd() * 2 * step); // Some records share a millisecond.
    const receivedAt = new Date(Math.min(at, startMs + days * 86_400_000 - 1)).toISOString();
    const agentId = `host-${Math.floor(rnd() * agents)}`;
    const seq = (seqs.get(agentId) ?? 0) + 1;
    seqs.set(agentId, seq);
    const paths = live.get(agentId) ?? new Set<string>();
    live.set(agentId, paths);
    const base = { agentId, epoch: 'e1', seq, receivedAt };
    const event = (type: string, p: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      schema: 'fso.event/1', id: `${agentId}-${seq}`, ...base, type, path: p, kind: 'file', size: Math.floor(rnd() * 1000), sha256: 'ab'.repeat(32),
      record: 'event', topic: `fso/agents/${agentId}/events/${type}`, ...extra,
    });
    const roll = rnd();
    const existing = [...paths];
    if (roll < 0.02) {
      trail.events.push({ schema: 'fso.status/1', agentId, state: 'online', epoch: 'e1', lastSeq: seq, record: 'status', topic: `fso/agents/${agentId}/status`, receivedAt });
    } else if (roll < 0.03) {
      trail.events.push({ agentId, epoch: 'e0', fromSeq: 1, toSeq: 5, reason: 'epoch-changed', record: 'gap', topic: `fso/agents/${agentId}/events/gap`, receivedAt });
    } else if (roll < 0.035) {
      const topic = rnd() < 0.5 ? 'fso/config/default' : `fso/agents/${agentId}/config`;
      trail.events.push({ schema: 'fso.config/1', revision: seq, watch: [{ path: '/srv' }], record: 'config', topic, receivedAt });
    } else if (roll < 0.05 && existing.length > 3) {
      // A directory rename: every known path below it moves with it.
      const dir = path.posix.dirname(pick(existing));
      const to = `${dir}-r${seq}`;
      trail.events.push(event('rename', to, { oldPath: dir, kind: 'directory', size: null, sha256: null }));
      for (const p of existing) if (p.startsWith(`${dir}/`)) {
        paths.delete(p);
        paths.add(to + p.slice(dir.length));
      }
    } else if (roll < 0.15 && existing.length > 0) {
      const from = pick(existing);
      // Some renames go back to a name the file had (a rotation and back).
      const to = rnd() < 0.3 && from.endsWith('.1') ? from.slice(0, -2) : `${from}.1`;
      if (paths.has(to)) continue;
      paths.delete(from);
      paths.add(to);
      trail.events.push(event('rename', to, { oldPath: from }));
    } else if (roll < 0.25 && existing.length > 0) {
      const p = pick(existing);
      paths.delete(p);
      trail.events.push(event('delete', p, { size: null, sha256: null }));
    } else if (roll < 0.6 && existing.length > 0) {
      const p = pick(existing);
      trail.events.push(event('modify', p));
      if (p.endsWith('.conf')) {
        trail.diffs.push({ schema: 'fso.diff/1', id: `${agentId}-${seq}d`, ...base, eventId: `${agentId}-${seq}`, path: p, format: 'unified', patch: '@@ -1 +1 @@\n-a\n+b\n', added: 1, removed: 1, skipped: null, record: 'diff', topic: `fso/agents/${agentId}/diffs` });
      }
    } else {
      const p = `/srv/app-${Math.floor(rnd() * 4)}/d${Math.floor(rnd() * 5)}/f${Math.floor(rnd() * 30)}.${pick(['conf', 'log', 'txt'])}`;
      if (paths.has(p)) continue;
      paths.add(p);
      trail.events.push(event('create', p));
    }
  }
  return trail;
}

/** Appends records to the `kind` chain of `dir` after `prevHash` (each to its day's file); returns the new chain tail. */
export async function appendChain(dir: string, kind: AuditFileKind, records: ReadonlyArray<Record<string, unknown>>, prevHash = GENESIS_HASH): Promise<string> {
  const byFile = new Map<string, string[]>();
  let prev = prevHash;
  for (const record of records) {
    const sealed = sealLine(record, prev);
    prev = sealed.hash;
    const name = auditFileName(kind, dayOf(String(record.receivedAt)));
    byFile.set(name, [...(byFile.get(name) ?? []), sealed.text]);
  }
  for (const [name, lines] of byFile) await appendFile(path.join(dir, name), `${lines.join('\n')}\n`, { mode: 0o600 });
  return prev;
}
