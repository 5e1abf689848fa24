// Test support for this package's tests (kept out of the build by tsconfig.json).
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { waitFor } from '../../../../tests/helpers.js';

/** MQTT's variable-length remaining length (MQTT-2.2.3). */
export function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

const utf8 = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** A CONNECT packet (MQTT 3.1.1, clean session unless `clean` is false, keepalive 60), with username and password when given. */
export function connectPacket(clientId: string, credentials?: { username: string; password: string }, clean = true): Buffer {
  const flags = (clean ? 0x02 : 0) | (credentials ? 0xc0 : 0);
  const body = Buffer.concat([
    utf8('MQTT'),
    Buffer.from([4, flags, 0, 60]),
    utf8(clientId),
    ...(credentials ? [utf8(credentials.username), utf8(credentials.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]);
}

/** A SUBSCRIBE packet (packet id `id`) for `filters`, each at QoS 1. */
export function subscribePacket(id: number, filters: readonly string[]): Buffer {
  const body = Buffer.concat([Buffer.from([id >> 8, id & 0xff]), ...filters.flatMap((f) => [utf8(f), Buffer.from([1])])]);
  return Buffer.concat([Buffer.from([0x82]), remainingLength(body.length), body]);
}

/** An UNSUBSCRIBE packet (packet id `id`) for `filters`. */
export function unsubscribePacket(id: number, filters: readonly string[]): Buffer {
  const body = Buffer.concat([Buffer.from([id >> 8, id & 0xff]), ...filters.map(utf8)]);
  return Buffer.concat([Buffer.from([0xa2]), remainingLength(body.length), body]);
}

/** The return code of the CONNACK at the start of `received`, or undefined when none arrived. */
export function connackCode(received: Buffer): number | undefined {
  return received.length >= 4 && received[0] === 0x20 ? received[3] : undefined;
}

/** A raw TCP connection that records what it receives and when it is closed. */
export interface RawConnection {
  socket: Socket;
  received(): Buffer;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
  isClosed(): boolean;
}

/** Connects to `host:port`, from `localAddress` when given (any 127.x.y.z works on Linux loopback). */
export async function rawConnect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawConnection> {
  const socket = connect({ port, host, localAddress });
  const chunks: Buffer[] = [];
  let isClosed = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, received: () => Buffer.concat(chunks), closed, isClosed: () => isClosed };
}

/** What a raw login got: the CONNACK code (undefined when closed without one) and how long it took. */
export interface RawLogin {
  code: number | undefined;
  ms: number;
  /** Still open when the login was accepted; the caller destroys it. */
  connection: RawConnection;
}

/**
 * Sends one CONNECT over a new raw socket (from `localAddress` when given)
 * and waits for its CONNACK or the close.
 */
export async function rawLogin(
  port: number,
  clientId: string,
  credentials?: { username: string; password: string },
  options: { localAddress?: string; clean?: boolean; timeoutMs?: number } = {},
): Promise<RawLogin> {
  const connection = await rawConnect(port, '127.0.0.1', options.localAddress);
  const started = Date.now();
  connection.socket.write(connectPacket(clientId, credentials, options.clean));
  const answered = (): boolean => connection.isClosed() || connackCode(connection.received()) !== undefined;
  await waitFor(answered, `a CONNACK or a close for ${clientId}`, options.timeoutMs ?? 20_000, 5);
  return { code: connackCode(connection.received()), ms: Date.now() - started, connection };
}

/** A PUBLISH a raw connection received: its packet id (QoS 1/2), topic and payload as UTF-8. */
export interface RawPublish {
  messageId: number | undefined;
  topic: string;
  payload: string;
}

/** The PUBLISH packets in `received` (a stream of whole MQTT packets; a partial one at the end is left out). */
export function publishesIn(received: Buffer): RawPublish[] {
  const found: RawPublish[] = [];
  let at = 0;
  while (at + 2 <= received.length) {
    const type = (received[at] as number) >> 4;
    const qos = ((received[at] as number) >> 1) & 3;
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    for (;;) {
      if (i >= received.length) return found;
      const byte = received[i++] as number;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const end = i + length;
    if (end > received.length) return found;
    if (type === 3) {
      const topicLength = received.readUInt16BE(i);
      const topic = received.toString('utf8', i + 2, i + 2 + topicLength);
      let body = i + 2 + topicLength;
      let messageId: number | undefined;
      if (qos > 0) {
        messageId = received.readUInt16BE(body);
        body += 2;
      }
      found.push({ messageId, topic, payload: received.toString('utf8', body, end) });
    }
    at = end;
  }
  return found;
}

/** A PUBACK for packet id `id`. */
export function pubackPacket(id: number): Buffer {
  return Buffer.from([0x40, 2, id >> 8, id & 0xff]);
}
