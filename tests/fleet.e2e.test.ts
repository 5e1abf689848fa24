import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from './helpers.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface FleetRun {
  broker: string;
  offered: number;
  recorded: number;
  lost: number;
  duplicated: number;
  drainMs: number | null;
  killedAtMs: number | null;
}

/** Runs bench/fleet.mjs (built bins, real processes) and returns its JSON. */
function runFleet(args: string[], out: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repo, 'bench', 'fleet.mjs'), ...args, '--json', out], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 170_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('a fleet on the embedded broker (issue 15), small: simulated agents on the real protocol, one recorder', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir('fso-fleet-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('loses and duplicates nothing when the broker (with --data-dir, and in memory) is SIGKILLed mid-burst and restarted', { timeout: 180_000 }, async () => {
    const out = path.join(tmp.path, 'fleet.json');
    const run = await runFleet(['--agents', '60', '--rate', '20', '--seconds', '4', '--brokers', 'data,memory', '--kill', '--drain-cap', '60'], out);
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const result = JSON.parse(await readFile(out, 'utf8')) as { runs: FleetRun[] };
    expect(result.runs.map((r) => r.broker)).toEqual(['fso-broker --data-dir', 'fso-broker (in memory)']);
    for (const r of result.runs) {
      expect(r.killedAtMs, `${r.broker} was killed`).not.toBeNull();
      expect(r.drainMs, `${r.broker}: every agent acked (${run.stderr.slice(-1500)})`).not.toBeNull();
      expect({ broker: r.broker, offered: r.offered, recorded: r.recorded, lost: r.lost, duplicated: r.duplicated }).toEqual({ broker: r.broker, offered: 60 * 20 * 4, recorded: 60 * 20 * 4, lost: 0, duplicated: 0 });
    }
  });
});
