import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tests/helpers.js';
import { startBroker } from './broker.js';
import { BrokerListenError } from './errors.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received } from './testing/clients.js';
import { captureLog } from './testing/log.js';

const brokers = createTestBrokers();
const start = brokers.start;
const clients = createTestClients();
const connect = clients.connect;

afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});

/** Resolves with the error of a TCP connect to `port`, or fails when the connect succeeds. */
function connectError(port: number): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      reject(new Error(`port ${port} still accepts connections`));
    });
    socket.once('error', resolve);
  });
}

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('startBroker', () => {
  it('carries a QoS 1 publish from one client to a subscriber', async () => {
    const broker = await start();
    expect(broker.url).toBe(`mqtt://127.0.0.1:${broker.port}`);
    expect(broker.port).toBeGreaterThan(0);
    expect(broker.wsUrl).toBeUndefined();

    const subscriber = await connect(broker.url);
    const messages = received(subscriber);
    await subscriber.subscribeAsync('fso/agents/+/events/#', { qos: 1 });

    const publisher = await connect(broker.url);
    await publisher.publishAsync('fso/agents/web-01/events/create', '{"seq":1}', { qos: 1 });

    const message = await waitFor(() => messages[0], 'the QoS 1 message at the subscriber');
    expect(message).toEqual({ topic: 'fso/agents/web-01/events/create', payload: '{"seq":1}', qos: 1, retain: false });
  });

  it('serves MQTT over WebSocket: a WebSocket client gets what a TCP client publishes', async () => {
    const broker = await start({ wsPort: 0 });
    expect(broker.wsUrl).toBe(`ws://127.0.0.1:${broker.wsPort}`);

    const wsClient = await connect(broker.wsUrl as string);
    const messages = received(wsClient);
    await wsClient.subscribeAsync('fso/#', { qos: 1 });

    const tcpClient = await connect(broker.url);
    await tcpClient.publishAsync('fso/agents/a1/status', 'over tcp', { qos: 1 });
    await waitFor(() => messages.find((m) => m.payload === 'over tcp'), 'the TCP message at the WebSocket client');
  });

  it('answers a plain HTTP request on the WebSocket port instead of leaving it hanging', async () => {
    const broker = await start({ wsPort: 0 });
    const response = await fetch(`http://127.0.0.1:${broker.wsPort}/`, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(426);
    await response.text();
  });

  it('logs connects and disconnects with client id and address, never a password or a payload', async () => {
    const { logger, records, text } = captureLog();
    const broker = await start({ logger, wsPort: 0 });

    const client = await connect(broker.url, { clientId: 'log-probe', username: 'u', password: 'secret-password-42' });
    await client.publishAsync('fso/x', 'payload-marker-17', { qos: 1 });
    const viaWs = await connect(broker.wsUrl as string, { clientId: 'log-probe-ws' });
    await client.endAsync();
    await viaWs.endAsync();

    const connected = await waitFor(
      () => records().find((r) => r.msg === 'client connected' && r.clientId === 'log-probe'),
      'the connect log line',
    );
    expect(connected).toMatchObject({ component: 'broker', remoteAddress: '127.0.0.1', transport: 'mqtt' });
    const connectedWs = await waitFor(
      () => records().find((r) => r.msg === 'client connected' && r.clientId === 'log-probe-ws'),
      'the WebSocket connect log line',
    );
    expect(connectedWs).toMatchObject({ remoteAddress: '127.0.0.1', transport: 'ws' });
    await waitFor(
      () => records().find((r) => r.msg === 'client disconnected' && r.clientId === 'log-probe'),
      'the disconnect log line',
    );
    expect(text()).not.toContain('secret-password-42');
    expect(text()).not.toContain('payload-marker-17');
  });

  it('refuses a client publish under $SYS/ and logs the refusal', async () => {
    const { logger, records } = captureLog();
    const broker = await start({ logger });
    const spy = await connect(broker.url);
    const messages = received(spy);
    await spy.subscribeAsync('$SYS/fake/#');

    const forger = await connect(broker.url, { clientId: 'forger' });
    const closed = new Promise<void>((resolve) => forger.once('close', () => resolve()));
    forger.publish('$SYS/fake/state', 'x', { qos: 0 });
    await closed; // aedes drops the connection of a refused publish (MQTT-3.3.5-2)
    const refusal = await waitFor(
      () => records().find((r) => String(r.msg).startsWith('publish refused') && r.clientId === 'forger'),
      'the refusal log line',
    );
    expect(refusal).toMatchObject({ topic: '$SYS/fake/state' });
    expect(messages).toEqual([]);
  });

  it('refuses a QoS 0 publish under the prefix (moscajs/aedes#994) and carries QoS 0 elsewhere', async () => {
    const { logger, records } = captureLog();
    const broker = await start({ logger });
    const spy = await connect(broker.url);
    const messages = received(spy);
    await spy.subscribeAsync(['fso/#', 'other/#'], { qos: 1 });

    const sloppy = await connect(broker.url, { clientId: 'sloppy' });
    await sloppy.publishAsync('other/topic', 'fine', { qos: 0 });
    await waitFor(() => messages.find((m) => m.topic === 'other/topic'), 'the QoS 0 message outside the prefix');
    const closed = new Promise<void>((resolve) => sloppy.once('close', () => resolve()));
    sloppy.publish('fso/agents/web-01/events/create', 'qos0', { qos: 0 });
    await closed;
    const refusal = await waitFor(
      () => records().find((r) => String(r.msg).startsWith('publish refused: QoS 0 under the FSO prefix') && r.clientId === 'sloppy'),
      'the refusal log line',
    );
    expect(refusal).toMatchObject({ topic: 'fso/agents/web-01/events/create' });
    const careful = await connect(broker.url);
    await careful.publishAsync('fso/agents/web-01/events/create', 'qos1', { qos: 1 });
    await waitFor(() => messages.find((m) => m.payload === 'qos1'), 'the QoS 1 message under the prefix');
    expect(messages.map((m) => m.payload)).toEqual(['fine', 'qos1']);
  });

  it('rejects an invalid port before opening anything', async () => {
    await expect(startBroker({ port: 70000 })).rejects.toThrow(RangeError);
    await expect(startBroker({ port: 0, wsPort: -1 })).rejects.toThrow(/invalid wsPort/);
  });
});

describe('Broker.close', () => {
  it('returns the same promise twice and leaves no listener, client or half-open socket behind', async () => {
    const broker = await startBroker({ port: 0, wsPort: 0 });
    const client = await connect(broker.url);
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const wsClient = await connect(broker.wsUrl as string);
    const wsClientClosed = new Promise<void>((resolve) => wsClient.once('close', () => resolve()));
    // A socket that never sends CONNECT: aedes does not know it, close() must still end it.
    const raw = netConnect(broker.port, '127.0.0.1');
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    const rawClosed = new Promise<void>((resolve) => raw.once('close', () => resolve()));

    const first = broker.close();
    expect(broker.close()).toBe(first);
    // aedes itself would drop the silent socket only after its 30 s connect timeout.
    await within(Promise.all([first, clientClosed, wsClientClosed, rawClosed]), 5000, 'close() and every connection to end');

    expect((await connectError(broker.port)).code).toBe('ECONNREFUSED');
    expect((await connectError(broker.wsPort as number)).code).toBe('ECONNREFUSED');
    expect(broker.aedes.closed).toBe(true);
  });
});

describe('listen errors', () => {
  it('says clearly that the TCP port is taken', async () => {
    const first = await start();
    const error = await startBroker({ port: first.port }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BrokerListenError);
    expect(error).toMatchObject({ code: 'EADDRINUSE', transport: 'mqtt', host: '127.0.0.1', port: first.port });
    expect((error as Error).message).toBe(
      `cannot listen for mqtt on 127.0.0.1:${first.port}: the port is already in use (is another broker running?)`,
    );
  });

  it('says clearly that the WebSocket port is taken, and closes the TCP listener it had opened', async () => {
    const first = await start();
    const servers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const before = servers();
    const error = await startBroker({ port: 0, wsPort: first.port }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BrokerListenError);
    expect(error).toMatchObject({ code: 'EADDRINUSE', transport: 'ws', port: first.port });
    expect(servers()).toBe(before);
  });
});
