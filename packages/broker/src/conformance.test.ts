import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { USERS, writeTestAuthFile } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { connackCode, rawConnect, rawLogin, remainingLength } from './testing/raw.js';
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
