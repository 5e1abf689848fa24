import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from './helpers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Spread {
  min: number | null;
  median: number | null;
  max: number | null;
}
interface BenchResult {
  schema: string;
  mode: string;
  load: { start: number[]; end: number[] };
  scenarios: Record<string, { error?: string } & Record<string, unknown>>;
  targets: Array<{ name: string; bound: string; met: boolean; measured: unknown }>;
}

/** Runs the bench in its tiny mode (a few hundred files, one round) as `pnpm bench` would, against the built bins. */
function runTinyBench(out: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, 'bench', 'run.mjs'), '--tiny', '--out', out, '--no-docs'], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 150_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('pnpm bench (tiny mode): the benchmark still runs end to end', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir('fso-bench-smoke-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('runs every scenario with nothing lost or duplicated and writes well-formed JSON and a markdown table', { timeout: 180_000 }, async () => {
    const out = path.join(tmp.path, 'tiny.json');
    const run = await runTinyBench(out);
    expect(run.code, `bench exited ${run.code}\n${run.stderr.slice(-4000)}`).toBe(0);
    const result = JSON.parse(await readFile(out, 'utf8')) as BenchResult;
    expect(result).toMatchObject({ schema: 'fso.bench/1', mode: 'tiny' });
    expect(result.load.start).toHaveLength(3);
    expect(Object.keys(result.scenarios).sort()).toEqual(['diffs', 'latency', 'recorder', 'scale', 'throughput']);
    for (const [name, scenario] of Object.entries(result.scenarios)) expect(scenario.error, `${name} failed`).toBeUndefined();

    const throughput = result.scenarios.throughput as { lost: number; duplicatedById: number; duplicatedByPath: number; ratios: Record<string, Spread> };
    const why = JSON.stringify(result.scenarios.throughput).slice(0, 4000);
    expect([throughput.lost, throughput.duplicatedById, throughput.duplicatedByPath], `lost, duplicated by id, by path: ${why}`).toEqual([0, 0, 0]);
    expect(throughput.ratios.e2eOverChokidar?.median).toBeGreaterThan(0);
    expect(throughput.ratios.embeddedOverMosquitto?.median).toBeGreaterThan(0);
    const latency = result.scenarios.latency as { byRate: Record<string, { lost: number; duplicated: number; stages: Record<string, { n: number; p99: number }> }> };
    expect(latency.byRate['200'], JSON.stringify(latency.byRate['200'])).toMatchObject({ lost: 0, duplicated: 0 });
    expect(latency.byRate['200']?.stages.opToAudit?.n).toBeGreaterThan(200);
    const scale = result.scenarios.scale as { bySize: Array<{ files: number; agent: { watches: Spread; rss: Spread }; chokidar: { watches: Spread } }> };
    // The agent watches each directory (the root and 3 of 100 files), chokidar each file too.
    expect(scale.bySize[0]?.agent.watches.median).toBe(4);
    expect(scale.bySize[0]?.chokidar.watches.median).toBeGreaterThanOrEqual(300);
    expect(scale.bySize[0]?.agent.rss.median).toBeGreaterThan(0);
    const diffs = result.scenarios.diffs as { perFile: Record<string, { outcomes: string[] }>; interference: { lost: number } };
    expect(diffs.perFile['10KB 1%']?.outcomes[0]).toMatch(/^patch \+\d+ -\d+/);
    expect(diffs.interference.lost).toBe(0);
    expect(result.scenarios.recorder).toMatchObject({ missing: 0 });
    expect(result.targets.map((t) => t.name)).toEqual(expect.arrayContaining([expect.stringMatching(/chokidar/), expect.stringMatching(/Mosquitto/)]));
    for (const t of result.targets) expect(typeof t.met).toBe('boolean');
    expect(run.stdout).toMatch(/\| target \| measured/);
  });

  it.runIf(process.getuid?.() === 0)('the who-data scenario (bench/who.mjs): off, fanotify (and audit) side by side, nothing lost, every event attributed', { timeout: 120_000 }, async () => {
    const out = path.join(tmp.path, 'who.json');
    const run = spawnSync(process.execPath, [path.join(repo, 'bench', 'who.mjs'), '--files', '100', '--repeats', '1', '--json', out], { cwd: repo, encoding: 'utf8', timeout: 110_000 });
    expect(run.status, run.stderr.slice(-4000)).toBe(0);
    const result = JSON.parse(await readFile(out, 'utf8')) as { runs: Array<{ mode: string; changes: number; lost: number; duplicated: number; attributed: number; cpuMsPer1000: number }> };
    // audit too where auditd runs (.ci/run starts it).
    expect(result.runs.map((r) => r.mode).filter((m) => m !== 'audit').sort()).toEqual(['fanotify', 'off']);
    for (const r of result.runs) {
      expect([r.changes, r.lost, r.duplicated]).toEqual([300, 0, 0]);
      expect(r.attributed).toBe(r.mode === 'off' ? 0 : 300);
      expect(r.cpuMsPer1000).toBeGreaterThan(0);
    }
    expect(run.stdout).toMatch(/fanotify ÷ off, paired runs/);
    // Other processes' writes beside the watched directory, measured per mode too.
    const { others } = JSON.parse(await readFile(out, 'utf8')) as { others: Array<{ mode: string; others: number; cpuMsPer1000: number }> };
    expect(others.map((o) => o.mode).sort()).toEqual(result.runs.map((r) => r.mode).sort());
    for (const o of others) expect(o.others).toBe(300);
    expect(run.stdout).toMatch(/Other processes' writes beside the watched directory/);
  });
});
