// Scenario 6 (issue 13): searching a large trail through its index. A trail
// of N records written by the recorder's own AuditWriter (bench/lib/trailGen.mjs),
// its index built from scratch in a child process (time, size, RSS), then in
// another child that opens the index read-only, as a serving process would:
// agent + 24 h, a glob with a literal prefix, a glob with a leading wildcard,
// text in path, a file's history, REPS times each (p50/p95, max RSS).
// Targets: p95 ≤ 1 s each, the query process's RSS ≤ 300 MB.
import { execFile } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO, tempDir } from '../lib/processes.mjs';
import { generateTrail } from '../lib/trailGen.mjs';

const run = promisify(execFile);
const CHILD = path.join(REPO, 'bench', 'lib', 'queryChild.mjs');

async function child(...args) {
  const { stdout } = await run(process.execPath, [CHILD, ...args.map(String)], { maxBuffer: 16 * 2 ** 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1));
}

async function dirBytes(dir) {
  let bytes = 0;
  for (const name of await readdir(dir)) bytes += (await stat(path.join(dir, name))).size;
  return bytes;
}

/** Runs the scenario; `keep` is a directory whose trail (audit/) is reused when it matches, and kept afterwards. */
export async function queryScenario({ records, reps = 20, keep, progress = () => {} }) {
  const tmp = keep ? undefined : await tempDir('query');
  const root = keep ?? tmp.path;
  try {
    const auditDir = path.join(root, 'audit');
    const indexDir = path.join(root, 'index');
    const trail = await generateTrail(auditDir, { records, progress });
    const trailBytes = (await dirBytes(auditDir));
    progress(`trail: ${records.toLocaleString('en')} records, ${(trailBytes / 2 ** 30).toFixed(2)} GiB${trail.reused ? ' (reused)' : ` in ${(trail.generateMs / 1000).toFixed(0)} s`}`);
    await rm(indexDir, { recursive: true, force: true });
    const build = await child('build', auditDir, indexDir);
    const indexBytes = await dirBytes(indexDir);
    progress(`index: built in ${(build.buildMs / 1000).toFixed(1)} s, ${(indexBytes / 2 ** 20).toFixed(0)} MiB, builder max RSS ${build.maxRssMb} MB`);
    const queried = await child('query', auditDir, indexDir, reps);
    for (const [name, q] of Object.entries(queried.byQuery)) progress(`${name}: p50 ${q.p50} ms, p95 ${q.p95} ms`);
    progress(`query process max RSS ${queried.maxRssMb} MB`);
    return {
      records, reps, trailBytes, counts: trail.counts,
      build: { ms: build.buildMs, added: build.added, indexBytes, maxRssMb: build.maxRssMb },
      query: { openMs: queried.openMs, byQuery: queried.byQuery, maxRssMb: queried.maxRssMb },
      kept: keep ?? null,
    };
  } finally {
    await tmp?.cleanup();
  }
}

/** The scenario's targets: p95 ≤ 1 s for each query, RSS ≤ 300 MB. */
export function queryTargets(result) {
  const worst = Math.max(...Object.values(result.query.byQuery).map((q) => q.p95));
  return [
    { name: `query p95, worst of 5 kinds (${result.records.toLocaleString('en')} records)`, measured: { median: worst }, bound: '≤ 1000 ms', met: worst <= 1000 },
    { name: 'query process max RSS (MB)', measured: { median: result.query.maxRssMb }, bound: '≤ 300 MB', met: result.query.maxRssMb <= 300 },
  ];
}

/** The scenario's markdown table. */
export function queryMarkdown(result) {
  const gib = (b) => (b / 2 ** 30).toFixed(2);
  const out = [
    `**Query** — ${result.records.toLocaleString('en')} records (${gib(result.trailBytes)} GiB of JSONL), index built from scratch in ${(result.build.ms / 1000).toFixed(1)} s, ${(result.build.indexBytes / 2 ** 20).toFixed(0)} MiB (builder max RSS ${result.build.maxRssMb} MB); queries in a read-only process (open ${result.query.openMs} ms, max RSS **${result.query.maxRssMb} MB**), ${result.reps} repetitions each:`,
    '',
    '| query | p50 ms | p95 ms | max ms | matches (min–max) |',
    '|---|---|---|---|---|',
  ];
  for (const [name, q] of Object.entries(result.query.byQuery)) out.push(`| ${name} | ${q.p50} | ${q.p95} | ${q.max} | ${q.matches.min.toLocaleString('en')}–${q.matches.max.toLocaleString('en')} |`);
  return out.join('\n');
}
