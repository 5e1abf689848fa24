import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import type { Recorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { parseAgentConfig } from '@fso/common';
import { main as controllerMain } from '../packages/controller/src/cli.js';
import { writeTestAuthFile } from '../packages/broker/src/testing/auth.js';
import { createTempDir, readAuditLines, runCli, waitFor, waitForProgress } from './helpers.js';

const REDIS = '/usr/bin/redis-server';
const USERS = {
  agent: { username: 'web-01', password: 'pw-cluster-agent-8d2', role: 'agent', agentId: 'web-01' },
  recorder: { username: 'rec', password: 'pw-cluster-recorder-41a', role: 'recorder' },
  controller: { username: 'ops', password: 'pw-cluster-ops-0c7', role: 'controller' },
  viewer: { username: 'view', password: 'pw-cluster-viewer-e35', role: 'viewer' },
} as const;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A real redis-server on a free port, nothing saved to disk. */
async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  expect(existsSync(REDIS), `${REDIS} (Debian: redis-server; .ci/run installs it)`).toBe(true);
  const port = await freePort();
  const child = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  }), `redis-server listening on ${port}`);
  return { url: `redis://127.0.0.1:${port}`, child };
}

describe('two fso-broker nodes as one cluster over Redis (issue 15 §2)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let redis: { url: string; child: ChildProcess };
  let nodeA: Broker;
  let nodeB: Broker;
  let recorder: Recorder;
  let agent: Agent;
  let watched: string;
  let auditDir: string;
  const pw: Record<string, string> = {};

  beforeAll(async () => {
    tmp = await createTempDir('fso-cluster-');
    watched = path.join(tmp.path, 'watched');
    auditDir = path.join(tmp.path, 'audit');
    await mkdir(watched);
    for (const u of Object.values(USERS)) {
      pw[u.username] = path.join(tmp.path, `${u.username}.pw`);
      await writeFile(pw[u.username] as string, u.password, { mode: 0o600 });
    }
    const authFile = await writeTestAuthFile(tmp.path, Object.values(USERS));
    redis = await startRedis();
    nodeA = await startBroker({ port: 0, redisUrl: redis.url, auth: { authFile } });
    nodeB = await startBroker({ port: 0, redisUrl: redis.url, auth: { authFile } });
    recorder = await startRecorder({ brokerUrl: nodeB.url, dir: auditDir, username: USERS.recorder.username, passwordFile: pw.rec });
    // The agent knows both nodes: it connects to A, and to B when A is gone.
    agent = await startAgent({
      agentId: 'web-01', brokerUrl: `${nodeA.url},${nodeB.url}`, stateDir: path.join(tmp.path, 'state'), pairWindowMs: 50,
      username: USERS.agent.username, passwordFile: pw['web-01'], resendIntervalMs: 2000,
      initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched }] }, 'test'),
    });
    await agent.ready();
  });

  afterAll(async () => {
    await agent?.close();
    await recorder?.close();
    await nodeA?.close();
    await nodeB?.close();
    redis?.child.kill('SIGKILL');
    await tmp?.cleanup();
  });

  it('a config pushed on node B reaches the agent on node A, which applies it', async () => {
    const file = path.join(tmp.path, 'config.json');
    await writeFile(file, JSON.stringify({ schema: 'fso.config/1', revision: 5, watch: [{ path: watched, important: ['**/*.conf'] }] }));
    const push = await runCli(controllerMain, ['push', '--agent', 'web-01', '--file', file, '--timeout', '20', '--broker', nodeB.url, '--username', 'ops', '--password-file', pw.ops as string]);
    const text = push.stdout + push.stderr;
    const code = push.code;
    expect(code, text).toBe(0);
    expect(text).toMatch(/applied/);
  });

  it('logins and the ACL hold on every node: a viewer cannot publish a config on either', async () => {
    for (const node of [nodeA, nodeB]) {
      const viewer = await mqtt.connectAsync(node.url, { protocolVersion: 4, username: USERS.viewer.username, password: USERS.viewer.password, reconnectPeriod: 0 });
      const closed = new Promise<void>((resolve) => viewer.once('close', () => resolve()));
      viewer.publish('fso/agents/web-01/config', '{}', { qos: 1, retain: true });
      await closed;
      viewer.end(true);
      const wrong = await mqtt.connectAsync(node.url, { protocolVersion: 4, username: USERS.viewer.username, password: 'wrong', reconnectPeriod: 0 }).then(() => 'connected', (e: Error) => e.message);
      expect(wrong).toMatch(/Not authorized|Bad username or password/);
    }
  });

  it('node A stops mid-burst (its connections closed): the agent reconnects to node B, nothing is lost or written twice', async () => {
    const n = 600;
    const lines = async (): Promise<Array<Record<string, unknown>>> => (await readAuditLines(auditDir)).filter((l) => l.record === 'event' && String(l.path).includes('/burst-'));
    for (let i = 0; i < n / 2; i++) await writeFile(path.join(watched, `burst-${i}.txt`), `${i}\n`);
    // Half written: node A goes away with its connections (the agent's among them), the rest is written meanwhile.
    const closing = nodeA.close();
    for (let i = n / 2; i < n; i++) await writeFile(path.join(watched, `burst-${i}.txt`), `${i}\n`);
    await closing;
    const recorded = async (): Promise<number> => new Set((await lines()).map((l) => l.path)).size;
    await waitForProgress(async () => (await recorded()) >= n, recorded, `${n} files' creates in the trail through node B`, { stallMs: 60_000 });
    const events = await lines();
    const keys = events.map((e) => `${String(e.epoch)}:${String(e.seq)}`);
    expect(new Set(keys).size, 'no (epoch, seq) written twice').toBe(keys.length);
    expect(new Set(events.map((e) => e.path)).size).toBe(n);
    expect(agent.health().ready).toBe(true);
  });
});
