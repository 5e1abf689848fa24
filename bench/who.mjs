#!/usr/bin/env node
// The who-data scenario alone (issue 16): node bench/who.mjs [--files N] [--repeats N] [--json FILE]
// The agent's CPU per 1,000 changes with --who off and --who fanotify, in turns in one run (root only).
// Also: node bench/run.mjs --only who. Needs the build (pnpm build).
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { whoMarkdown, whoScenario } from './scenarios/who.mjs';

const { values: flags } = parseArgs({
  options: {
    files: { type: 'string', default: '2000' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write('usage: node bench/who.mjs [--files N] [--repeats N] [--json FILE]\n');
  process.exit(0);
}
const started = Date.now();
const progress = (text) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${text}\n`);
const result = await whoScenario({ files: Number(flags.files), repeats: Number(flags.repeats), progress });
if (flags.json) await writeFile(flags.json, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${whoMarkdown(result)}\n`);
process.exitCode = result.error || result.runs.some((r) => r.lost > 0 || r.duplicated > 0) ? 1 : 0;
