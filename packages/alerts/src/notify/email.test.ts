import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerOptions } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { NotifyError } from '../errors.js';
import { rejection, testAlert } from '../testing/alert.js';
import { captureLog } from '../testing/capturedLog.js';
import type { CapturedLog } from '../testing/capturedLog.js';
import { createSelfSignedCert } from '../testing/certs.js';
import type { SelfSignedCert } from '../testing/certs.js';
import { createDispatcher } from './dispatcher.js';
import type { NotifyOutcome } from './notifier.js';
import { createNotifier, targetSchema } from './targets.js';

const PASSWORD = 'smtp-pass-5c1e09';

let tmp: { path: string; cleanup: () => Promise<void> };
let cert: SelfSignedCert;
const closers: Array<() => Promise<unknown>> = [];
beforeEach(async () => {
  tmp = await createTempDir('fso-email-');
  cert = createSelfSignedCert(tmp.path, 'smtp');
  await writeFile(path.join(tmp.path, 'smtp.password'), `${PASSWORD}\n`);
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tmp.cleanup();
});

/** Each SMTP command of value the server saw, with whether its session was encrypted then. */
interface Seen {
  command: 'AUTH' | 'MAIL' | 'RCPT' | 'DATA';
  secure: boolean;
  detail: string;
}

/** A message the server took. */
interface Mail {
  raw: string;
  from: string | undefined;
  to: string[];
  user: unknown;
  secure: boolean;
}

/**
 * A real SMTP server (smtp-server) on 127.0.0.1 with the self-signed
 * certificate, logins `fso` / PASSWORD, and answers chosen by the test.
 */
async function startSmtp(options: { server?: Partial<SMTPServerOptions>; mailFrom?: (n: number) => number | undefined; rcptTo?: number; hangData?: boolean } = {}) {
  const seen: Seen[] = [];
  let open = 0;
  const mails: Mail[] = [];
  let mailFroms = 0;
  const refuse = (code: number): Error => Object.assign(new Error(`refused with ${code}`), { responseCode: code });
  const server = new SMTPServer({
    key: readFileSync(cert.key), cert: readFileSync(cert.cert), logger: false, authOptional: false, authMethods: ['PLAIN', 'LOGIN'],
    ...options.server,
    // Counted by the server's session, not the TCP socket: after STARTTLS the TLS socket takes the socket's handle.
    onConnect(_session, callback) {
      open += 1;
      callback();
    },
    onClose() {
      open -= 1;
    },
    onAuth(auth, session, callback) {
      seen.push({ command: 'AUTH', secure: session.secure, detail: `${auth.method} ${auth.username ?? ''}` });
      if (auth.username === 'fso' && auth.password === PASSWORD) callback(null, { user: 'fso' });
      else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onMailFrom(address, session, callback) {
      mailFroms += 1;
      seen.push({ command: 'MAIL', secure: session.secure, detail: address.address });
      const code = options.mailFrom?.(mailFroms);
      callback(code ? refuse(code) : null);
    },
    onRcptTo(address, session, callback) {
      seen.push({ command: 'RCPT', secure: session.secure, detail: address.address });
      callback(options.rcptTo ? refuse(options.rcptTo) : null);
    },
    onData(stream, session, callback) {
      seen.push({ command: 'DATA', secure: session.secure, detail: '' });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (options.hangData) return; // took the message, and never answers
        const from = session.envelope.mailFrom;
        mails.push({
          raw: Buffer.concat(chunks).toString('utf8'), from: from ? from.address : undefined, to: session.envelope.rcptTo.map((r) => r.address), user: session.user, secure: session.secure,
        });
        callback();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, seen, mails, openConnections: () => open };
}

/** A target entry for the server on `port`, logging in with the password file, trusting the self-signed certificate. */
const entry = (port: number, over: Record<string, unknown> = {}) => ({
  type: 'email', host: '127.0.0.1', port, security: 'starttls', caFile: 'smtp.pem', from: 'fso@example.com', to: ['oncall@example.com', 'storage@example.com'],
  username: 'fso', passwordFile: 'smtp.password', timeout: '5s', ...over,
});

async function mailer(name: string, raw: Record<string, unknown>, log = captureLog().log) {
  const notifier = await createNotifier(name, targetSchema.parse(raw), { baseDir: tmp.path, env: {}, log });
  closers.push(() => notifier.close());
  return notifier;
}


/** The password in every form it takes on the wire: plain, base64 (AUTH LOGIN) and the AUTH PLAIN blob. */
const passwordForms = (password: string): string[] => [
  password,
  Buffer.from(password).toString('base64'),
  Buffer.from(`\0fso\0${password}`).toString('base64'),
];

function expectNoSecret(log: CapturedLog, password: string): void {
  const text = log.text();
  for (const form of passwordForms(password)) expect(text, `the log holds ${form}`).not.toContain(form);
}

/** The value of header `name` in a raw message (unfolded). */
function header(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/)[0]?.replace(/\r?\n[ \t]+/g, ' ') ?? '';
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1]?.trim();
}

describe('email', () => {
  for (const method of ['PLAIN', 'LOGIN'] as const) {
    it(`sends over STARTTLS with AUTH ${method} from a password file; subject, body, recipients and X-FSO-Alert-Id arrive; the password is in no log line`, async () => {
      // The first MAIL FROM is refused for now (451): a retry, and the warning it logs with the error, happen too.
      const smtp = await startSmtp({ server: { authMethods: [method] }, mailFrom: (n) => (n === 1 ? 451 : undefined) });
      const captured = captureLog('trace');
      const notifier = await mailer('mail', entry(smtp.port), captured.log);
      const outcomes: NotifyOutcome[] = [];
      const dispatcher = createDispatcher({ notifiers: [notifier], log: captured.log, retry: { initialDelayMs: 20, maxDelayMs: 100 }, onOutcome: (_t, o) => outcomes.push(o) });
      closers.push(() => dispatcher.close());
      const alert = testAlert({ samples: [{ what: 'delete', agentId: 'web-01', path: '/srv/app/a.txt', messageId: 'web-01:42', at: '2026-12-05T10:00:00.500Z' }] });
      dispatcher.dispatch(['mail'], alert);
      const [mail] = await waitFor(() => (smtp.mails.length > 0 ? smtp.mails : undefined), 'the email at the SMTP server');
      await waitFor(() => outcomes.includes('sent'), 'the outcome sent');

      expect(outcomes).toEqual(['retried', 'sent']);
      expect(smtp.seen.filter((s) => s.command === 'AUTH').map((s) => s.detail)).toEqual([`${method} fso`, `${method} fso`]);
      // Nothing of value went in clear: every AUTH, MAIL, RCPT and DATA was on the upgraded session.
      expect(smtp.seen.length).toBeGreaterThan(0);
      expect(smtp.seen.filter((s) => !s.secure)).toEqual([]);
      expect(mail).toMatchObject({ user: 'fso', secure: true, from: 'fso@example.com', to: ['oncall@example.com', 'storage@example.com'] });
      const raw = mail?.raw ?? '';
      expect(header(raw, 'Subject')).toBe('[FSO] FIRING critical mass-delete web-01');
      expect(header(raw, 'From')).toBe('fso@example.com');
      expect(header(raw, 'To')).toBe('oncall@example.com, storage@example.com');
      expect(header(raw, 'X-FSO-Alert-Id')).toBe(alert.id);
      const body = raw.slice(raw.search(/\r?\n\r?\n/)).replace(/\r\n/g, '\n');
      expect(body).toContain('mass delete: 100 matching changes on web-01');
      expect(body).toContain('count:     100');
      expect(body).toContain(`alert id:  ${alert.id}`);
      expect(body).toContain('2026-12-05T10:00:00.500Z delete web-01 /srv/app/a.txt web-01:42');

      // The logger caught lines (the retry's warning with its error), and none holds the password.
      expect(captured.lines().some((l) => String(l.msg).includes('failed; retrying') && JSON.stringify(l.err).includes('451'))).toBe(true);
      expect(captured.lines().some((l) => l.msg === 'notification sent after retries')).toBe(true);
      expectNoSecret(captured, PASSWORD);
    });
  }

  it('a refused login is final (535, not retried), and its logged error holds no password', async () => {
    const smtp = await startSmtp();
    await writeFile(path.join(tmp.path, 'wrong.password'), 'wrong-pass-77d0aa\n');
    const captured = captureLog('trace');
    const notifier = await mailer('mail', entry(smtp.port, { passwordFile: 'wrong.password' }), captured.log);
    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [notifier], log: captured.log, retry: { initialDelayMs: 20 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['mail'], testAlert());
    await waitFor(() => outcomes.includes('failed'), 'the refused login given up');
    await dispatcher.close();
    expect(outcomes).toEqual(['failed']);
    expect(smtp.seen).toEqual([{ command: 'AUTH', secure: true, detail: 'PLAIN fso' }]);
    expect(captured.text()).toContain('EAUTH');
    expectNoSecret(captured, 'wrong-pass-77d0aa');
  });

  it('with STARTTLS hidden from EHLO, upgrades all the same: nothing goes in clear', async () => {
    // smtp-server's hideSTARTTLS leaves STARTTLS out of EHLO (and would then take AUTH in clear) but still
    // answers the command: `security: starttls` sends STARTTLS whatever EHLO says, and refuses if it fails.
    const smtp = await startSmtp({ server: { hideSTARTTLS: true } });
    const notifier = await mailer('mail', entry(smtp.port));
    await notifier.send(testAlert());
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.seen.map((s) => `${s.command}:${String(s.secure)}`)).toEqual(['AUTH:true', 'MAIL:true', 'RCPT:true', 'RCPT:true', 'DATA:true']);
  });

  it('refuses to send in clear when the server has no STARTTLS: NotifyError, not retried, no login nor DATA in clear', async () => {
    // A server that would take everything in clear: no STARTTLS at all, and AUTH allowed without TLS.
    const smtp = await startSmtp({ server: { hideSTARTTLS: true, disabledCommands: ['STARTTLS'], allowInsecureAuth: true } });
    const notifier = await mailer('mail', entry(smtp.port));
    const err = await rejection(notifier.send(testAlert()));
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ target: 'mail', targetType: 'email', retryable: false, message: expect.stringContaining('ETLS') });
    expect(smtp.seen).toEqual([]);
    expect(smtp.mails).toEqual([]);

    // Through the dispatcher: one attempt, failed for good.
    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [await mailer('mail2', entry(smtp.port))], log: captureLog().log, retry: { initialDelayMs: 20 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['mail2'], testAlert());
    await waitFor(() => outcomes.includes('failed'), 'the refusal given up');
    expect(outcomes).toEqual(['failed']);
    expect(smtp.seen).toEqual([]);

    // The same server takes the message in clear when told to (security none: a relay on this machine), so the refusal was the client's.
    const clear = await mailer('clear', entry(smtp.port, { security: 'none', caFile: undefined }));
    await clear.send(testAlert());
    expect(smtp.seen.map((s) => `${s.command}:${String(s.secure)}`)).toEqual(['AUTH:false', 'MAIL:false', 'RCPT:false', 'RCPT:false', 'DATA:false']);
    expect(smtp.mails).toHaveLength(1);
  });

  it('refuses a server certificate it does not trust at STARTTLS: nothing sent', async () => {
    const smtp = await startSmtp();
    const notifier = await mailer('mail', entry(smtp.port, { caFile: undefined }));
    const err = await rejection(notifier.send(testAlert()));
    // Retryable like any connection failure (as for webhook and syslog): a certificate can be fixed on the server's side.
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ message: expect.stringMatching(/self[- ]signed certificate/i) });
    expect(smtp.seen).toEqual([]);
  });

  it('a 5xx from RCPT TO is final (not retried); a 4xx is retried', async () => {
    const rejecting = await startSmtp({ rcptTo: 550 });
    const notifier = await mailer('mail', entry(rejecting.port));
    const err = await rejection(notifier.send(testAlert()));
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ retryable: false, status: 550 });

    const outcomes: NotifyOutcome[] = [];
    const dispatcher = createDispatcher({ notifiers: [await mailer('mail2', entry(rejecting.port))], log: captureLog().log, retry: { initialDelayMs: 20 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    dispatcher.dispatch(['mail2'], testAlert());
    await waitFor(() => outcomes.includes('failed'), 'the 550 given up');
    expect(outcomes).toEqual(['failed']);
    expect(rejecting.seen.filter((s) => s.command === 'MAIL')).toHaveLength(2); // the direct send, and one attempt by the dispatcher
    expect(rejecting.mails).toEqual([]);

    const busy = await startSmtp({ rcptTo: 450 });
    const later = await mailer('busy', entry(busy.port));
    expect(await rejection(later.send(testAlert()))).toMatchObject({ retryable: true, status: 450 });
  });

  it('sends over TLS from the first byte (security tls)', async () => {
    const smtp = await startSmtp({ server: { secure: true } });
    const notifier = await mailer('mail', entry(smtp.port, { security: 'tls' }));
    await notifier.send(testAlert());
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.seen.every((s) => s.secure)).toBe(true);
  });

  it('close() cuts a send in flight (a server that never answers DATA) long before its timeout', async () => {
    const smtp = await startSmtp({ hangData: true });
    const notifier = await mailer('mail', entry(smtp.port, { timeout: '60s' }));
    const sending = notifier.send(testAlert()).then(
      () => 'sent',
      (e: unknown) => e,
    );
    await waitFor(() => smtp.seen.some((s) => s.command === 'DATA'), 'the message at the server, held unanswered');
    const closing = notifier.close();
    expect(notifier.close()).toBe(closing);
    await closing;
    // Within 10 s of close(), against a 60 s timeout.
    const err = await Promise.race([sending, new Promise((resolve) => setTimeout(() => resolve('still sending 10 s after close()'), 10_000).unref())]);
    expect(err).toBeInstanceOf(NotifyError);
    await waitFor(() => smtp.openConnections() === 0, 'the connection closed after close()');
    expect(await rejection(notifier.send(testAlert()))).toMatchObject({ message: expect.stringContaining('closed') });
  });
});
