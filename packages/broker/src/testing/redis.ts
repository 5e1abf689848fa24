// Test support for this package's tests and tests/cluster.e2e.test.ts (kept out of the build by tsconfig.json).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'vitest';
import { freePort } from '../../../../tests/faultHarness.js';
import { waitFor } from '../../../../tests/helpers.js';

const REDIS = '/usr/bin/redis-server';

/** A real redis-server on a free port, nothing saved to disk. */
export async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  expect(existsSync(REDIS), `${REDIS} (Debian: redis-server; .ci/run installs it)`).toBe(true);
  const port = await freePort();
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  // A failed test's afterAll may not get as far as killing it (an agent.close() stuck on a dead node): the worker's exit does.
  process.once('exit', () => child.kill('SIGKILL'));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      }),
    `redis-server listening on ${port}`,
  );
  return { url: `redis://127.0.0.1:${port}`, child };
}
