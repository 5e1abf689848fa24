import os from 'node:os';
import path from 'node:path';
import { FSO_VERSION } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { NotifyError } from '../errors.js';
import { rejection, testAlert } from '../testing/alert.js';
import { captureLog } from '../testing/capturedLog.js';
import { createSelfSignedCert } from '../testing/certs.js';
import { startStreamReceiver, startUdpReceiver } from '../testing/syslogReceiver.js';
import type { SyslogReceiver } from '../testing/syslogReceiver.js';
import { createDispatcher } from './dispatcher.js';
import type { Notifier } from './notifier.js';
import { formatCef, formatSyslog } from './syslog.js';
import { createNotifier, targetSchema } from './targets.js';

let tmp: { path: string; cleanup: () => Promise<void> };
const closers: Array<() => Promise<unknown>> = [];
beforeEach(async () => {
  tmp = await createTempDir('fso-syslog-');
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await tmp.cleanup();
});

const context = () => ({ baseDir: tmp.path, env: {} as NodeJS.ProcessEnv, log: captureLog().log });

async function syslog(name: string, raw: Record<string, unknown>): Promise<Notifier> {
  const notifier = await createNotifier(name, targetSchema.parse({ type: 'syslog', ...raw }), context());
  closers.push(() => notifier.close());
  return notifier;
}

function track(receiver: SyslogReceiver): SyslogReceiver {
  closers.push(() => receiver.close());
  return receiver;
}


/** Waits until `receiver` holds `count` messages; fails naming `what`. */
const messages = (receiver: SyslogReceiver, count: number, what: string): Promise<Buffer[]> =>
  waitFor(() => (receiver.messages.length >= count ? receiver.messages : undefined), `${what} (${count} message(s); got ${receiver.messages.length})`);

// --- a receiver's parsers ------------------------------------------------------

/** An RFC 5424 message, parsed by its grammar (§6): a structured-data element whose escaping is wrong does not parse. */
interface Rfc5424 {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sdId: string | undefined;
  params: Record<string, string>;
  /** MSG bytes began with the UTF-8 BOM (EF BB BF). */
  bom: boolean;
  msg: string;
}

const HEADER = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S{1,255}) (\S{1,48}) (\S{1,128}) (\S{1,32}) /;
/** SD-ELEMENT with SD-PARAMs whose values escape `"`, `\` and `]` (§6.3.3), then SP MSG; or NILVALUE. */
const SD = /^(?:-|\[([^ =\]"]{1,32})((?: [^ =\]"]{1,32}="(?:[^"\\\]]|\\["\\\]])*")*)\])(?: ([\s\S]*))?$/;
const PARAM = / ([^ =\]"]{1,32})="((?:[^"\\\]]|\\["\\\]])*)"/g;

function parse5424(bytes: Buffer): Rfc5424 {
  const text = bytes.toString('utf8');
  const head = HEADER.exec(text);
  if (!head) throw new Error(`not an RFC 5424 header: ${JSON.stringify(text.slice(0, 120))}`);
  const rest = text.slice(head[0].length);
  const sd = SD.exec(rest);
  if (!sd) throw new Error(`not RFC 5424 structured data: ${JSON.stringify(rest.slice(0, 200))}`);
  const params: Record<string, string> = {};
  for (const [, name, value] of (sd[2] ?? '').matchAll(PARAM)) params[name as string] = (value as string).replace(/\\(["\\\]])/g, '$1');
  const msgText = sd[3] ?? '';
  // The BOM is checked on the bytes: the MSG is the message's tail.
  const msgBytes = Buffer.from(msgText, 'utf8');
  return {
    pri: Number(head[1]), version: Number(head[2]), timestamp: head[3] as string, hostname: head[4] as string, appName: head[5] as string,
    procId: head[6] as string, msgId: head[7] as string, sdId: sd[1], params,
    bom: bytes.subarray(bytes.length - msgBytes.length, bytes.length - msgBytes.length + 3).equals(Buffer.from([0xef, 0xbb, 0xbf])), msg: msgText.replace(/^\uFEFF/, ''),
  };
}

/** A CEF line parsed as a SIEM does: seven header fields split on unescaped `|`, then `key=value` extensions. */
function parseCef(line: string): { header: string[]; ext: Record<string, string> } {
  const header: string[] = [];
  let rest = line;
  for (let i = 0; i < 7; i++) {
    const field = /^((?:[^|\\]|\\[\\|])*)\|/.exec(rest);
    if (!field) throw new Error(`CEF header field ${i} does not parse: ${JSON.stringify(rest.slice(0, 80))}`);
    header.push((field[1] as string).replace(/\\([\\|])/g, '$1'));
    rest = rest.slice(field[0].length);
  }
  const ext: Record<string, string> = {};
  // A key starts after a space and ends at an unescaped `=`; an escaped `\=` in a value cannot start one.
  for (const part of rest.split(/ (?=[A-Za-z0-9_]+=)/)) {
    const eq = /^([A-Za-z0-9_]+)=((?:[^\\=]|\\[\\=nr])*)$/.exec(part);
    if (!eq) throw new Error(`CEF extension does not parse: ${JSON.stringify(part)}`);
    ext[eq[1] as string] = (eq[2] as string).replace(/\\([\\=nr])/g, (_m, c: string) => ({ n: '\n', r: '\r' })[c] ?? c);
  }
  return { header, ext };
}

// --- the tests --------------------------------------------------------------------

describe('syslog', () => {
  it('sends RFC 5424 over UDP: PRI, VERSION, HOSTNAME, APP-NAME, MSGID, escaped structured data, a BOM before MSG', async () => {
    const receiver = track(await startUdpReceiver());
    const notifier = await syslog('siem', { transport: 'udp', host: '127.0.0.1', port: receiver.port, facility: 'local0', appName: 'fso-test' });
    const tricky = '/srv/we"ird]\\na]me"';
    const alert = testAlert({ path: tricky, key: `web-01:${tricky}`, summary: 'suppression massive : 100 fichiers supprimés ✓' });
    await notifier.send(alert);
    const [bytes] = await messages(receiver, 1, 'the UDP syslog datagram');
    const m = parse5424(bytes as Buffer);

    expect(m).toMatchObject({
      pri: 16 * 8 + 2, // local0, critical (crit)
      version: 1,
      timestamp: alert.at,
      hostname: os.hostname().replace(/[^!-~]/g, '_'),
      appName: 'fso-test',
      procId: String(process.pid),
      msgId: 'mass-delete',
      sdId: 'fso@32473',
      bom: true,
      msg: alert.summary,
    });
    expect(m.params).toEqual({ id: alert.id, rule: 'mass-delete', state: 'firing', severity: 'critical', key: alert.key, count: '100', agent: 'web-01', path: tricky });
    // The escapes themselves, as RFC 5424 §6.3.3 writes them.
    expect((bytes as Buffer).toString('utf8')).toContain('path="/srv/we\\"ird\\]\\\\na\\]me\\""');
  });

  it('maps each severity and facility to its PRI (RFC 5424 §6.2.1), a resolved alert to notice', async () => {
    const receiver = track(await startUdpReceiver());
    const notifier = await syslog('siem', { host: '127.0.0.1', port: receiver.port });
    const cases: Array<[Partial<FsoAlert>, number]> = [
      [{ severity: 'critical' }, 130], [{ severity: 'high' }, 131], [{ severity: 'medium' }, 132], [{ severity: 'low' }, 133], [{ severity: 'info' }, 134],
      [{ severity: 'critical', state: 'resolved' }, 133],
    ];
    // One at a time: UDP keeps no order between datagrams sent at once.
    for (const [over, pri] of cases) {
      await notifier.send(testAlert(over));
      const all = await messages(receiver, receiver.messages.length + 1, `the datagram of PRI ${pri}`);
      expect(parse5424(all[all.length - 1] as Buffer).pri).toBe(pri);
    }
    expect(formatSyslog(testAlert(), { facility: 'auth', appName: 'fso-alert', format: 'rfc5424' }, 'host')).toMatch(/^<34>1 /);
    expect(formatSyslog(testAlert({ severity: 'info' }), { facility: 'local7', appName: 'fso-alert', format: 'rfc5424' }, 'host')).toMatch(/^<190>1 /);
  });

  it('frames TCP by octet counting: two alerts, two frames parsed exactly, over one connection', async () => {
    const receiver = track(await startStreamReceiver({ transport: 'tcp' }));
    const raw = { transport: 'tcp', host: '127.0.0.1', port: receiver.port } as const;
    const notifier = await syslog('siem', raw);
    // Multi-byte characters: MSG-LEN counts octets, not characters.
    const first = testAlert({ summary: 'première: 100 fichiers supprimés 🗑️' });
    const second = testAlert({ state: 'resolved', summary: 'resolved' });
    await notifier.send(first);
    await notifier.send(second);
    await messages(receiver, 2, 'two octet-counted frames');

    const spec = { facility: 'local0', appName: 'fso-alert', format: 'rfc5424' } as const;
    expect(receiver.messages.map((m) => m.toString('utf8'))).toEqual([formatSyslog(first, spec, os.hostname()), formatSyslog(second, spec, os.hostname())]);
    expect(receiver.framingErrors).toEqual([]);
    expect(receiver.pendingBytes()).toBe(0);
    expect(receiver.connections()).toBe(1);
    expect(parse5424(receiver.messages[0] as Buffer)).toMatchObject({ pri: 130, bom: true, msg: first.summary, msgId: 'mass-delete' });
    expect(parse5424(receiver.messages[1] as Buffer).pri).toBe(133);
  });

  it('opens one connection when two sends start at once, and close() ends it', async () => {
    const receiver = track(await startStreamReceiver({ transport: 'tcp' }));
    const notifier = await syslog('siem', { transport: 'tcp', host: '127.0.0.1', port: receiver.port });
    const alerts = [testAlert(), testAlert(), testAlert()];
    await Promise.all(alerts.map((a) => notifier.send(a)));
    await messages(receiver, 3, 'the three frames sent at once');
    expect(receiver.messages.map((m) => parse5424(m).params.id).sort()).toEqual(alerts.map((a) => a.id).sort());
    expect(receiver.connections()).toBe(1);

    const closing = notifier.close();
    expect(notifier.close()).toBe(closing);
    await closing;
    await waitFor(() => receiver.openConnections() === 0, 'every connection of the notifier closed by close()');
    const err = await rejection(notifier.send(testAlert()));
    expect(err).toMatchObject({ name: 'NotifyError', message: expect.stringContaining('closed') });
  });

  it('sends CEF: a summary with | and \\ escaped in the header, = and a line break escaped in the extension', async () => {
    const receiver = track(await startStreamReceiver({ transport: 'tcp' }));
    const notifier = await syslog('siem', { transport: 'tcp', host: '127.0.0.1', port: receiver.port, format: 'cef' });
    const alert = testAlert({ summary: 'deleted a|b\\c = d\nnext=line', path: 'C:\\srv\\x=y' });
    await notifier.send(alert);
    const [bytes] = await messages(receiver, 1, 'the CEF frame');
    const text = (bytes as Buffer).toString('utf8');

    // No structured data with CEF (the extension carries the fields), and no BOM: CEF is MSG-ANY.
    const head = /^<130>1 \S+ \S+ fso-alert \d+ mass-delete - (CEF:0\|.*)$/s.exec(text);
    expect(head, text).not.toBeNull();
    const line = head?.[1] as string;
    expect(line).not.toContain('\n');
    expect(line).toContain('|deleted a\\|b\\\\c = d next=line|'); // header: | and \ escaped, the line break a space
    expect(line).toContain('msg=deleted a|b\\\\c \\= d\\nnext\\=line'); // extension: \ and = escaped, the line break \n
    const cef = parseCef(line);
    expect(cef.header).toEqual(['CEF:0', 'FSO', 'fso-alert', FSO_VERSION, 'mass-delete', 'deleted a|b\\c = d next=line', '10']);
    expect(cef.ext).toMatchObject({
      msg: alert.summary, filePath: alert.path, externalId: alert.id, act: 'firing', cnt: '100', cs1Label: 'rule', cs1: 'mass-delete', dhost: 'web-01',
      rt: String(Date.parse(alert.at)),
    });
    // The same escapes without a receiver, for a resolved info alert.
    expect(parseCef(formatCef(testAlert({ summary: 'x=1\r\ny|z', severity: 'info' }))).ext.msg).toBe('x=1\ny|z');
    expect(parseCef(formatCef(testAlert({ severity: 'info' }))).header[6]).toBe('1');
  });

  it('sends over TLS (RFC 5425) to a receiver with a self-signed certificate given as caFile; without it, refuses', async () => {
    const cert = createSelfSignedCert(tmp.path, 'syslog');
    const receiver = track(await startStreamReceiver({ transport: 'tls', tls: cert }));
    const notifier = await syslog('siem', { transport: 'tls', host: '127.0.0.1', port: receiver.port, caFile: 'syslog.pem' });
    const alert = testAlert({ summary: 'over TLS' });
    await notifier.send(alert);
    await messages(receiver, 1, 'the frame over TLS');
    expect(receiver.framingErrors).toEqual([]);
    expect(parse5424(receiver.messages[0] as Buffer)).toMatchObject({ pri: 130, msg: 'over TLS', params: { id: alert.id } });

    const untrusted = await syslog('untrusted', { transport: 'tls', host: '127.0.0.1', port: receiver.port });
    const err = await rejection(untrusted.send(testAlert()));
    expect(err).toBeInstanceOf(NotifyError);
    expect((err as NotifyError).message).toMatch(/SELF_SIGNED|self-signed|self signed/i);
    expect(receiver.messages).toHaveLength(1);
  });

  it('writes one line per alert to a unix stream socket; a line break in a field cannot forge a message', async () => {
    const socketPath = path.join(tmp.path, 'syslog.sock');
    const receiver = track(await startStreamReceiver({ transport: 'unix', path: socketPath }));
    const notifier = await syslog('local', { transport: 'unix', path: socketPath });
    const alert = testAlert();
    await notifier.send(alert);
    await messages(receiver, 1, 'a line on the unix socket');
    expect(parse5424(receiver.messages[0] as Buffer)).toMatchObject({ msgId: 'mass-delete', bom: true, params: { id: alert.id } });

    // A file named to forge a message of its own: with newline framing, it stays inside the one line.
    const forged = '/srv/x\n<10>1 2026-12-05T10:00:00.000Z web-01 sshd 1 - - forged\r\n';
    await notifier.send(testAlert({ path: forged, summary: `deleted ${forged}` }));
    await messages(receiver, 2, 'the second line on the unix socket');
    expect(receiver.messages).toHaveLength(2);
    expect(receiver.pendingBytes()).toBe(0);
    expect(parse5424(receiver.messages[1] as Buffer).params.path).toBe('/srv/x <10>1 2026-12-05T10:00:00.000Z web-01 sshd 1 - - forged ');
    expect(targetSchema.safeParse({ type: 'syslog', transport: 'unix' }).error?.issues[0]).toMatchObject({ path: ['path'] });
    expect(targetSchema.safeParse({ type: 'syslog', transport: 'tcp' }).error?.issues[0]).toMatchObject({ path: ['host'] });
  });

  it('a receiver that is down is a retryable failure', async () => {
    const gone = await startStreamReceiver({ transport: 'tcp' });
    await gone.close();
    const notifier = await syslog('down', { transport: 'tcp', host: '127.0.0.1', port: gone.port });
    const err = await rejection(notifier.send(testAlert()));
    expect(err).toBeInstanceOf(NotifyError);
    expect(err).toMatchObject({ retryable: true, message: expect.stringContaining('ECONNREFUSED') });
  });

  it('reconnects after the TCP receiver restarts: a send that resolves reached a receiver, and through the dispatcher the alert arrives', async () => {
    let receiver = await startStreamReceiver({ transport: 'tcp' });
    const { port } = receiver;
    closers.push(() => receiver.close());
    const notifier = await syslog('siem', { transport: 'tcp', host: '127.0.0.1', port });
    const before = testAlert();
    await notifier.send(before);
    await messages(receiver, 1, 'the frame before the restart');

    // The receiver restarts on the same port, the notifier's connection is gone.
    await receiver.close();
    receiver = await startStreamReceiver({ transport: 'tcp', port });

    // Directly: the first attempt may fail (retryable); an attempt that resolves must have reached the new receiver.
    const direct = testAlert();
    const first = await notifier.send(direct).then(
      () => 'sent' as const,
      (e: unknown) => e,
    );
    if (first === 'sent') await messages(receiver, 1, `alert ${direct.id}, whose send resolved, at the restarted receiver`);
    else expect(first).toMatchObject({ name: 'NotifyError', retryable: true });

    // Through the dispatcher, after one more restart.
    await receiver.close();
    receiver = await startStreamReceiver({ transport: 'tcp', port });
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({ notifiers: [notifier], log: captureLog().log, retry: { initialDelayMs: 20, maxDelayMs: 100 }, onOutcome: (_t, o) => outcomes.push(o) });
    closers.push(() => dispatcher.close());
    const after = testAlert();
    dispatcher.dispatch(['siem'], after);
    await waitFor(() => receiver.messages.some((m) => parse5424(m).params.id === after.id), `alert ${after.id} at the restarted receiver`);
    await waitFor(() => outcomes.includes('sent'), 'the outcome sent');
    expect(outcomes.filter((o) => o !== 'retried')).toEqual(['sent']);
    expect(receiver.messages.map((m) => parse5424(m).params.id)).toEqual([after.id]);
    expect(receiver.framingErrors).toEqual([]);
  });
});
