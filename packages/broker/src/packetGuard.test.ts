import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../tests/helpers.js';
import { GuardedConnection } from './packetGuard.js';
import type { PacketLimits, PacketViolation } from './packetGuard.js';
import { connectPacket, remainingLength, subscribePacket, unsubscribePacket } from './testing/raw.js';

/** A guard over a PassThrough the test writes "network" bytes into; collects what reaches aedes. */
function guard(limits: Partial<PacketLimits> = {}): { feed(bytes: Buffer): void; output(): Buffer; violations: PacketViolation[]; connection: GuardedConnection } {
  const inner = new PassThrough();
  const violations: PacketViolation[] = [];
  const connection = new GuardedConnection(
    inner,
    { maxPacketBytes: 1024, maxConnectBytes: 256, maxPublishRate: 0, maxSubscriptions: 64, ...limits },
    { onViolation: (v) => violations.push(v) },
    { transport: 'mqtt' },
  );
  const chunks: Buffer[] = [];
  connection.on('data', (c: Buffer) => chunks.push(c));
  connection.on('error', () => undefined);
  return { feed: (bytes) => inner.write(bytes), output: () => Buffer.concat(chunks), violations, connection };
}

const publish = (topic: string, payload: Buffer): Buffer => {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), Buffer.from(topic), payload]);
  return Buffer.concat([Buffer.from([0x30]), remainingLength(body.length), body]);
};

describe('GuardedConnection', () => {
  it('passes packets through unchanged, even one byte at a time', async () => {
    const g = guard();
    const stream = Buffer.concat([connectPacket('c1'), publish('a/b', Buffer.alloc(200, 1)), publish('a/c', Buffer.alloc(1000, 2)), Buffer.from([0xc0, 0x00])]);
    for (const byte of stream) g.feed(Buffer.from([byte]));
    await waitFor(() => g.output().length === stream.length || undefined, 'every byte at the output');
    expect(g.output().equals(stream)).toBe(true);
    expect(g.violations).toEqual([]);
  });

  /** A guarded connection over a socket that records each write(2) it would make. */
  const recordingConnection = (): { connection: GuardedConnection; writes: Buffer[][] } => {
    const writes: Buffer[][] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        writes.push([chunk]);
        done();
      },
      writev(chunks, done) {
        writes.push(chunks.map((c) => c.chunk as Buffer));
        done();
      },
    });
    const connection = new GuardedConnection(socket, { maxPacketBytes: 1024, maxConnectBytes: 256, maxPublishRate: 0, maxSubscriptions: 64 }, { onViolation: () => undefined }, { transport: 'mqtt' });
    return { connection, writes };
  };
  /** As mqtt-packet writes a PUBLISH: corked, header, topic, payload, uncorked on the next tick. */
  const writePacket = (connection: GuardedConnection, pieces: Buffer[]): void => {
    connection.cork();
    for (const piece of pieces) connection.write(piece);
    process.nextTick(() => connection.uncork());
  };
  const pieces = [Buffer.from([0x30, 0x0a]), Buffer.from([0x00, 0x03, 0x61, 0x2f, 0x62]), Buffer.from('hello')];

  it('hands a packet written in corked pieces to the socket as one write, in order', async () => {
    const { connection, writes } = recordingConnection();
    writePacket(connection, pieces);
    await waitFor(() => writes.flat().length === pieces.length || undefined, 'every piece at the socket');
    expect(writes).toHaveLength(1);
    expect(Buffer.concat(writes[0] as Buffer[]).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('hands the packets of one turn of the event loop to the socket as one write, and a later turn\'s as another', async () => {
    const { connection, writes } = recordingConnection();
    for (let i = 0; i < 3; i += 1) {
      writePacket(connection, pieces);
      // Its uncork has run (as aedes writes: one packet after another, each on its own tick).
      await new Promise((resolve) => process.nextTick(resolve));
    }
    await waitFor(() => writes.flat().length === 3 * pieces.length || undefined, 'the three packets at the socket');
    expect(writes.map((w) => Buffer.concat(w).length)).toEqual([3 * Buffer.concat(pieces).length]);
    writePacket(connection, pieces);
    await waitFor(() => writes.length === 2 || undefined, 'the next turn\'s packet at the socket');
    expect(Buffer.concat(writes.flat()).equals(Buffer.concat([...pieces, ...pieces, ...pieces, ...pieces]))).toBe(true);
  });

  it('cuts at a header announcing too much, even when the length bytes arrive apart', async () => {
    const g = guard();
    g.feed(connectPacket('c1'));
    const header = Buffer.concat([Buffer.from([0x30]), remainingLength(1025)]);
    for (const byte of header) g.feed(Buffer.from([byte]));
    await waitFor(() => g.connection.destroyed || undefined, 'the connection to be destroyed');
    expect(g.violations).toEqual([{ reason: 'packet-too-large', packetType: 3, announcedBytes: 1025, limitBytes: 1024 }]);
  });

  it('holds the CONNECT to its own, smaller limit', async () => {
    const g = guard();
    g.feed(Buffer.concat([Buffer.from([0x10]), remainingLength(300)]));
    await waitFor(() => g.connection.destroyed || undefined, 'the connection to be destroyed');
    expect(g.violations[0]).toMatchObject({ reason: 'packet-too-large', packetType: 1, limitBytes: 256 });
  });

  it.each([
    { kind: 'PUBLISH', packet: (i: number) => publish('t', Buffer.from([i])) },
    { kind: 'SUBSCRIBE and UNSUBSCRIBE', packet: (i: number) => (i % 2 ? unsubscribePacket(i + 1, ['t']) : subscribePacket(i + 1, ['t'])) },
  ])('holds $kind packets beyond the rate until tokens come back, in order', async ({ packet }) => {
    const g = guard({ maxPublishRate: 20 });
    const stream = Buffer.concat([connectPacket('c1'), ...Array.from({ length: 30 }, (_, i) => packet(i))]);
    const startedAt = Date.now();
    g.feed(stream);
    await waitFor(() => g.output().length === stream.length || undefined, 'every packet at the output');
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(400);
    expect(g.output().equals(stream)).toBe(true);
  });

  it('counts the filters of SUBSCRIBE and UNSUBSCRIBE, even one byte at a time, and cuts past the limit before the packet is whole', async () => {
    const filters = ['a/b', '', 'fso/agents/+/status'];
    const allowed = guard({ maxSubscriptions: 3 });
    const stream = Buffer.concat([connectPacket('c1'), subscribePacket(1, filters), unsubscribePacket(2, filters), subscribePacket(3, ['x'])]);
    for (const byte of stream) allowed.feed(Buffer.from([byte]));
    await waitFor(() => allowed.output().length === stream.length || undefined, 'every byte at the output');
    expect(allowed.output().equals(stream)).toBe(true);
    expect(allowed.violations).toEqual([]);

    for (const packet of [subscribePacket(1, filters), unsubscribePacket(2, filters)]) {
      const cut = guard({ maxSubscriptions: 2 });
      cut.feed(connectPacket('c1'));
      for (const byte of packet) cut.feed(Buffer.from([byte]));
      await waitFor(() => cut.connection.destroyed || undefined, 'the connection to be destroyed');
      expect(cut.violations).toEqual([{ reason: 'too-many-filters', packetType: packet[0]! >> 4, filters: 3, limitFilters: 2 }]);
      // The packet never reached aedes whole: its last filter stayed behind.
      expect(cut.output().length).toBeLessThan(connectPacket('c1').length + packet.length);
    }
  });

});
