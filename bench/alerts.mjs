#!/usr/bin/env node
// The alerts scenario alone (issue 14): node bench/alerts.mjs [--writes N] [--files N] [--json FILE]
// Write → webhook latency (p50/p99) over N single-file incidents, then a mass delete of --files files
// (default 10,000) under a threshold rule: how many alerts it makes. Needs the build (pnpm build).
// Also: node bench/run.mjs --only alerts.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { alertsMarkdown, alertsScenario, alertsTargets } from './scenarios/alerts.mjs';

const { values: flags } = parseArgs({
  options: {
    writes: { type: 'string', default: '200' },
    files: { type: 'string', default: '10000' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: node bench/alerts.mjs [--writes N] [--files N] [--json FILE]\n');
  process.exit(0);
}
const started = Date.now();
const progress = (text) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
const result = await alertsScenario({ writes: Number(flags.writes), massDelete: { files: Number(flags.files), threshold: 100 }, progress });
const targets = alertsTargets(result);
if (flags.json) await writeFile(flags.json, `${JSON.stringify({ ...result, targets }, null, 2)}\n`);
process.stdout.write(`${alertsMarkdown(result)}\n\n${targets.map((t) => `- ${t.name}: ${t.measured.median} (${t.bound}) ${t.met ? 'met' : 'NOT MET'}`).join('\n')}\n`);
process.exitCode = targets.every((t) => t.met) ? 0 : 1;
