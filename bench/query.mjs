#!/usr/bin/env node
// The query scenario alone (issue 13): node bench/query.mjs [--records N] [--reps N] [--keep DIR] [--json FILE]
// Generates a trail of N records (default 10,000,000: about 6 GiB of JSONL, a few minutes) with the
// recorder's own writer, builds its index, and times the searches in a read-only child process.
// --keep DIR keeps the trail (DIR/audit) and index (DIR/index) there, and reuses a trail of the same
// size on the next run; without it everything goes in a temp directory removed at the end.
// Needs the build (pnpm build). Also: node bench/run.mjs --only query.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { queryMarkdown, queryScenario, queryTargets } from './scenarios/query.mjs';

const { values: flags } = parseArgs({
  options: {
    records: { type: 'string', default: '10000000' },
    reps: { type: 'string', default: '20' },
    keep: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: node bench/query.mjs [--records N] [--reps N] [--keep DIR] [--json FILE]\n');
  process.exit(0);
}
const started = Date.now();
const progress = (text) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
const result = await queryScenario({ records: Number(flags.records), reps: Number(flags.reps), keep: flags.keep, progress });
const targets = queryTargets(result);
if (flags.json) await writeFile(flags.json, `${JSON.stringify({ ...result, targets }, null, 2)}\n`);
process.stdout.write(`${queryMarkdown(result)}\n\n${targets.map((t) => `- ${t.name}: ${t.measured.median} (${t.bound}) ${t.met ? 'met' : 'NOT MET'}`).join('\n')}\n`);
process.exitCode = targets.every((t) => t.met) ? 0 : 1;
