import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startAlertDaemon } from '@fso/alerts';
import type { AlertDaemon } from '@fso/alerts';
import { startRecorder } from '@fso/audit-recorder';
import type { Recorder } from '@fso/audit-recorder';
import { globMatcher, verifyAuditDir } from '@fso/audit-trail';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { alertSchema, parseAgentConfig } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { writeTestAuthFile } from '../packages/broker/src/testing/auth.js';
import { createCollector, createTempDir, parseMetrics, readAuditLines, waitFor, waitForProgress } from './helpers.js';

const USERS = {
  agent: { username: 'web-01', password: 'pw-alert-agent-3e1', role: 'agent', agentId: 'web-01' },
  recorder: { username: 'rec', password: 'pw-alert-recorder-77c', role: 'recorder' },
  alerter: { username: 'alerts', password: 'pw-alert-alerter-5b0', role: 'alerter' },
  viewer: { username: 'view', password: 'pw-alert-viewer-a19', role: 'viewer' },
} as const;
const HOOK_KEY = 'a-webhook-secret-of-the-test-4f0c2a';

/** A webhook receiver that checks each request's signature as a receiver would, and keeps the alerts. */
async function startReceiver(): Promise<{ server: Server; url: string; alerts: FsoAlert[]; badSignatures: number }> {
  const state = { alerts: [] as FsoAlert[], badSignatures: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', HOOK_KEY).update(body).digest('hex')}`);
      const given = Buffer.from(String(req.headers['x-fso-signature-256'] ?? ''));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        state.badSignatures += 1;
        res.writeHead(401).end();
        return;
      }
      state.alerts.push(alertSchema.parse(JSON.parse(body.toString('utf8'))));
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(state, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` });
}

function rulesYaml(hookUrl: string, extra = ''): string {
  return `
targets:
  hook:
    type: webhook
    url: ${hookUrl}
    secretFile: hook.key
    timeout: 2s
rules:
  - id: conf-changed
    description: a config file changed
    severity: high
    when: change
    match: { path: "**/*.conf", important: true }
    notify: [hook]
  - id: mass-delete
    description: mass delete
    severity: critical
    when: change
    match: { type: delete, path: "**/bulk/**" }
    threshold: { count: 50, window: 1m }
    resolveAfter: 3s
    notify: [hook]
${extra}`;
}

describe('fso-alert on the real stack: agent → broker → fso-alert → webhook, and the alert in the trail', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let broker: Broker;
  let recorder: Recorder;
  let agent: Agent;
  let daemon: AlertDaemon;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let watched: string;
  let auditDir: string;
  let rulesFile: string;

  const received = (rule: string, state?: string): FsoAlert[] => receiver.alerts.filter((a) => a.rule === rule && (state === undefined || a.state === state));
  const auditAlerts = async (): Promise<Record<string, unknown>[]> => (await readAuditLines(auditDir)).filter((l) => l.record === 'alert');

  beforeAll(async () => {
    tmp = await createTempDir('fso-alerts-');
    watched = path.join(tmp.path, 'watched');
    auditDir = path.join(tmp.path, 'audit');
    await mkdir(watched);
    const pw = async (u: { username: string; password: string }): Promise<string> => {
      const file = path.join(tmp.path, `${u.username}.pw`);
      await writeFile(file, u.password, { mode: 0o600 });
      return file;
    };
    const authFile = await writeTestAuthFile(tmp.path, Object.values(USERS));
    broker = await startBroker({ port: 0, auth: { authFile } });
    recorder = await startRecorder({ brokerUrl: broker.url, dir: auditDir, username: USERS.recorder.username, passwordFile: await pw(USERS.recorder) });
    agent = await startAgent({
      agentId: 'web-01', brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), pairWindowMs: 100,
      username: USERS.agent.username, passwordFile: await pw(USERS.agent),
      // A heartbeat well inside the offline rule's `for` (3 s below), so only a stopped agent is "offline".
      statusIntervalMs: 250,
      initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }] }, 'test'),
    });
    await agent.ready();
    receiver = await startReceiver();
    await writeFile(path.join(tmp.path, 'hook.key'), HOOK_KEY, { mode: 0o600 });
    rulesFile = path.join(tmp.path, 'rules.yml');
    await writeFile(rulesFile, rulesYaml(receiver.url));
    daemon = await startAlertDaemon({
      rulesFile, brokerUrl: broker.url, username: USERS.alerter.username, passwordFile: await pw(USERS.alerter),
      auditDir, verifyIntervalMs: 500, tickMs: 100, retry: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    await waitFor(() => daemon.health().ready, 'fso-alert connected and subscribed');
  });

  afterAll(async () => {
    await daemon?.close();
    await agent?.close();
    await recorder?.close();
    await broker?.close();
    receiver?.server.close();
    await tmp?.cleanup();
  });

  it('a changed config file reaches the webhook, signed, and the alert is recorded once in the trail, which still verifies', async () => {
    await writeFile(path.join(watched, 'app.conf'), 'listen 80\n');
    const [alert] = await waitFor(() => (received('conf-changed').length > 0 ? received('conf-changed') : undefined), 'the conf-changed alert at the webhook');
    expect(alert).toMatchObject({ state: 'firing', severity: 'high', agentId: 'web-01', path: path.join(watched, 'app.conf'), key: `web-01:${path.join(watched, 'app.conf')}` });
    expect(alert?.samples[0]).toMatchObject({ what: 'create', path: path.join(watched, 'app.conf') });
    expect(receiver.badSignatures).toBe(0);
    const recorded = await waitFor(async () => (await auditAlerts()).find((r) => r.id === alert?.id), 'the alert in the audit trail');
    expect(recorded).toMatchObject({ record: 'alert', rule: 'conf-changed', topic: 'fso/alerts/conf-changed' });
    expect((await auditAlerts()).filter((r) => r.id === alert?.id)).toHaveLength(1);
    expect((await verifyAuditDir(auditDir)).ok).toBe(true);
  });

  it('a mass delete of 1,000 files is one firing alert, then one resolved alert counting all 1,000', async () => {
    const bulk = path.join(watched, 'bulk');
    await mkdir(bulk);
    const n = 1000;
    for (let i = 0; i < n; i++) await writeFile(path.join(bulk, `f${i}.dat`), `${i}\n`);
    const creates = async (): Promise<number> => (await readAuditLines(auditDir)).filter((l) => l.record === 'event' && l.type === 'create' && String(l.path).includes('/bulk/')).length;
    await waitForProgress(async () => (await creates()) >= n, creates, `${n} creates in the trail`);
    await rm(bulk, { recursive: true });
    // The deletes the rule matches (its own glob, applied to what the trail holds).
    const matches = globMatcher('**/bulk/**');
    const deletes = async (): Promise<number> => (await readAuditLines(auditDir)).filter((l) => l.record === 'event' && l.type === 'delete' && matches(String(l.path))).length;
    await waitForProgress(async () => (await deletes()) >= n, deletes, `${n} file deletes in the trail`);
    const resolved = await waitFor(() => received('mass-delete', 'resolved')[0], 'the mass-delete resolved alert', 20_000);
    expect(received('mass-delete', 'firing')).toHaveLength(1);
    expect(received('mass-delete', 'firing')[0]).toMatchObject({ severity: 'critical', key: 'web-01', count: 50 });
    // Every matching delete counted in the one incident.
    expect(resolved.count).toBe(await deletes());
    const inTrail = await waitFor(async () => {
      const rows = (await auditAlerts()).filter((r) => r.rule === 'mass-delete');
      return rows.length === 2 ? rows : undefined;
    }, 'both mass-delete alerts in the trail');
    expect(inTrail.map((r) => r.state)).toEqual(['firing', 'resolved']);
  });

  it('an invalid rules file is refused on reload and the running rules keep working; a valid one applies', async () => {
    await writeFile(rulesFile, rulesYaml(receiver.url, '  - id: broken\n    when: agent-offline\n'));
    const refused = await daemon.reload();
    expect(refused.ok).toBe(false);
    expect(refused.ok ? '' : refused.error.message).toContain('rules[2] (broken).for');
    const before = received('conf-changed').length;
    await writeFile(path.join(watched, 'second.conf'), 'x\n');
    await waitFor(() => received('conf-changed').length > before, 'an alert from the rules still running');

    await writeFile(rulesFile, rulesYaml(receiver.url, '  - id: offline\n    when: agent-offline\n    for: 3s\n    notify: [hook]\n'));
    expect(await daemon.reload()).toEqual({ ok: true, rules: 3 });
    const metrics = parseMetrics(await daemon.metrics.metrics());
    expect(metrics.get('fso_alert_rules_reloads_total{outcome="refused"}')).toBe(1);
    expect(metrics.get('fso_alert_rules_reloads_total{outcome="applied"}')).toBe(1);
    expect(metrics.get('fso_alert_rules')).toBe(3);
    expect(metrics.get('fso_alert_alerts_total{rule="mass-delete",state="firing"}')).toBe(1);
    expect(metrics.get('fso_alert_notifications_total{target="hook",outcome="sent"}')).toBeGreaterThanOrEqual(4);
    expect(metrics.get('fso_alert_trail_verified')).toBe(1);
  });

  it('a viewer sees alerts on MQTT; an agent that stops is reported offline after `for`', async () => {
    const viewer = await createCollector(broker.url.replace('mqtt://', `mqtt://${USERS.viewer.username}:${USERS.viewer.password}@`), 'fso/alerts/+');
    try {
      // The agent was online with a heartbeat every 250 ms: nothing fired before it stopped.
      expect(received('offline')).toEqual([]);
      await agent.close();
      const offline = await waitFor(() => received('offline', 'firing')[0], 'the offline alert at the webhook', 20_000);
      expect(offline).toMatchObject({ key: 'web-01', agentId: 'web-01' });
      await waitFor(() => viewer.messages.find((m) => m.topic === 'fso/alerts/offline'), "the offline alert on the viewer's subscription", 20_000);
    } finally {
      await viewer.close();
    }
  });
});
