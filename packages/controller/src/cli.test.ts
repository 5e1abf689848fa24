import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { startFakeAgent } from './testing/fakeAgent.js';

// The bin as users run it (built by `pnpm build`, which `pnpm test` runs first).
const bin = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

interface Spawned {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

function run(args: string[]): Spawned {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FSO_LOG_FORMAT: 'json' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    code: new Promise((resolve) => child.on('close', (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (signal) => child.kill(signal),
  };
}

let broker: Broker;
let dir: Awaited<ReturnType<typeof createTempDir>>;
beforeAll(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`pnpm build\` (or \`pnpm --filter @fso/controller build\`) first`);
  broker = await startBroker({ port: 0 });
  dir = await createTempDir('fso-controller-bin-');
});
afterAll(async () => {
  await broker?.close();
  await dir?.cleanup();
});

describe('the fso-controller bin', () => {
  it('runs main and exits with its code', async () => {
    const agent = await startFakeAgent({ url: broker.url, agentId: 'bin-01' });
    try {
      const agents = run(['agents', '--json', '--broker', broker.url]);
      expect(await agents.code).toBe(0);
      expect(JSON.parse(agents.stdout())).toMatchObject([{ agentId: 'bin-01', state: 'online' }]);

      const usage = run(['push', '--agent', 'bin-01']);
      expect(await usage.code).toBe(2);
      expect(usage.stderr()).toContain("required option '--file <config.json>' not specified");
    } finally {
      await agent.close();
    }
  });

  it('stops waiting on SIGINT and exits 130', async () => {
    const agent = await startFakeAgent({ url: broker.url, agentId: 'bin-02', silent: true });
    try {
      const file = path.join(dir.path, 'cfg.json');
      await writeFile(file, JSON.stringify({ schema: 'fso.config/1', revision: 1, watch: [] }));
      const push = run(['push', '--agent', 'bin-02', '--file', file, '--timeout', '60', '--broker', broker.url]);
      await waitFor(() => agent.received.length > 0, 'the config to reach the agent (the push is then waiting)');
      const started = Date.now();
      push.kill('SIGINT');
      expect(await push.code).toBe(130);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(push.stderr()).toContain('interrupted while waiting for messages on fso/agents/bin-02/status');
    } finally {
      await agent.close();
    }
  });
});
