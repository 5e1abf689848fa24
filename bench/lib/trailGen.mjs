// A large audit trail written by the recorder's own AuditWriter (the built
// packages/audit-recorder/dist), as the recorder writes it: several days of
// receivedAt, a few hundred agents, paths under a few thousand directories,
// creates, modifies, deletes, renames (files and directories), diffs of the
// important files, statuses, gaps. For the query scenario (issue 13).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO } from './processes.mjs';

const dist = (file) => path.join(process.env.BENCH_PACKAGES_ROOT ?? REPO, 'packages', 'audit-recorder', 'dist', file);
const DAY_MS = 86_400_000;
const EXTS = ['conf', 'log', 'txt', 'json', 'yml', 'html', 'js'];
const IMPORTANT = new Set(['conf', 'yml']);

/** A small seeded PRNG (mulberry32): the same trail for the same options. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a trail made by {@link generateTrail} holds; kept beside it (`trail.json`) so a kept trail is reused. */
export const TRAIL_INFO = 'trail.json';

/**
 * Writes `records` records into `dir` over `days` days from `start`, for
 * `agents` agents whose paths lie in `apps` × 50 directories. Returns what
 * it wrote; reuses `dir` when it already holds the same trail.
 */
export async function generateTrail(dir, { records, agents = 300, days = 5, apps = 60, start = '2026-11-01T00:00:00.000Z', seed = 13, progress = () => {} }) {
  const wanted = { records, agents, days, apps, start, seed };
  const infoFile = path.join(dir, TRAIL_INFO);
  const existing = await readFile(infoFile, 'utf8').then(JSON.parse, () => undefined);
  if (existing && JSON.stringify(existing.options) === JSON.stringify(wanted)) return { ...existing, reused: true };
  await mkdir(dir, { recursive: true });
  const { AuditWriter } = await import(dist('auditWriter.js'));
  const { AuditLedger } = await import(dist('ledger.js'));
  const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } };
  let failure;
  const writer = new AuditWriter({
    dir, ledger: new AuditLedger(), log: silent, commitIntervalMs: 1000, maxBatch: 20_000,
    onCommit: () => {}, onFail: (err) => (failure = err),
  });
  const rnd = random(seed);
  const int = (n) => Math.floor(rnd() * n);
  const startMs = Date.parse(start);
  const stepMs = (days * DAY_MS) / records;
  const seqs = new Array(agents).fill(0);
  const dirOf = () => `/srv/app-${int(apps)}/${['conf', 'logs', 'www', 'data', 'cache'][int(5)]}-${int(10)}`;
  const fileOf = () => `${dirOf()}/f${int(200)}.${EXTS[int(EXTS.length)]}`;
  const t0 = Date.now();
  const counts = { event: 0, diff: 0, status: 0, gap: 0 };
  let day = '';
  for (let i = 0; i < records; i += 1) {
    if (failure) throw failure;
    const at = new Date(startMs + Math.floor(i * stepMs)).toISOString();
    if (at.slice(0, 10) !== day) {
      // One day per commit: AuditFileSet closes a kind's file when the next day's opens, before the
      // commit's fsync of it (a batch across midnight fails its fsync: a recorder bug, reported).
      await writer.flush();
      day = at.slice(0, 10);
    }
    const a = int(agents);
    const agentId = `host-${String(a).padStart(3, '0')}`;
    const epoch = `ep${a.toString(36)}`;
    const roll = rnd();
    if (roll < 0.01) {
      const topic = `fso/agents/${agentId}/status`;
      writer.enqueue({
        type: 'record', file: 'events', record: 'status', topic, receivedAt: at, retained: true, agentId, epoch,
        fields: { schema: 'fso.status/1', agentId, state: 'online', hostname: agentId, version: '0.1.0', epoch, lastSeq: seqs[a], config: { revision: 1, state: 'applied', error: null }, watching: [{ path: '/srv', ready: true, entries: 1000 + i }], at },
      });
      counts.status += 1;
      continue;
    }
    const seq = (seqs[a] += 1);
    const common = { agentId, epoch, seq };
    if (roll < 0.011) {
      // An announced gap: the agent's own rescan window.
      writer.enqueue({ type: 'record', file: 'events', record: 'gap', topic: `fso/agents/${agentId}/events/gap`, receivedAt: at, retained: false, ...common, fields: { schema: 'fso.gap/1', ...common, reason: 'overflow', since: at, until: at, roots: ['/srv'] } });
      counts.gap += 1;
      continue;
    }
    let type = 'modify';
    let p = fileOf();
    let oldPath;
    let kind = 'file';
    if (roll < 0.012) {
      type = 'rename';
      oldPath = dirOf();
      p = `${oldPath}.old`;
      kind = 'directory';
    } else if (roll < 0.08) {
      type = 'rename';
      oldPath = p;
      p = rnd() < 0.5 ? `${p}.1` : fileOf();
    } else if (roll < 0.2) type = 'delete';
    else if (roll < 0.4) type = 'create';
    const ext = p.slice(p.lastIndexOf('.') + 1);
    const important = IMPORTANT.has(ext);
    const id = `${epoch}-${seq}`;
    const gone = type === 'delete' || kind === 'directory';
    writer.enqueue({
      type: 'record', file: 'events', record: 'event', topic: `fso/agents/${agentId}/events/${type}`, receivedAt: at, retained: false, ...common,
      fields: {
        schema: 'fso.event/1', id, ...common, type, path: p, ...(oldPath ? { oldPath } : {}), root: '/srv', kind,
        size: gone ? null : int(100_000), mtime: gone ? null : at, sha256: gone ? null : (i * 2654435761 % 2 ** 32).toString(16).padStart(8, '0').repeat(8),
        important, origin: 'live', observedAt: at, emittedAt: at,
      },
    });
    counts.event += 1;
    if (important && type === 'modify' && i + 1 < records) {
      i += 1;
      const dseq = (seqs[a] += 1);
      writer.enqueue({
        type: 'record', file: 'diffs', record: 'diff', topic: `fso/agents/${agentId}/diffs`, receivedAt: at, retained: false, agentId, epoch, seq: dseq,
        fields: { schema: 'fso.diff/1', id: `${epoch}-${dseq}`, agentId, epoch, seq: dseq, eventId: id, path: p, format: 'unified', patch: `--- a${p}\n+++ b${p}\n@@ -1,2 +1,2 @@\n-listen ${int(9000)}\n+listen ${int(9000)}\n keepalive on\n`, added: 1, removed: 1, skipped: null, observedAt: at, emittedAt: at },
      });
      counts.diff += 1;
    }
    if (i % 20_000 === 0) {
      await writer.flush();
      if (i % 500_000 === 0) progress(`trail: ${i.toLocaleString('en')} of ${records.toLocaleString('en')} records (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  await writer.close();
  if (failure) throw failure;
  const info = { options: wanted, counts, generateMs: Date.now() - t0 };
  await writeFile(infoFile, `${JSON.stringify(info, null, 2)}\n`);
  return { ...info, reused: false };
}
