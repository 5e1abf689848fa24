import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import type { Recorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { parseAgentConfig, startHealthServer } from '@fso/common';
import type { HealthServer, HealthState } from '@fso/common';
import { main as agentMain } from '../packages/agent/src/cli.js';
import { createTempDir, parseMetrics, waitFor } from './helpers.js';

const agentCli = fileURLToPath(new URL('../packages/agent/dist/cli.js', import.meta.url));

/** GET `url`/metrics, parsed (`name{labels}` → value). */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return parseMetrics(await res.text());
}

/** GET `url`/readyz: its status and the state it answers. */
async function readyz(url: string): Promise<{ status: number; state: HealthState }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, state: (await res.json()) as HealthState };
}

/** Waits until a scrape satisfies `check`; returns that scrape. */
const waitForMetrics = (url: string, check: (s: Map<string, number>) => boolean, what: string, timeoutMs = 20_000): Promise<Map<string, number>> =>
  waitFor(async () => {
    const s = await scrape(url);
    return check(s) ? s : undefined;
  }, what, timeoutMs, 50);

const value = (s: Map<string, number>, name: string): number => s.get(name) ?? Number.NaN;

describe('agent metrics and health (real broker on port 0, real agent and recorder, real temp dirs, scraped over HTTP)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let watched: string;
  let broker: Broker | undefined;
  let recorder: Recorder | undefined;
  let agent: Agent | undefined;
  let health: HealthServer | undefined;
  beforeEach(async () => {
    tmp = await createTempDir('fso-agent-metrics-');
    watched = path.join(tmp.path, 'watched');
    await mkdir(watched);
  });
  afterEach(async () => {
    await health?.close();
    await agent?.close();
    await recorder?.close();
    await broker?.close();
    health = agent = recorder = broker = undefined;
    await tmp.cleanup();
  });

  it('says not ready until the broker is there, then counts changes, first sends, resends, hashes, diffs and the outbox; a recorder empties it; readyz follows the broker', async () => {
    // A port known before its broker runs: the agent starts with nothing listening there.
    const probe = await startBroker({ port: 0 });
    const { port } = probe;
    await probe.close();
    agent = await startAgent({
      agentId: 'metrics-01', brokerUrl: `mqtt://127.0.0.1:${port}`, stateDir: path.join(tmp.path, 'state'), pairWindowMs: 100,
      // Soon enough that a resend (no ack progress without a recorder) comes within the test.
      resendIntervalMs: 300,
      initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 3, watch: [{ path: watched, important: ['**/*.conf'] }] }, 'test'),
    });
    const running = agent;
    health = await startHealthServer({ port: 0, registry: running.metrics, health: () => running.health() });
    const { url } = health;
    await running.ready();

    const before = await readyz(url);
    expect(before.status).toBe(503);
    expect(before.state).toEqual({ live: true, ready: false, reasons: ['broker not connected'] });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    let s = await scrape(url);
    expect(value(s, 'fso_agent_connected')).toBe(0);
    expect(value(s, 'fso_agent_watch_roots{state="ready"}')).toBe(1);
    expect(value(s, 'fso_agent_watch_roots{state="pending"}')).toBe(0);
    expect(value(s, 'fso_agent_config_revision')).toBe(3);
    expect(value(s, 'fso_agent_outbox_pending_messages')).toBe(0);

    broker = await startBroker({ port });
    await waitFor(async () => (await readyz(url)).status === 200, 'readyz 200 once the broker is up', 20_000, 50);
    expect((await readyz(url)).state).toEqual({ live: true, ready: true, reasons: [] });

    const files = ['a.txt', 'b.txt', 'c.txt', 'd.txt', 'app.conf'];
    for (const name of files) await writeFile(path.join(watched, name), `content of ${name}\n`);
    const n = files.length;
    s = await waitForMetrics(
      url,
      (m) => value(m, 'fso_agent_events_observed_total{type="create",origin="live"}') >= n && value(m, 'fso_agent_messages_published_total{kind="event"}') >= n,
      `${n} creates observed and their events published`,
    );
    expect(value(s, 'fso_agent_events_observed_total{type="delete",origin="live"}')).toBe(0);
    expect(value(s, 'fso_agent_hash_seconds_count')).toBeGreaterThanOrEqual(n);
    // app.conf is important: its diff is made in the worker and published.
    s = await waitForMetrics(url, (m) => value(m, 'fso_agent_messages_published_total{kind="diff"}') >= 1, 'the diff of app.conf published');
    expect(value(s, 'fso_agent_diff_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value(s, 'fso_agent_messages_published_total{kind="status"}')).toBeGreaterThanOrEqual(1);
    expect(value(s, 'fso_agent_connected')).toBe(1);
    expect(value(s, 'fso_agent_last_seq')).toBeGreaterThanOrEqual(n + 1);

    // No recorder: nothing is acknowledged, the outbox keeps every message, the oldest ages, and they are resent.
    s = await waitForMetrics(url, (m) => value(m, 'fso_agent_resends_total') >= 1 && value(m, 'fso_agent_ack_lag_seconds') > 0, 'a resend, and an ack lag');
    expect(value(s, 'fso_agent_acked_seq')).toBe(0);
    expect(value(s, 'fso_agent_outbox_pending_messages')).toBe(value(s, 'fso_agent_last_seq'));
    expect(value(s, 'fso_agent_outbox_pending_bytes')).toBeGreaterThan(0);
    expect(value(s, 'fso_agent_outbox_lost_messages_total')).toBe(0);
    expect(value(s, 'fso_agent_watch_overflows_total')).toBe(0);
    // Resends are not counted as publishes again.
    expect(value(s, 'fso_agent_messages_published_total{kind="event"}') + value(s, 'fso_agent_messages_published_total{kind="diff"}')).toBe(value(s, 'fso_agent_last_seq'));

    recorder = await startRecorder({ brokerUrl: broker.url, dir: path.join(tmp.path, 'audit'), clientId: 'fso-audit-metrics' });
    s = await waitForMetrics(
      url,
      (m) => value(m, 'fso_agent_outbox_pending_messages') === 0 && value(m, 'fso_agent_acked_seq') === value(m, 'fso_agent_last_seq'),
      'every message acknowledged by the recorder',
    );
    expect(value(s, 'fso_agent_ack_lag_seconds')).toBe(0);
    expect(value(s, 'fso_agent_outbox_pending_bytes')).toBe(0);

    await recorder.close();
    recorder = undefined;
    await broker.close();
    broker = undefined;
    const down = await waitFor(async () => {
      const r = await readyz(url);
      return r.status === 503 ? r.state : undefined;
    }, 'readyz 503 once the broker is gone', 20_000, 50);
    expect(down).toEqual({ live: true, ready: false, reasons: ['broker not connected'] });
    expect(value(await scrape(url), 'fso_agent_connected')).toBe(0);

    const closing = running.close();
    expect(await readyz(url)).toEqual({ status: 503, state: { live: false, ready: false, reasons: ['stopping'] } });
    expect((await fetch(`${url}/healthz`)).status).toBe(503);
    await closing;
  });

  it('names a watched root that is not ready yet in its reasons', async () => {
    broker = await startBroker({ port: 0 });
    const missing = path.join(tmp.path, 'not-yet');
    agent = await startAgent({
      agentId: 'metrics-02', brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), pairWindowMs: 100,
      initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched }, { path: missing }] }, 'test'),
    });
    const running = agent;
    health = await startHealthServer({ port: 0, registry: running.metrics, health: () => running.health() });
    const { url } = health;
    const state = await waitFor(async () => {
      const r = await readyz(url);
      return r.status === 503 && !r.state.reasons.includes('broker not connected') && (await scrape(url)).get('fso_agent_watch_roots{state="ready"}') === 1 ? r.state : undefined;
    }, 'readyz saying only the missing root is not ready', 20_000, 50);
    expect(state.reasons).toEqual([`watch ${missing} not ready: does not exist or is not a directory`]);
    expect(value(await scrape(url), 'fso_agent_watch_roots{state="pending"}')).toBe(1);

    await mkdir(missing);
    await waitFor(async () => (await readyz(url)).status === 200, 'readyz 200 once the missing root appeared and was scanned', 20_000, 50);
    const s = await scrape(url);
    expect(value(s, 'fso_agent_watch_roots{state="ready"}')).toBe(2);
    expect(value(s, 'fso_agent_watch_roots{state="pending"}')).toBe(0);
  });

  it('fso-agent --metrics-port 0 serves them from the bin, on loopback, and stops serving on SIGTERM (needs `pnpm build`)', async () => {
    broker = await startBroker({ port: 0 });
    const child = spawn(
      process.execPath,
      [agentCli, '--id', 'metrics-cli', '--watch', watched, '--state-dir', path.join(tmp.path, 'cli-state'), '--broker', broker.url, '--metrics-port', '0'],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: 'info' } },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await waitFor(() => {
        for (const line of stderr.split('\n')) {
          if (!line.startsWith('{')) continue;
          const record = JSON.parse(line) as { msg?: string; url?: string };
          if (record.msg?.startsWith('metrics on ') && record.url) return record.url;
        }
        return undefined;
      }, 'the "metrics on" log line of fso-agent', 15_000);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await waitFor(async () => (await readyz(url)).status === 200, 'readyz 200 from the bin', 20_000, 50);
      await writeFile(path.join(watched, 'from-cli.txt'), 'x');
      await waitForMetrics(
        url,
        (m) => value(m, 'fso_agent_events_observed_total{type="create",origin="live"}') === 1 && value(m, 'fso_agent_messages_published_total{kind="event"}') === 1,
        'the create counted by the bin',
      );
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });

  it('refuses a --metrics-port that is not a port, before starting anything', async () => {
    const state = path.join(tmp.path, 'never');
    expect(await agentMain(['--id', 'metrics-bad', '--watch', watched, '--state-dir', state, '--metrics-port', 'http'])).toBe(2);
    expect(await agentMain(['--id', 'metrics-bad', '--watch', watched, '--state-dir', state, '--metrics-port', '70000'])).toBe(2);
  });
});
