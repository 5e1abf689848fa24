// The query scenario's child process, so each part's memory is its own:
//   node bench/lib/queryChild.mjs build AUDIT INDEX         builds (or catches up) the index
//   node bench/lib/queryChild.mjs query AUDIT INDEX REPS    opens it read-only, runs the queries
// Prints one JSON object on stdout: timings (ms) and the process's max RSS.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './processes.mjs';
import { latencySummary } from './stats.mjs';

const trail = await import(path.join(process.env.BENCH_PACKAGES_ROOT ?? REPO, 'packages', 'audit-trail', 'dist', 'index.js'));
const [mode, auditDir, indexDir, repsArg] = process.argv.slice(2);
const DAY_MS = 86_400_000;

/** Peak resident set, MB: VmHWM (what the kernel saw), else resourceUsage's. */
function maxRssMb() {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return Math.round(Number(hwm ?? process.resourceUsage().maxRSS) / 1024);
}

if (mode === 'build') {
  const t0 = performance.now();
  const index = await trail.openTrailIndex({ auditDir, indexDir });
  const { added, rebuilt } = await index.catchUp();
  const buildMs = Math.round(performance.now() - t0);
  const stats = index.stats();
  await index.close();
  process.stdout.write(`${JSON.stringify({ buildMs, added, rebuilt, stats, maxRssMb: maxRssMb() })}\n`);
} else if (mode === 'query') {
  const reps = Number(repsArg ?? 20);
  const { options } = JSON.parse(readFileSync(path.join(auditDir, 'trail.json'), 'utf8'));
  const start = Date.parse(options.start);
  const t0 = performance.now();
  const index = await trail.openTrailIndex({ auditDir, indexDir, readOnly: true });
  const openMs = Math.round(performance.now() - t0);
  const agent = (i) => `host-${String((i * 37) % options.agents).padStart(3, '0')}`;
  const app = (i) => (i * 7) % options.apps;
  const queries = {
    'agent + 24 h (page of 100 + total)': (i) => {
      const since = start + ((i * 5) % ((options.days - 1) * 24)) * 3_600_000;
      return index.query({ agent: agent(i), since, until: since + DAY_MS, limit: 100 });
    },
    'glob with a literal prefix (/srv/app-N/**)': (i) => index.query({ path: `/srv/app-${app(i)}/**`, limit: 100 }),
    'glob with a leading wildcard (**/…)': (i) => index.query({ path: ['**/*.conf', '**/www-3/*.html', '**/f17.*', '**/logs-*/f1??.log'][i % 4], limit: 100 }),
    'text in path': (i) => index.query({ text: [`app-${app(i)}/data-`, 'f42.', `conf-${i % 10}/f1`, '.yml.1'][i % 4], limit: 100 }),
    "a file's history (through renames)": (i) => index.history(renamed[i % renamed.length]),
  };
  // History targets: names that renames gave, picked before the clock runs.
  const renamed = [];
  for (let i = 0; i < reps; i += 1) {
    const { records } = await index.query({ type: 'rename', path: `/srv/app-${app(i)}/conf-*/*`, offset: i, limit: 1 });
    if (records[0]) renamed.push(String(records[0].record.path));
  }
  if (renamed.length === 0) renamed.push('/srv/app-0/conf-0/f0.conf');
  const byQuery = {};
  for (const [name, run] of Object.entries(queries)) {
    const ms = [];
    const totals = [];
    for (let i = 0; i < reps; i += 1) {
      const q0 = performance.now();
      const result = await run(i);
      ms.push(performance.now() - q0);
      totals.push(Array.isArray(result) ? result.length : result.total);
    }
    byQuery[name] = { ...latencySummary(ms), matches: { min: Math.min(...totals), max: Math.max(...totals) } };
  }
  const stats = index.stats();
  await index.close();
  process.stdout.write(`${JSON.stringify({ openMs, byQuery, stats, maxRssMb: maxRssMb() })}\n`);
} else {
  process.stderr.write('usage: node bench/lib/queryChild.mjs build|query AUDIT INDEX [REPS]\n');
  process.exitCode = 2;
}
