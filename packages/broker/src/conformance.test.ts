import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { USERS, writeTestAuthFile } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { connackCode, connectPacket, rawConnect, rawLogin, remainingLength } from './testing/raw.js';
import mqtt from 'mqtt';
import { waitFor } from '../../../tests/helpers.js';

const brokers = createTestBrokers();
afterEach(() => brokers.closeAll());

describe('MQTT 3.1.1 conformance', () => {
  it('MQTT-3.1.3-8: a zero-byte client id with CleanSession=0 gets CONNACK 0x02 and the connection closed; with CleanSession=1 it is accepted', async () => {
    const broker = await brokers.start();
    const port = Number(new URL(broker.url).port);
    const refused = await rawLogin(port, '', undefined, { clean: false });
    expect(refused.code).toBe(2);
    await refused.connection.closed;
    const accepted = await rawLogin(port, '', undefined, { clean: true });
    expect(accepted.code).toBe(0);
    accepted.connection.socket.destroy();
  });

  it('refuses the zero-byte persistent session before any login check, on a broker with logins too', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fso-conformance-'));
    try {
      const broker = await brokers.start({ auth: { authFile: await writeTestAuthFile(dir) } });
      const port = Number(new URL(broker.url).port);
      const refused = await rawLogin(port, '', USERS.viewer, { clean: false });
      expect(refused.code).toBe(2);
      const accepted = await rawLogin(port, '', USERS.viewer, { clean: true });
      expect(accepted.code).toBe(0);
      accepted.connection.socket.destroy();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('MQTT-3.2.0-1: a persistent session reconnecting during a publish flood gets its CONNACK first, then the messages', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'fso-conformance-'));
    try {
      // With --data-dir the session's subscriptions and will are restored through LevelDB: a window before the CONNACK.
      const broker = await brokers.start({ dataDir: path.join(dir, 'data') });
      const port = Number(new URL(broker.url).port);
      const session = await mqtt.connectAsync(broker.url, { clientId: 'rec', clean: false, protocolVersion: 4, reconnectPeriod: 0 });
      await session.subscribeAsync('fso/#', { qos: 1 });
      await session.endAsync();
      const publisher = await mqtt.connectAsync(broker.url, { clientId: 'flood', protocolVersion: 4, reconnectPeriod: 0 });
      let flooding = true;
      const flood = (async () => {
        while (flooding) await Promise.all(Array.from({ length: 50 }, () => publisher.publishAsync('fso/agents/a/events/create', 'x', { qos: 1 })));
      })();
      const firstPackets: number[] = [];
      try {
        for (let i = 0; i < 40; i++) {
          const connection = await rawConnect(port);
          connection.socket.write(connectPacket('rec', undefined, false));
          await waitFor(() => connection.received().length > 0 || connection.isClosed(), 'a first packet', 20_000, 1);
          firstPackets.push(connection.received()[0] ?? -1);
          connection.socket.destroy();
          await connection.closed;
        }
      } finally {
        flooding = false;
        await flood;
        await publisher.endAsync();
      }
      // 0x20: CONNACK; 0x32: a QoS 1 PUBLISH (what aedes sent first before the fix).
      expect(firstPackets.filter((b) => b !== 0x20).map((b) => b.toString(16))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('speaks MQTT 3.1.1 only: an MQTT 5 CONNECT is refused (CONNACK 0x01, unacceptable protocol version) or closed, never accepted', async () => {
    const broker = await brokers.start();
    const connection = await rawConnect(Number(new URL(broker.url).port));
    const utf8 = (s: string): Buffer => Buffer.concat([Buffer.from([0, Buffer.byteLength(s)]), Buffer.from(s)]);
    // Protocol level 5, CleanStart, keepalive 60, no properties (length 0), client id.
    const body = Buffer.concat([utf8('MQTT'), Buffer.from([5, 0x02, 0, 60, 0]), utf8('v5-client')]);
    connection.socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(body.length), body]));
    await waitFor(() => connection.isClosed() || connackCode(connection.received()) !== undefined, 'a CONNACK or a close for the MQTT 5 client');
    expect(connackCode(connection.received()) ?? 'closed').not.toBe(0);
    connection.socket.destroy();
  });
});
