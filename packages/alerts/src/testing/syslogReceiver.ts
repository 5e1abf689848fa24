// Test support for this package's tests (kept out of the build by tsconfig.json).
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

/** A real syslog receiver: what it took, message by message, as the bytes of each MSG without framing. */
export interface SyslogReceiver {
  /** The UDP, TCP or TLS port (0 for a unix socket). */
  readonly port: number;
  /** Each message's bytes, in arrival order. */
  readonly messages: Buffer[];
  /** Framing that was not what RFC 6587 allows (the connection is dropped at the first). */
  readonly framingErrors: string[];
  /** Connections accepted so far (0 for UDP). */
  connections(): number;
  /** Connections still open. */
  openConnections(): number;
  /** Bytes received after the last complete frame, per open connection: a frame cut short, or framing gone wrong. */
  pendingBytes(): number;
  /** Closes the listener and every connection (as a restarting receiver does); resolves once all are closed. */
  close(): Promise<void>;
}

/** Listens for syslog datagrams (RFC 5426: one message per datagram) on 127.0.0.1. */
export async function startUdpReceiver(): Promise<SyslogReceiver> {
  const socket = dgram.createSocket('udp4');
  const messages: Buffer[] = [];
  socket.on('message', (message) => messages.push(message));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  let closed: Promise<void> | undefined;
  return {
    port: (socket.address() as AddressInfo).port,
    messages,
    framingErrors: [],
    connections: () => 0,
    openConnections: () => 0,
    pendingBytes: () => 0,
    close() {
      closed ??= new Promise<void>((resolve) => socket.close(() => resolve()));
      return closed;
    },
  };
}

/** Options of {@link startStreamReceiver}. */
export interface StreamReceiverOptions {
  /** `tcp` and `tls` frame by octet counting (RFC 6587 §3.4.1), `unix` by a newline (§3.4.2). */
  transport: 'tcp' | 'tls' | 'unix';
  /** A port to listen on (a restarted receiver takes its old port); default a free one. */
  port?: number;
  /** The unix socket's path. */
  path?: string;
  /** PEM file paths of the server certificate and key (transport `tls`). */
  tls?: { cert: string; key: string };
}

/** Splits `buffer` into octet-counted frames (`MSG-LEN SP MSG`); returns the rest, or an error text. */
function octetFrames(buffer: Buffer, out: Buffer[]): { rest: Buffer; error?: string } {
  let rest = buffer;
  for (;;) {
    const space = rest.indexOf(0x20);
    if (space < 0) {
      // MSG-LEN is at most a few digits: more without a space is not a frame.
      return /^[0-9]{0,9}$/.test(rest.toString('latin1')) ? { rest } : { rest, error: `no MSG-LEN before ${JSON.stringify(rest.subarray(0, 40).toString('latin1'))}` };
    }
    const lengthText = rest.subarray(0, space).toString('latin1');
    // RFC 6587 §3.4.1: MSG-LEN = NONZERO-DIGIT *DIGIT.
    if (!/^[1-9][0-9]*$/.test(lengthText)) return { rest, error: `invalid MSG-LEN ${JSON.stringify(lengthText)}` };
    const length = Number(lengthText);
    if (rest.length < space + 1 + length) return { rest };
    out.push(rest.subarray(space + 1, space + 1 + length));
    rest = rest.subarray(space + 1 + length);
  }
}

/** Splits `buffer` into newline-terminated lines; returns the rest. */
function lineFrames(buffer: Buffer, out: Buffer[]): { rest: Buffer } {
  let rest = buffer;
  for (let nl = rest.indexOf(0x0a); nl >= 0; nl = rest.indexOf(0x0a)) {
    out.push(rest.subarray(0, nl));
    rest = rest.subarray(nl + 1);
  }
  return { rest };
}

/** Listens for syslog over TCP, TLS (RFC 5425) or a unix stream socket, and parses its framing strictly. */
export async function startStreamReceiver(options: StreamReceiverOptions): Promise<SyslogReceiver> {
  const messages: Buffer[] = [];
  const framingErrors: string[] = [];
  const sockets = new Map<net.Socket, Buffer>();
  let accepted = 0;
  const onConnection = (socket: net.Socket): void => {
    accepted += 1;
    sockets.set(socket, Buffer.alloc(0));
    socket.on('data', (chunk: Buffer) => {
      const buffer = Buffer.concat([sockets.get(socket) ?? Buffer.alloc(0), chunk]);
      const parsed: { rest: Buffer; error?: string } = options.transport === 'unix' ? lineFrames(buffer, messages) : octetFrames(buffer, messages);
      sockets.set(socket, parsed.rest);
      if (parsed.error !== undefined) {
        framingErrors.push(parsed.error);
        socket.destroy();
      }
    });
    socket.on('error', () => undefined); // A client that resets its connection is not the receiver's failure.
    socket.on('close', () => sockets.delete(socket));
  };
  const server =
    options.transport === 'tls'
      ? tls.createServer({ cert: readFileSync(options.tls?.cert ?? ''), key: readFileSync(options.tls?.key ?? '') }, onConnection)
      : net.createServer(onConnection);
  if (options.transport === 'unix') server.listen(options.path);
  else server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  let closed: Promise<void> | undefined;
  return {
    port: options.transport === 'unix' ? 0 : (server.address() as AddressInfo).port,
    messages,
    framingErrors,
    connections: () => accepted,
    openConnections: () => sockets.size,
    pendingBytes: () => [...sockets.values()].reduce((sum, rest) => sum + rest.length, 0),
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets.keys()) socket.destroy();
      });
      return closed;
    },
  };
}
