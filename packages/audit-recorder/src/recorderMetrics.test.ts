import path from 'node:path';
import { createTopics, startHealthServer } from '@fso/common';
import type { HealthServer } from '@fso/common';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, parseMetrics, waitFor } from '../../../tests/helpers.js';
import { main } from './cli.js';
import { startRecorder } from './recorder.js';
import type { Recorder } from './recorder.js';
import { makeEvent } from './testing/messages.js';
import { captureOutput } from './testing/output.js';
import { startTestBroker } from './testing/testBroker.js';
import type { TestBroker } from './testing/testBroker.js';

const topics = createTopics();
let broker: TestBroker;
let tmp: { path: string; cleanup: () => Promise<void> };
let recorder: Recorder | undefined;
let health: HealthServer | undefined;

beforeEach(async () => {
  broker = await startTestBroker();
  tmp = await createTempDir('fso-recorder-metrics-');
});
afterEach(async () => {
  await health?.close();
  await recorder?.close();
  await broker.close();
  await tmp.cleanup();
});

describe('recorder metrics and health', () => {
  it('counts what it wrote and acked, and says ready only while connected', async () => {
    recorder = await startRecorder({ brokerUrl: broker.url, dir: path.join(tmp.path, 'audit'), clientId: 'fso-audit-metrics', connectTimeoutMs: 2_000 });
    health = await startHealthServer({ port: 0, registry: recorder.metrics, health: () => recorder?.health() ?? { live: false, ready: false, reasons: [] } });
    expect((await fetch(`${health.url}/readyz`)).status).toBe(200);

    const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    for (let seq = 1; seq <= 3; seq += 1) await publisher.publishAsync(topics.event('web-01', 'modify'), JSON.stringify(makeEvent('web-01', 'e1', seq)), { qos: 1 });
    await publisher.endAsync();
    const scrape = async (): Promise<Map<string, number>> => {
      const res = await fetch(`${health?.url}/metrics`);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return parseMetrics(await res.text());
    };
    const samples = await waitFor(async () => {
      const s = await scrape();
      return s.get('fso_recorder_acked_seq{agent="web-01"}') === 3 ? s : undefined;
    }, 'the ack of seq 3 in the metrics', 20_000, 100);
    expect(samples.get('fso_recorder_records_written_total{kind="events"}')).toBe(3);
    expect(samples.get('fso_recorder_records_written_total{kind="rejected"}')).toBe(0);
    expect(samples.get('fso_recorder_commit_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(samples.get('fso_recorder_connected')).toBe(1);
    expect(samples.get('fso_recorder_queue_messages')).toBe(0);
    expect(samples.has('fso_recorder_process_resident_memory_bytes')).toBe(true);

    await broker.close();
    const down = await waitFor(async () => {
      const res = await fetch(`${health?.url}/readyz`);
      return res.status === 503 ? ((await res.json()) as { live: boolean; reasons: string[] }) : undefined;
    }, 'readyz 503 once the broker is gone', 20_000, 100);
    expect(down.live).toBe(true);
    expect(down.reasons).toContain('not connected to the broker');
    expect((await fetch(`${health.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${health.url}/nothing`)).status).toBe(404);
  });

  it('refuses a --metrics-port that is not a port, before doing anything', async () => {
    const out = captureOutput();
    const code = await main(['record', '--dir', path.join(tmp.path, 'audit'), '--broker', broker.url, '--metrics-port', 'http'], { stdout: out.stream, stderr: out.stream });
    expect(code).toBe(2);
    expect(out.text()).toContain("'--metrics-port <n>' argument 'http' is invalid");
    expect(out.text()).toContain('use an integer from 0 to 65535');
  });
});
