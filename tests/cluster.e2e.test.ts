import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
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
import { startRedis } from '../packages/broker/src/testing/redis.js';
import { BINS, assertBuilt, freePort, killAll, spawnDaemon } from './faultHarness.js';
import type { Daemon } from './faultHarness.js';
import { createTempDir, readAuditLines, runCli, waitFor, waitForProgress } from './helpers.js';

const USERS = {
  agent: { username: 'web-01', password: 'pw-cluster-agent-8d2', role: 'agent', agentId: 'web-01' },
  recorder: { username: 'rec', password: 'pw-cluster-recorder-41a', role: 'recorder' },
  controller: { username: 'ops', password: 'pw-cluster-ops-0c7', role: 'controller' },
  viewer: { username: 'view', password: 'pw-cluster-viewer-e35', role: 'viewer' },
} as const;

/**
 * `fso-broker --port 0 --redis URL ...args` as a child process (the built bin), so a test can SIGKILL it;
 * resolves with its URL once it listens.
 */
async function startNodeProcess(name: string, redisUrl: string, args: string[]): Promise<{ daemon: Daemon; url: string }> {
  const daemon = spawnDaemon(name, BINS.broker, ['--port', '0', '--redis', redisUrl, ...args]);
  const line = await daemon.waitForLog((l) => typeof l.url === 'string' && String(l.msg).startsWith('listening on'), `${name} listening`, 30_000);
  return { daemon, url: line.url as string };
}

describe('two fso-broker nodes as one cluster over Redis (issue 15 §2)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let redis: { url: string; child: ChildProcess };
  // Node A is a child process (the one SIGKILLed below), node B in this process.
  let nodeA: { daemon: Daemon; url: string };
  let nodeB: Broker;
  /** Client ids connected to node B right now. */
  const onNodeB = new Set<string>();
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
    assertBuilt();
    const authFile = await writeTestAuthFile(tmp.path, Object.values(USERS));
    redis = await startRedis();
    nodeA = await startNodeProcess('node A', redis.url, ['--auth', authFile]);
    nodeB = await startBroker({ port: 0, redisUrl: redis.url, auth: { authFile } });
    nodeB.aedes.on('client', (client) => onNodeB.add(client.id));
    nodeB.aedes.on('clientDisconnect', (client) => onNodeB.delete(client.id));
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
    await killAll();
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

  // The waits inside fail when the work stalls; the test's own budget is only a backstop for a slow machine.
  it('node A is SIGKILLed mid-burst: the agent reconnects to node B, every create is in the trail once', { timeout: 300_000 }, async () => {
    const n = 600;
    const burst = async (): Promise<Array<Record<string, unknown>>> => (await readAuditLines(auditDir)).filter((l) => l.record === 'event' && String(l.path).includes('/burst-'));
    const recorded = async (): Promise<number> => new Set((await burst()).map((l) => l.path)).size;
    for (let i = 0; i < n / 2; i++) await writeFile(path.join(watched, `burst-${i}.txt`), `${i}\n`);
    // Killed once part of the first half has come through node A, the rest of it in the agent's outbox or in flight
    // there; nothing of node A's closes cleanly (no DISCONNECT, no will, its in-memory queues gone).
    await waitForProgress(async () => (await recorded()) >= n / 10, recorded, `${n / 10} of the burst's creates through node A before the kill`, { stallMs: 60_000 });
    expect(onNodeB.has('web-01'), 'the agent is on node A, not B, before the kill').toBe(false);
    const exit = await nodeA.daemon.kill('SIGKILL');
    expect(exit.signal, `node A ended ${JSON.stringify(exit)} before the SIGKILL:\n${nodeA.daemon.output().slice(-3000)}`).toBe('SIGKILL');
    const atKill = await recorded();
    for (let i = n / 2; i < n; i++) await writeFile(path.join(watched, `burst-${i}.txt`), `${i}\n`);
    await waitForProgress(async () => (await recorded()) >= n, recorded, `${n} files' creates in the trail through node B (${atKill} when node A was killed)`, { stallMs: 60_000 });
    const events = await burst();
    const keys = events.map((e) => `${String(e.epoch)}:${String(e.seq)}`);
    expect(keys.length - new Set(keys).size, 'no (epoch, seq) written twice').toBe(0);
    const creates = new Map<string, number>();
    for (const e of events) if (e.type === 'create') creates.set(String(e.path), (creates.get(String(e.path)) ?? 0) + 1);
    expect(creates.size, 'a create for every file').toBe(n);
    expect([...creates].filter(([, count]) => count !== 1), 'files whose create is in the trail more than once').toEqual([]);
    expect(onNodeB.has('web-01'), 'the agent is connected to node B').toBe(true);
    await waitFor(() => agent.health().ready, `the agent ready (${agent.health().reasons.join('; ')})`);
  });
});
