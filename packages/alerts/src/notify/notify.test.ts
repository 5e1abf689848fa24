import { createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { createLogger } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { NotifyError, TargetConfigError } from '../errors.js';
import { createDispatcher } from './dispatcher.js';
import type { Notifier, NotifyOutcome } from './notifier.js';
import { formatCef, formatSyslog } from './syslog.js';
import { createNotifier, targetSchema } from './targets.js';

const alert = (over: Partial<FsoAlert> = {}): FsoAlert => ({
  schema: 'fso.alert/1', id: `mass-delete:x-${Math.random().toString(36).slice(2)}:firing`, rule: 'mass-delete', state: 'firing', severity: 'critical',
  key: 'web-01', summary: 'mass delete: 100 matching changes on web-01', agentId: 'web-01', path: '/srv/app', count: 100,
  firstAt: '2026-12-05T10:00:00.000Z', lastAt: '2026-12-05T10:00:01.000Z', samples: [], source: 'test', at: '2026-12-05T10:00:01.100Z', ...over,
});

let tmp: { path: string; cleanup: () => Promise<void> };
const closers: Array<() => Promise<unknown> | void> = [];
beforeEach(async () => {
  tmp = await createTempDir('fso-notify-');
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tmp.cleanup();
});

/** A logger whose every line is kept, at trace level, to search for secrets. */
function capturingLogger(): { log: ReturnType<typeof createLogger>; text: () => string } {
  let text = '';
  const destination = new Writable({ write: (chunk: Buffer, _e, cb) => ((text += chunk.toString()), cb()) });
  return { log: createLogger({ name: 'test', level: 'trace', destination }), text: () => text };
}

async function listen(server: Server | net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

const context = (log = capturingLogger().log) => ({ baseDir: tmp.path, env: { FSO_TEST_KEY: 'env-secret-0123456789' } as NodeJS.ProcessEnv, log });

describe('webhook', () => {
  it('signs the exact body with HMAC-SHA256, retries 5xx through the dispatcher, and delivers once', async () => {
    await writeFile(path.join(tmp.path, 'hook.key'), 'file-secret-abcdef\n');
    const seen: Array<{ status: number; verified: boolean; id: string }> = [];
    let calls = 0;
    const port = await listen(createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const expected = Buffer.from(`sha256=${createHmac('sha256', 'file-secret-abcdef').update(body).digest('hex')}`);
        const given = Buffer.from(String(req.headers['x-fso-signature-256']));
        calls += 1;
        const status = calls <= 2 ? 500 : 204;
        seen.push({ status, verified: given.length === expected.length && timingSafeEqual(given, expected), id: String(req.headers['x-fso-alert-id']) });
        res.writeHead(status).end();
      });
    }));
    const spec = targetSchema.parse({ type: 'webhook', url: `http://127.0.0.1:${port}/hook`, secretFile: 'hook.key', headers: { 'x-api-key': 'k' } });
    const notifier = await createNotifier('hook', spec, context());
    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [notifier], log: capturingLogger().log, retry: { initialDelayMs: 20, maxDelayMs: 100 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    const a = alert();
    dispatcher.dispatch(['hook'], a);
    await waitFor(() => outcomes.includes('sent'), 'the webhook delivered');
    expect(outcomes).toEqual(['retried', 'retried', 'sent']);
    expect(seen.map((s) => s.status)).toEqual([500, 500, 204]);
    expect(seen.every((s) => s.verified && s.id === a.id)).toBe(true);
  });

  it('cuts a receiver that never answers at the timeout (retryable), and does not retry a 400', async () => {
    const port = await listen(createServer(() => undefined));
    const hung = await createNotifier('hung', targetSchema.parse({ type: 'webhook', url: `http://127.0.0.1:${port}/`, timeout: '300ms' }), context());
    closers.push(() => hung.close());
    const err = await hung.send(alert()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringContaining('no answer within 300 ms') });

    let requests = 0;
    const badPort = await listen(createServer((_req, res) => ((requests += 1), res.writeHead(400).end())));
    const bad = await createNotifier('bad', targetSchema.parse({ type: 'webhook', url: `http://127.0.0.1:${badPort}/` }), context());
    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [bad], log: capturingLogger().log, retry: { initialDelayMs: 10 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['bad'], alert());
    await waitFor(() => outcomes.includes('failed'), 'the 400 given up');
    expect(requests).toBe(1);
    expect(outcomes).toEqual(['failed']);
  });

  it('refuses a plain secret and a header override in the rules file; reads a secret from the environment; names a missing secret file', async () => {
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://x/', secret: 's' }).error?.issues[0]?.message).toMatch(/use secretFile or secretEnv/);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://x/', headers: { 'Content-Type': 'text/plain' } }).success).toBe(false);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'ftp://x/' }).success).toBe(false);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://x/', headers: { 'x-team': 'a\r\nx-fso-alert-id: forged' } }).error?.issues[0]?.message).toMatch(/without line breaks/);
    expect(targetSchema.safeParse({ type: 'webhook', url: 'http://x/', caFile: 'ca.pem' }).error?.issues[0]?.message).toMatch(/caFile is for an https/);
    await expect(createNotifier('h', targetSchema.parse({ type: 'webhook', url: 'http://x/', secretEnv: 'FSO_TEST_KEY' }), context())).resolves.toBeDefined();
    await expect(createNotifier('h', targetSchema.parse({ type: 'webhook', url: 'http://x/', secretEnv: 'FSO_UNSET_KEY' }), context())).rejects.toThrow(TargetConfigError);
    const missing = await createNotifier('h', targetSchema.parse({ type: 'webhook', url: 'http://x/', secretFile: 'nope.key' }), context()).catch((e: unknown) => e);
    expect(missing).toMatchObject({ target: 'h', field: 'secretFile' });
  });
});

describe('syslog', () => {
  const RFC5424 = /^<(\d+)>1 (\S+) (\S+) (\S+) (\d+) (\S+) (\[fso@32473 [^\n]*\]|-) (.*)$/s;

  it('sends RFC 5424 over UDP with the fields in structured data, escaped', async () => {
    const socket = dgram.createSocket('udp4');
    const got: string[] = [];
    socket.on('message', (m) => got.push(m.toString('utf8')));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    closers.push(() => {
      socket.close();
    });
    const spec = targetSchema.parse({ type: 'syslog', transport: 'udp', host: '127.0.0.1', port: (socket.address() as AddressInfo).port, facility: 'local0' });
    const notifier = await createNotifier('siem', spec, context());
    closers.push(() => notifier.close());
    await notifier.send(alert({ path: '/srv/we"ird]\\name' }));
    const [line] = await waitFor(() => (got.length > 0 ? got : undefined), 'the UDP syslog message');
    const m = RFC5424.exec(line ?? '');
    expect(m, line).not.toBeNull();
    expect(Number(m?.[1])).toBe(16 * 8 + 2);
    expect(m?.[4]).toBe('fso-alert');
    expect(m?.[6]).toBe('mass-delete');
    expect(m?.[7]).toContain('path="/srv/we\\"ird\\]\\\\name"');
    expect(m?.[7]).toContain('count="100"');
    expect(m?.[8]).toBe('\uFEFFmass delete: 100 matching changes on web-01');
  });

  it('frames TCP messages by octet counting, and reconnects after the receiver restarts', async () => {
    const frames: string[] = [];
    const sockets = new Set<net.Socket>();
    const makeServer = (): net.Server =>
      net.createServer((sock) => {
        sockets.add(sock);
        let buffer = Buffer.alloc(0);
        sock.on('data', (chunk: Buffer) => {
          buffer = Buffer.concat([buffer, chunk]);
          for (;;) {
            const space = buffer.indexOf(0x20);
            if (space < 0) return;
            const length = Number(buffer.subarray(0, space).toString());
            if (buffer.length < space + 1 + length) return;
            frames.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
            buffer = buffer.subarray(space + 1 + length);
          }
        });
      });
    let server = makeServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const notifier = await createNotifier('siem', targetSchema.parse({ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port, format: 'cef' }), context());
    closers.push(() => notifier.close());
    await notifier.send(alert({ summary: 'a|b\\c = d' }));
    await notifier.send(alert({ state: 'resolved' }));
    await waitFor(() => frames.length >= 2, 'two octet-counted frames');
    expect(frames[0]).toMatch(/^<\d+>1 \S+ \S+ fso-alert \d+ mass-delete - CEF:0\|FSO\|fso-alert\|[^|]+\|mass-delete\|a\\\|b\\\\c = d\|10\|/);
    expect(frames[0]).toContain('msg=a|b\\\\c \\= d');
    expect(frames[1]).toMatch(/^<133>1 /); // local0 notice: a resolved alert

    // The receiver restarts: the dispatcher's retry reaches the new one.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    await closed;
    server = makeServer();
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => {
      for (const sock of sockets) sock.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    // Syslog over TCP has no acknowledgement (RFC 6587): a message written while the receiver's close is still in
    // flight is lost. The notifier reads its connection, so it sees the close at once and the next send reconnects.
    let attempts = 0;
    await waitFor(async () => {
      attempts += 1;
      await notifier.send(alert({ summary: `after the restart ${attempts}` })).catch(() => undefined);
      return frames.some((f) => f.includes('after the restart'));
    }, 'a frame at the restarted receiver', 10_000, 50);
    // Measured: the first write goes into the closing connection (lost), the second fails with ECONNRESET (retryable), the third reconnects.
    expect(attempts).toBeLessThanOrEqual(3);
  });

  it('writes one line per alert to a unix stream socket', async () => {
    const socketPath = path.join(tmp.path, 'syslog.sock');
    let text = '';
    const server = net.createServer((sock) => sock.on('data', (d: Buffer) => (text += d.toString())));
    server.listen(socketPath);
    await once(server, 'listening');
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const notifier = await createNotifier('local', targetSchema.parse({ type: 'syslog', transport: 'unix', path: socketPath }), context());
    closers.push(() => notifier.close());
    await notifier.send(alert());
    await waitFor(() => text.endsWith('\n'), 'a line on the unix socket');
    expect(text.split('\n').filter(Boolean)).toHaveLength(1);
    // A file named to forge a message of its own: with newline framing, it stays inside the one line.
    text = '';
    const forged = '/srv/x\n<10>1 2026-12-05T10:00:00.000Z web-01 sshd 1 - - forged\r\n';
    await notifier.send(alert({ path: forged, summary: `deleted ${forged}` }));
    await waitFor(() => text.endsWith('\n'), 'the second line on the unix socket');
    expect(text.split('\n').filter(Boolean)).toHaveLength(1);
    expect(text).toContain('path="/srv/x <10>1 2026-12-05T10:00:00.000Z web-01 sshd 1 - - forged "');
    expect(targetSchema.safeParse({ type: 'syslog', transport: 'unix' }).success).toBe(false);
  });

  it('formats CEF extensions with escapes for = and newlines', () => {
    const cef = formatCef(alert({ summary: 'line1\nkey=value' }));
    expect(cef).toContain('msg=line1\\nkey\\=value');
    expect(formatSyslog(alert(), { facility: 'auth', appName: 'fso-alert', format: 'rfc5424' }, 'host')).toMatch(/^<34>1 /);
  });
});

describe('email', () => {
  function certs(dir: string): { key: string; cert: string } {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'smtp.key', '-out', 'smtp.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
    return { key: path.join(dir, 'smtp.key'), cert: path.join(dir, 'smtp.pem') };
  }

  async function smtp(options: { noSTARTTLS?: boolean; rejectRcpt?: boolean }) {
    const dir = path.join(tmp.path, 'smtp');
    await mkdir(dir, { recursive: true });
    const { key, cert } = certs(dir);
    const received: Array<{ text: string; user: string | undefined; secure: boolean }> = [];
    const logins: Array<{ username: string | undefined; secure: boolean }> = [];
    const { readFileSync } = await import('node:fs');
    const server = new SMTPServer({
      secure: false, key: readFileSync(key), cert: readFileSync(cert), authOptional: false, logger: false,
      // No STARTTLS at all (hideSTARTTLS only leaves it out of EHLO: the command still upgrades), and a login
      // in clear accepted: if the client sent anything in clear, this server would take it.
      ...(options.noSTARTTLS ? { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } : {}),
      onAuth: (auth, session, cb) => {
        logins.push({ username: auth.username, secure: session.secure });
        return auth.username === 'fso' && auth.password === 'smtp-pass-5c1e09' ? cb(null, { user: 'fso' }) : cb(new Error('bad login'));
      },
      onRcptTo: (_a, _s, cb) => (options.rejectRcpt ? cb(Object.assign(new Error('no such user'), { responseCode: 550 })) : cb()),
      onData: (stream, session, cb) => {
        let text = '';
        stream.on('data', (d: Buffer) => (text += d.toString()));
        stream.on('end', () => {
          received.push({ text, user: session.user as string | undefined, secure: session.secure });
          cb();
        });
      },
    });
    const port = await listen(server.server as unknown as net.Server);
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await writeFile(path.join(tmp.path, 'smtp.password'), 'smtp-pass-5c1e09\n');
    return { port, received, logins, ca: cert };
  }

  it('sends over STARTTLS with a login from a password file, and never logs the password', async () => {
    const { port, received, ca } = await smtp({});
    const capture = capturingLogger();
    const spec = targetSchema.parse({ type: 'email', host: '127.0.0.1', port, security: 'starttls', caFile: ca, from: 'fso@example.com', to: ['oncall@example.com'], username: 'fso', passwordFile: 'smtp.password', timeout: '5s' });
    const notifier = await createNotifier('mail', spec, context(capture.log));
    const dispatcher = createDispatcher({ notifiers: [notifier], log: capture.log });
    closers.push(() => dispatcher.close());
    const a = alert();
    dispatcher.dispatch(['mail'], a);
    const [mail] = await waitFor(() => (received.length > 0 ? received : undefined), 'the email at the SMTP server');
    expect(mail).toMatchObject({ user: 'fso', secure: true });
    expect(mail?.text).toMatch(/^Subject: \[FSO\] FIRING critical mass-delete web-01/m);
    expect(mail?.text.toLowerCase()).toContain(`x-fso-alert-id: ${a.id}`.toLowerCase());
    expect(mail?.text).toContain('count:     100');
    expect(capture.text()).not.toContain('smtp-pass-5c1e09');
  });

  it('keeps the password out of the log when the login fails (the error path logs the error)', async () => {
    const { port, logins, ca } = await smtp({});
    await writeFile(path.join(tmp.path, 'wrong.password'), 'wrong-pass-77d0aa\n');
    const capture = capturingLogger();
    const spec = targetSchema.parse({ type: 'email', host: '127.0.0.1', port, caFile: ca, from: 'fso@example.com', to: ['oncall@example.com'], username: 'fso', passwordFile: 'wrong.password' });
    const notifier = await createNotifier('mail', spec, context(capture.log));
    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [notifier], log: capture.log, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['mail'], alert());
    await waitFor(() => outcomes.includes('failed'), 'the refused login given up');
    expect(outcomes).toEqual(['failed']);
    expect(logins).toEqual([{ username: 'fso', secure: true }]);
    expect(capture.text()).toContain('EAUTH');
    const plainAuth = Buffer.from('\0fso\0wrong-pass-77d0aa').toString('base64');
    for (const secret of ['wrong-pass-77d0aa', Buffer.from('wrong-pass-77d0aa').toString('base64'), plainAuth]) expect(capture.text()).not.toContain(secret);
  });

  it('refuses to send in clear when the server offers no STARTTLS, and does not retry a 5xx', async () => {
    const plain = await smtp({ noSTARTTLS: true });
    // The CA is trusted: what refuses is the missing STARTTLS, not the certificate.
    const raw = { type: 'email', host: '127.0.0.1', port: plain.port, security: 'starttls', caFile: plain.ca, from: 'fso@example.com', to: ['a@example.com'], username: 'fso', passwordFile: 'smtp.password', timeout: '5s' };
    const spec = targetSchema.parse(raw);
    const notifier = await createNotifier('mail', spec, context());
    closers.push(() => notifier.close());
    const err = await notifier.send(alert()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ retryable: false, message: expect.stringContaining('ETLS') });
    expect(plain.logins).toEqual([]);
    expect(plain.received).toHaveLength(0);
    // The same server takes the message in clear when asked to (security none, a relay on this machine).
    const clear = await createNotifier('clear', targetSchema.parse({ ...raw, caFile: undefined, security: 'none' }), context());
    closers.push(() => clear.close());
    await clear.send(alert());
    expect(plain.logins).toEqual([{ username: 'fso', secure: false }]);
    expect(plain.received).toHaveLength(1);

    const rejecting = await smtp({ rejectRcpt: true });
    const spec2 = targetSchema.parse({ ...raw, port: rejecting.port, caFile: rejecting.ca });
    const n2 = await createNotifier('mail2', spec2, context());
    closers.push(() => n2.close());
    const err2 = await n2.send(alert()).catch((e: unknown) => e);
    expect(err2).toMatchObject({ retryable: false, status: 550 });
  });
});

describe('dispatcher', () => {
  /** A notifier that records what it got, and fails while `down` is true. */
  function fake(name: string): Notifier & { got: string[]; down: boolean; order: string[] } {
    const order: string[] = [];
    const n = {
      name, type: 'webhook' as const, got: [] as string[], down: false, order,
      send: async (a: FsoAlert) => {
        if (n.down) throw new NotifyError(name, 'webhook', 'connection refused', { retryable: true });
        n.got.push(a.id);
      },
      close: async () => undefined,
    };
    return n;
  }

  it('a target that is down delays no other; it gets its alert once it is back', async () => {
    const log: string[] = [];
    const down = fake('down');
    const up = fake('up');
    down.down = true;
    const dispatcher = createDispatcher({ notifiers: [down, up], log: capturingLogger().log, retry: { attempts: 100, initialDelayMs: 20, maxDelayMs: 40 }, onOutcome: (t, o) => log.push(`${t}:${o}`) });
    closers.push(() => dispatcher.close());
    for (let i = 0; i < 3; i++) dispatcher.dispatch(['down', 'up'], alert({ id: `a${i}` }));
    await waitFor(() => up.got.length === 3, 'the three alerts at the target that is up');
    expect(down.got).toEqual([]);
    expect(log.filter((l) => l.startsWith('down:')).every((l) => l === 'down:retried')).toBe(true);
    down.down = false;
    await waitFor(() => down.got.length === 3, 'the three alerts at the target once it is back');
    expect(down.got).toEqual(['a0', 'a1', 'a2']);
    expect(log.indexOf('up:sent')).toBeLessThan(log.indexOf('down:sent'));
  });

  it('drops the oldest when a queue is full, and closes once (the same promise twice)', async () => {
    const slow = fake('slow');
    slow.down = true;
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({ notifiers: [slow], log: capturingLogger().log, maxQueue: 2, retry: { attempts: 1000, initialDelayMs: 1000 }, onOutcome: (_t, o) => outcomes.push(o) });
    for (let i = 0; i < 5; i++) dispatcher.dispatch(['slow'], alert({ id: `q${i}` }));
    expect(outcomes.filter((o) => o === 'dropped')).toHaveLength(2);
    expect(dispatcher.pending().get('slow')).toBe(3);
    const first = dispatcher.close({ drainMs: 50 });
    expect(dispatcher.close()).toBe(first);
    await first;
    expect(dispatcher.pending().get('slow')).toBe(0);
  });
});
