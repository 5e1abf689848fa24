import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { FSO_VERSION } from '@fso/common';
import type { AlertSeverity, FsoAlert, Logger } from '@fso/common';
import { NotifyError } from '../errors.js';
import type { Notifier } from './notifier.js';
import { FACILITY_CODES } from './targets.js';
import type { SyslogSpec } from './targets.js';

/**
 * The structured-data id of FSO's parameters. 32473 is the private
 * enterprise number RFC 5612 reserves for documentation: FSO has none of its
 * own, and RFC 5424 §7.2.2 allows this form for examples and tests. A SIEM
 * parser keys on the whole id, `fso@32473`.
 */
export const SD_ID = 'fso@32473';

/** Syslog severity (RFC 5424 §6.2.1) of an alert: critical 2 (crit) … info 6; a resolved alert is 5 (notice). */
export function syslogSeverity(alert: Pick<FsoAlert, 'severity' | 'state'>): number {
  if (alert.state === 'resolved') return 5;
  return ({ critical: 2, high: 3, medium: 4, low: 5, info: 6 } as const satisfies Record<AlertSeverity, number>)[alert.severity];
}

/** CEF severity (0–10) of an alert. */
export function cefSeverity(severity: AlertSeverity): number {
  return ({ info: 1, low: 3, medium: 5, high: 8, critical: 10 } as const)[severity];
}

/** An SD-PARAM value escaped (RFC 5424 §6.3.3: `"`, `\` and `]`). */
export function sdEscape(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** A CEF header field escaped (`\` and `|`); newlines become spaces. */
export function cefHeaderEscape(value: string): string {
  return value.replace(/[\\|]/g, (c) => `\\${c}`).replace(/[\r\n]+/g, ' ');
}

/** A CEF extension value escaped (`\`, `=`, and newlines as `\n`). */
export function cefValueEscape(value: string): string {
  return value.replace(/[\\=]/g, (c) => `\\${c}`).replace(/\r\n|\r|\n/g, '\\n');
}

/** RFC 5424 header fields are printable ASCII without spaces (§6): anything else becomes `_`. */
const printable = (value: string, max: number): string => (value.replace(/[^!-~]/g, '_').slice(0, max) || '-');

/**
 * The alert as CEF (ArcSight Common Event Format, rev. 25):
 * `CEF:0|FSO|fso-alert|<version>|<rule>|<summary>|<0-10>|<extensions>`.
 */
export function formatCef(alert: FsoAlert): string {
  const ext: Array<[string, string]> = [
    ['rt', String(Date.parse(alert.at))],
    ['act', alert.state],
    ['externalId', alert.id],
    ['cnt', String(alert.count)],
    ['start', String(Date.parse(alert.firstAt))],
    ['end', String(Date.parse(alert.lastAt))],
    ['cs1Label', 'rule'],
    ['cs1', alert.rule],
    ['cs2Label', 'key'],
    ['cs2', alert.key],
    ['msg', alert.summary],
  ];
  if (alert.agentId !== null) ext.push(['dhost', alert.agentId]);
  if (alert.path !== null) ext.push(['filePath', alert.path]);
  const header = ['CEF:0', 'FSO', 'fso-alert', FSO_VERSION, alert.rule, alert.summary, String(cefSeverity(alert.severity))].map((f, i) => (i === 0 ? f : cefHeaderEscape(f)));
  return `${header.join('|')}|${ext.map(([k, v]) => `${k}=${cefValueEscape(v)}`).join(' ')}`;
}

/**
 * The alert as one RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME
 * PROCID MSGID [fso@32473 …] MSG`, MSGID the rule id. With `format: cef`
 * the MSG is the CEF line and there is no structured data (CEF carries the
 * fields); otherwise MSG is the summary, UTF-8 with a BOM (§6.4).
 */
export function formatSyslog(alert: FsoAlert, spec: Pick<SyslogSpec, 'facility' | 'appName' | 'format'>, hostname: string = os.hostname()): string {
  const pri = FACILITY_CODES[spec.facility] * 8 + syslogSeverity(alert);
  const head = `<${pri}>1 ${alert.at} ${printable(hostname, 255)} ${printable(spec.appName, 48)} ${process.pid} ${printable(alert.rule, 32)}`;
  if (spec.format === 'cef') return `${head} - ${formatCef(alert)}`;
  const params: Array<[string, string]> = [
    ['id', alert.id],
    ['rule', alert.rule],
    ['state', alert.state],
    ['severity', alert.severity],
    ['key', alert.key],
    ['count', String(alert.count)],
  ];
  if (alert.agentId !== null) params.push(['agent', alert.agentId]);
  if (alert.path !== null) params.push(['path', alert.path]);
  const sd = `[${SD_ID} ${params.map(([k, v]) => `${k}="${sdEscape(v)}"`).join(' ')}]`;
  return `${head} ${sd} \uFEFF${alert.summary}`;
}

/**
 * A message made one line for newline framing (RFC 6587 §3.4.2: the trailer
 * may not occur in the message): a file name or summary with a line break
 * would otherwise end the message there, and what follows would be read as
 * a message of its own, a forged one if the name was chosen for it. CR, LF
 * and NUL (a trailer for some receivers) become spaces.
 */
export function oneLine(message: string): string {
  return message.replace(/\r\n|[\r\n\0]/g, ' ');
}

/**
 * A syslog target: UDP (one datagram per alert), TCP or TLS (RFC 6587
 * octet-counting framing, `LEN SP MSG`, as RFC 5425 requires for TLS), or a
 * unix stream socket (one message per line, {@link oneLine}: syslog-ng's
 * `unix-stream()`, or rsyslog's imptcp with `path=`; rsyslog's imuxsock is
 * datagram only and Node has no unix datagram sockets). A stream connection
 * is kept open and made again after a failure.
 */
export function createSyslogNotifier(name: string, spec: SyslogSpec, options: { ca?: Buffer; log?: Logger } = {}): Notifier {
  const hostname = os.hostname();
  const port = spec.port ?? (spec.transport === 'tls' ? 6514 : 514);
  let socket: net.Socket | undefined;
  let udp: dgram.Socket | undefined;
  let closed: Promise<void> | undefined;
  const fail = (reason: string, cause?: unknown): NotifyError => new NotifyError(name, 'syslog', reason, { retryable: true }, cause === undefined ? undefined : { cause });

  const connect = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = spec.transport === 'tls'
        ? tls.connect({
            host: spec.host, port,
            // SNI takes a host name only (RFC 6066 §3); Node warns (DEP0123) when given an IP address.
            ...(net.isIP(spec.host ?? '') === 0 ? { servername: spec.host } : {}),
            ...(options.ca ? { ca: options.ca } : {}),
          })
        : spec.transport === 'unix'
          ? net.connect({ path: spec.path as string })
          : net.connect({ host: spec.host, port });
      const timer = setTimeout(() => s.destroy(fail(`no connection within ${spec.timeout} ms`)), spec.timeout);
      s.once(spec.transport === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.on('error', (err) => options.log?.debug({ err, target: name }, 'syslog connection failed; the next alert connects again'));
        s.on('close', () => {
          if (socket === s) socket = undefined;
        });
        // The receiver closed its side: a write now would be accepted by the kernel and lost (RFC 6587 has no acks).
        s.on('end', () => {
          if (socket === s) socket = undefined;
          s.destroy();
        });
        // Read (and discard) what the receiver sends, so its close is seen at once as 'end'; a paused socket never reads the FIN.
        s.resume();
        s.setKeepAlive(true);
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(err instanceof NotifyError ? err : fail((err as NodeJS.ErrnoException).code ?? err.message, err));
      });
    });

  /** The connection being made, shared by the sends that start meanwhile: one connection, never one leaked per send. */
  let connecting: Promise<net.Socket> | undefined;

  const open = async (): Promise<net.Socket> => {
    if (socket) {
      // A receiver's close that has already arrived is read (and 'end' drops the socket) before this write:
      // otherwise the write is accepted by the kernel into a dead connection and lost (RFC 6587 has no acks).
      // Two turns, so the event loop polls for I/O at least once whatever phase this send started in.
      await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
      if (closed) throw fail('closed');
      if (socket && !socket.destroyed && socket.writable) return socket;
      socket = undefined;
    }
    connecting ??= connect()
      .then((fresh) => {
        // close() ran while connecting: nothing would ever close this socket.
        if (closed) {
          fresh.destroy();
          throw fail('closed');
        }
        socket = fresh;
        return fresh;
      })
      .finally(() => {
        connecting = undefined;
      });
    return connecting;
  };

  const sendStream = async (line: string): Promise<void> => {
    const s = await open();
    const drop = (): void => {
      if (socket === s) socket = undefined;
      s.destroy();
    };
    const bytes = Buffer.from(line, 'utf8');
    const frame = spec.transport === 'unix' ? Buffer.from(`${oneLine(line)}\n`, 'utf8') : Buffer.concat([Buffer.from(`${bytes.length} `), bytes]);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        drop();
        reject(fail(`not written within ${spec.timeout} ms`));
      }, spec.timeout);
      s.write(frame, (err) => {
        clearTimeout(timer);
        if (err) {
          drop();
          reject(fail(err.message, err));
        } else resolve();
      });
    });
  };

  const sendUdp = (line: string): Promise<void> =>
    new Promise((resolve, reject) => {
      if (!udp) {
        udp = dgram.createSocket(net.isIPv6(spec.host ?? '') ? 'udp6' : 'udp4');
        udp.on('error', (err) => options.log?.debug({ err, target: name }, 'syslog udp socket error'));
        udp.unref();
      }
      udp.send(Buffer.from(line, 'utf8'), port, spec.host, (err) => (err ? reject(fail(err.message, err)) : resolve()));
    });

  return {
    name,
    type: 'syslog',
    send: (alert) => {
      if (closed) return Promise.reject(fail('closed'));
      const line = formatSyslog(alert, spec, hostname);
      return spec.transport === 'udp' ? sendUdp(line) : sendStream(line);
    },
    close() {
      closed ??= (async () => {
        socket?.end();
        socket?.destroy();
        socket = undefined;
        udp?.close();
        udp = undefined;
      })();
      return closed;
    },
  };
}
