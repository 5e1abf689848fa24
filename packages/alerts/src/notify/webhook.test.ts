import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { FSO_VERSION } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { NotifyError, TargetConfigError } from '../errors.js';
import { rejection, testAlert } from '../testing/alert.js';
import { captureLog } from '../testing/capturedLog.js';
import { createTestCerts } from '../testing/certs.js';
import { createDispatcher } from './dispatcher.js';
import type { NotifyOutcome } from './notifier.js';
import { createNotifier, targetSchema } from './targets.js';

const KEY = 'hook-key-9f2c61d0';

/** One request the receiver got, and what it made of it. */
interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The signature checked as a receiver does: HMAC of the raw body, compared in constant time. */
  verified: boolean;
  status: number;
}

/** A real webhook receiver (http, or https with `tls`) that checks signatures with `KEY` and answers as `answer` says. */
async function startReceiver(options: { answer?: (n: number) => number | 'hang'; tls?: { cert: string; key: string } } = {}) {
  const received: Received[] = [];
  const connections = new Set<Socket>();
  let closedConnections = 0;
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const answer = options.answer?.(received.length + 1) ?? 204;
      received.push({ headers: req.headers, body, verified: verify(req.headers, body, KEY), status: answer === 'hang' ? 0 : answer });
      if (answer !== 'hang') res.writeHead(answer).end();
    });
  };
  const server = options.tls ? https.createServer({ cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key) }, handler) : http.createServer(handler);
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections.add(socket);
    socket.on('close', () => {
      connections.delete(socket);
      closedConnections += 1;
    });
  });
  // Only the client ends a kept-alive connection in these tests (Node's server would after 5 s idle).
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    received,
    openConnections: () => connections.size,
    closedConnections: () => closedConnections,
  };
}

/** What a receiver does: recompute `sha256=<hex HMAC>` over the exact body bytes and compare in constant time. */
function verify(headers: IncomingHttpHeaders, body: Buffer, key: string): boolean {
  const given = Buffer.from(String(headers['x-fso-signature-256'] ?? ''));
  const expected = Buffer.from(`sha256=${createHmac('sha256', key).update(body).digest('hex')}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

let tmp: { path: string; cleanup: () => Promise<void> };
const closers: Array<() => Promise<unknown>> = [];
beforeEach(async () => {
  tmp = await createTempDir('fso-webhook-');
  await writeFile(path.join(tmp.path, 'hook.key'), `${KEY}\n`);
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tmp.cleanup();
});

const context = (log = captureLog().log) => ({ baseDir: tmp.path, env: {} as NodeJS.ProcessEnv, log });

async function hook(name: string, raw: Record<string, unknown>) {
  const notifier = await createNotifier(name, targetSchema.parse({ type: 'webhook', ...raw }), context());
  closers.push(() => notifier.close());
  return notifier;
}


describe('webhook', () => {
  it('signs the exact body: 500, 500, then 200 through the dispatcher; the receiver takes it exactly once', async () => {
    const receiver = await startReceiver({ answer: (n) => (n <= 2 ? 500 : 200) });
    const notifier = await hook('ops', { url: `http://127.0.0.1:${receiver.port}/fso`, secretFile: 'hook.key' });
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({
      notifiers: [notifier], log: captureLog().log, retry: { initialDelayMs: 20, maxDelayMs: 100 }, onOutcome: (target, outcome) => outcomes.push(`${target}:${outcome}`),
    });
    closers.push(() => dispatcher.close());
    const alert = testAlert();
    dispatcher.dispatch(['ops'], alert);
    await waitFor(() => outcomes.includes('ops:sent'), 'the outcome sent for the webhook');
    await dispatcher.close();

    expect(outcomes).toEqual(['ops:retried', 'ops:retried', 'ops:sent']);
    expect(receiver.received.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(receiver.received.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of receiver.received) {
      expect(r.verified).toBe(true);
      expect(JSON.parse(r.body.toString('utf8')) as FsoAlert).toEqual(alert);
      expect(r.headers).toMatchObject({ 'content-type': 'application/json', 'x-fso-alert-id': alert.id, 'x-fso-timestamp': alert.at, 'user-agent': `fso-alert/${FSO_VERSION}` });
    }
    // The check can fail: under another key, or over other bytes, the same signature does not verify.
    const [first] = receiver.received;
    expect(verify(first?.headers ?? {}, first?.body ?? Buffer.alloc(0), 'another-key')).toBe(false);
    expect(verify(first?.headers ?? {}, Buffer.from(`${first?.body.toString('utf8') ?? ''} `), KEY)).toBe(false);
  });

  it('cuts a receiver that accepts and never answers at its timeout, retryable, and closes that connection', async () => {
    const receiver = await startReceiver({ answer: () => 'hang' });
    const notifier = await hook('hung', { url: `http://127.0.0.1:${receiver.port}/`, timeout: '300ms' });
    const started = performance.now();
    const err = await rejection(notifier.send(testAlert()));
    const elapsed = performance.now() - started;
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ target: 'hung', targetType: 'webhook', retryable: true, status: undefined, message: expect.stringContaining('no answer within 300 ms') });
    // The target's 300 ms, not the 5 s default: it cannot fire early, and it did fire.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(4000);
    expect(receiver.received).toHaveLength(1);
    await waitFor(() => receiver.closedConnections() === 1 && receiver.openConnections() === 0, 'the hung connection closed by the client');
  });

  it('a 400 is final: NotifyError retryable=false, and the dispatcher does not retry it', async () => {
    const receiver = await startReceiver({ answer: () => 400 });
    const direct = await hook('direct', { url: `http://127.0.0.1:${receiver.port}/` });
    const err = await rejection(direct.send(testAlert()));
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ retryable: false, status: 400, message: expect.stringContaining('HTTP 400') });

    const notifier = await hook('bad', { url: `http://127.0.0.1:${receiver.port}/` });
    const outcomes: NotifyOutcome[] = [];
    const captured = captureLog();
    const dispatcher = createDispatcher({ notifiers: [notifier], log: captured.log, retry: { initialDelayMs: 20, maxDelayMs: 100 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['bad'], testAlert());
    await waitFor(() => outcomes.includes('failed'), 'the 400 given up by the dispatcher');
    await dispatcher.close();
    expect(outcomes).toEqual(['failed']);
    expect(receiver.received).toHaveLength(2); // one by the direct send, one by the dispatcher
    expect(captured.lines().some((l) => l.msg === 'notification to bad failed for good')).toBe(true);
  });

  it('tells retryable statuses from final ones (RFC 9110: 408, 429 and 5xx may succeed later)', async () => {
    const statuses = [408, 429, 500, 502, 503, 504, 400, 401, 403, 404, 410, 422, 200, 201, 204];
    const receiver = await startReceiver({ answer: (n) => statuses[n - 1] ?? 500 });
    const notifier = await hook('table', { url: `http://127.0.0.1:${receiver.port}/` });
    const seen: Array<[number, boolean | 'sent']> = [];
    for (const status of statuses) {
      const err = await notifier.send(testAlert()).then(
        () => undefined,
        (e: unknown) => e,
      );
      seen.push([status, err === undefined ? 'sent' : (err as NotifyError).retryable]);
      if (err !== undefined) expect(err).toMatchObject({ status });
    }
    expect(seen).toEqual([
      [408, true], [429, true], [500, true], [502, true], [503, true], [504, true],
      [400, false], [401, false], [403, false], [404, false], [410, false], [422, false],
      [200, 'sent'], [201, 'sent'], [204, 'sent'],
    ]);
  });

  it('passes custom headers; without a secret the body is not signed; close() releases the kept-alive connection', async () => {
    const receiver = await startReceiver();
    const notifier = await hook('team', { url: `http://127.0.0.1:${receiver.port}/in`, headers: { 'X-Team': 'storage', Authorization: 'Bearer from-the-receiver' } });
    await notifier.send(testAlert());
    await notifier.send(testAlert());
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[0]?.headers).toMatchObject({ 'x-team': 'storage', authorization: 'Bearer from-the-receiver', 'content-type': 'application/json' });
    expect(receiver.received[0]?.headers['x-fso-signature-256']).toBeUndefined();
    // Both requests went over one kept-alive connection, which close() ends.
    expect(receiver.openConnections()).toBe(1);
    const closing = notifier.close();
    expect(notifier.close()).toBe(closing);
    await closing;
    await waitFor(() => receiver.openConnections() === 0, 'the kept-alive connection closed by close()');
    expect(receiver.closedConnections()).toBe(1);
    // A closed notifier sends nothing more: a new connection would be one that nothing closes.
    expect(await rejection(notifier.send(testAlert()))).toMatchObject({ name: 'NotifyError', retryable: false, message: expect.stringContaining('closed') });
    expect(receiver.received).toHaveLength(2);
  });

  it('refuses in the rules file a header that would override its own, a line break in a header, a non-http URL and caFile on http', () => {
    for (const name of ['content-type', 'Content-Type', 'Content-Length', 'Host', 'X-FSO-Signature-256', 'x-fso-alert-id', 'X-FSO-Timestamp']) {
      const result = targetSchema.safeParse({ type: 'webhook', url: 'http://hooks.example/', headers: { [name]: 'text/plain' } });
      expect(result.success, name).toBe(false);
      expect(result.error?.issues[0]).toMatchObject({ path: ['headers'], message: expect.stringContaining('may not set content-type') });
    }
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://hooks.example/', headers: { 'x-team': 'a\r\nx-fso-alert-id: forged' } }).error?.issues[0]?.message).toMatch(/without line breaks/);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'ftp://hooks.example/' }).success).toBe(false);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://hooks.example/', caFile: 'ca.pem' }).error?.issues[0]).toMatchObject({ path: ['caFile'], message: expect.stringMatching(/caFile is for an https/) });
  });

  it('reaches an https receiver whose certificate a private CA signed (caFile); without that CA it is refused', async () => {
    const certs = await createTestCerts(tmp.path);
    const receiver = await startReceiver({ tls: { cert: certs.serverCert, key: certs.serverKey } });
    const url = `https://127.0.0.1:${receiver.port}/fso`;
    const trusted = await hook('tls', { url, secretFile: 'hook.key', caFile: path.basename(certs.caCert) });
    const alert = testAlert();
    await trusted.send(alert);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ verified: true, status: 204 });
    expect(receiver.received[0]?.headers['x-fso-alert-id']).toBe(alert.id);

    for (const [name, extra] of [['system-cas', {}], ['other-ca', { caFile: certs.otherCaCert }]] as const) {
      const untrusted = await hook(name, { url, ...extra });
      const err = await rejection(untrusted.send(testAlert()));
      expect(err, name).toBeInstanceOf(NotifyError);
      expect((err as NotifyError).message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
    }
    // Nothing reached the receiver from the clients that did not trust it.
    expect(receiver.received).toHaveLength(1);
  });

  it('reads its key from the environment; an unset variable or an unreadable CA file names the target and field', async () => {
    const receiver = await startReceiver();
    const spec = targetSchema.parse({ type: 'webhook', url: `http://127.0.0.1:${receiver.port}/`, secretEnv: 'FSO_HOOK_KEY' });
    const notifier = await createNotifier('env', spec, { ...context(), env: { FSO_HOOK_KEY: KEY } });
    closers.push(() => notifier.close());
    await notifier.send(testAlert());
    expect(receiver.received[0]?.verified).toBe(true);

    const unset = await rejection(createNotifier('env', spec, context()));
    expect(unset).toBeInstanceOf(TargetConfigError);
    expect(unset).toMatchObject({ target: 'env', field: 'secretEnv', message: expect.stringContaining('FSO_HOOK_KEY is unset or empty') });
    const noCa = await rejection(createNotifier('ca', targetSchema.parse({ type: 'webhook', url: 'https://hooks.example/', caFile: 'missing-ca.pem' }), context()));
    expect(noCa).toMatchObject({ name: 'TargetConfigError', target: 'ca', field: 'caFile', message: expect.stringContaining('ENOENT') });
  });
});
