import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHealthServer } from '@fso/common';
import { createTempDir, parseMetrics } from '../../../tests/helpers.js';
import { createTestBrokers } from '../../broker/src/testing/brokers.js';
import { USERS, writeTestAuthFile } from '../../broker/src/testing/auth.js';
import { startConsole } from './console.js';
import type { Console } from './console.js';
import { ConsoleStartError } from './errors.js';

const brokers = createTestBrokers();
let tmp: { path: string; cleanup: () => Promise<void> };
const consoles: Console[] = [];

beforeEach(async () => {
  tmp = await createTempDir('fso-console-unit-');
});
afterEach(async () => {
  await Promise.all(consoles.splice(0).map((c) => c.close()));
  await brokers.closeAll();
  await tmp.cleanup();
});

describe('startConsole', () => {
  it('refuses a non-loopback address in front of an open broker, with the reason, unless insecure', async () => {
    const open = await brokers.start();
    const options = { auditDir: tmp.path, brokerUrl: open.url, wsUrl: 'ws://127.0.0.1:1', host: '0.0.0.0', port: 0 };
    await expect(startConsole(options)).rejects.toThrow(ConsoleStartError);
    await expect(startConsole(options)).rejects.toThrow(/lets anyone in/);
    consoles.push(await startConsole({ ...options, insecure: true }));
  });

  it('serves a non-loopback address in front of a broker that checks logins', async () => {
    const closed = await brokers.start({ auth: { authFile: await writeTestAuthFile(tmp.path, [USERS.viewer]) } });
    const consoleServer = await startConsole({ auditDir: tmp.path, brokerUrl: closed.url, wsUrl: 'ws://127.0.0.1:1', host: '0.0.0.0', port: 0 });
    consoles.push(consoleServer);
    expect(consoleServer.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
  });

  it('serves the app with a strict CSP and nothing outside its folder; close is idempotent', async () => {
    const open = await brokers.start();
    const consoleServer = await startConsole({ auditDir: tmp.path, brokerUrl: open.url, wsUrl: 'ws://127.0.0.1:8883', port: 0 });
    const page = await fetch(consoleServer.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain('connect-src \'self\' ws://127.0.0.1:8883');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect((await fetch(`${consoleServer.url}/vendor/mqtt.js`)).status).toBe(200);
    for (const escape of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/vendor/../../src/console.ts']) {
      expect((await fetch(`${consoleServer.url}${escape}`)).status, escape).toBe(404);
    }
    const first = consoleServer.close();
    expect(consoleServer.close()).toBe(first);
    await first;
  });

  it('counts requests by route and status, and logins by outcome, on its metrics', async () => {
    const open = await brokers.start();
    const consoleServer = await startConsole({ auditDir: tmp.path, brokerUrl: open.url, wsUrl: 'ws://127.0.0.1:8883', port: 0 });
    consoles.push(consoleServer);
    const health = await startHealthServer({ port: 0, registry: consoleServer.metrics, health: () => consoleServer.health() });
    try {
      await fetch(consoleServer.url);
      await fetch(`${consoleServer.url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await fetch(`${consoleServer.url}/api/records?limit=x`);
      await fetch(`${consoleServer.url}/api/${'x'.repeat(50)}`);
      const samples = parseMetrics(await (await fetch(`${health.url}/metrics`)).text());
      expect(samples.get('fso_console_http_requests_total{route="static",status="200"}')).toBe(1);
      expect(samples.get('fso_console_http_requests_total{route="POST /api/login",status="200"}')).toBe(1);
      expect(samples.get('fso_console_http_requests_total{route="GET /api/records",status="401"}')).toBe(1);
      expect(samples.get('fso_console_http_requests_total{route="unknown api",status="404"}')).toBe(1);
      expect(samples.get('fso_console_logins_total{outcome="accepted"}')).toBe(1);
      expect(samples.get('fso_console_sessions')).toBe(1);
      expect((await fetch(`${health.url}/readyz`)).status).toBe(200);
    } finally {
      await health.close();
    }
  });
});
