import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BINS, assertBuilt, killAll, spawnDaemon } from '../../../tests/faultHarness.js';
import { waitFor, waitForProgress } from '../../../tests/helpers.js';
import type { Broker } from './broker.js';
import { createTestBrokers } from './testing/brokers.js';
import { startRedis } from './testing/redis.js';
import { connackCode, connectPacket, pubackPacket, publishesIn, rawConnect, subscribePacket } from './testing/raw.js';
import type { RawConnection, RawPublish } from './testing/raw.js';

// Before the window, aedes wrote every queued message to a persistent session at once: in the
// fleet benchmark the recorder had 65,535 unacknowledged within 50 s, packet ids were reused
// while in flight, and the cluster's Redis queue kept the entries whose mapping was lost
// (docs/scaling.md, "The in-flight window").

const WINDOW = 50;

/**
 * A persistent session (clean session off) subscribed to `win/#` at QoS 1
 * over a raw socket, which acknowledges only when told. Not MQTT.js: it
 * handles one PUBLISH at a time and sends its PUBACK before it reads the
 * next, so it can never hold many unacknowledged, which is what the window
 * is about.
 */
interface RawSession {
  received(): RawPublish[];
  /** Received and not yet acknowledged. */
  unacked(): number;
  /** Acknowledges everything received so far. */
  ackAll(): void;
  connection: RawConnection;
}

async function rawSession(url: string, clientId: string, { subscribe = true } = {}): Promise<RawSession> {
  const connection = await rawConnect(Number(new URL(url).port));
  connection.socket.write(connectPacket(clientId, undefined, false));
  await waitFor(() => connackCode(connection.received()) === 0, `a CONNACK 0 for ${clientId}`);
  if (subscribe) {
    connection.socket.write(subscribePacket(1, ['win/#']));
    await waitFor(() => connection.received().includes(Buffer.from([0x90, 3, 0, 1, 1])), `a SUBACK (QoS 1) for ${clientId}`);
  }
  let acked = 0;
  const received = (): RawPublish[] => publishesIn(connection.received());
  return {
    received,
    unacked: () => received().length - acked,
    ackAll: () => {
      const all = received();
      for (const p of all.slice(acked)) connection.socket.write(pubackPacket(p.messageId as number));
      acked = all.length;
    },
    connection,
  };
}

async function publishAll(client: MqttClient, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => client.publishAsync(`win/${i}`, String(i), { qos: 1 })));
}

async function waitingOn(broker: Broker): Promise<number> {
  const metric = await broker.metrics.getSingleMetric('fso_broker_deliveries_waiting')?.get();
  return metric?.values[0]?.value ?? Number.NaN;
}

/**
 * Acknowledges what `session` received, over and over, until it has `count`
 * messages; returns the most it ever held unacknowledged (checked at each
 * look, every 20 ms) and stops early once that is over the window.
 */
async function drain(session: RawSession, count: number, mostSoFar: number): Promise<number> {
  let most = mostSoFar;
  await waitForProgress(
    () => {
      most = Math.max(most, session.unacked());
      session.ackAll();
      return session.received().length >= count || most > WINDOW;
    },
    () => session.received().length,
    `all ${count} messages delivered to the session`,
    { stallMs: 20_000, capMs: 120_000, intervalMs: 20 },
  );
  return most;
}

/** How many times each payload arrived, as `n: times` for those not exactly once (empty when each of `count` came once). */
function notOnce(received: readonly RawPublish[], count: number): string[] {
  const times = new Map<string, number>();
  for (const p of received) times.set(p.payload, (times.get(p.payload) ?? 0) + 1);
  const wrong: string[] = [];
  for (let i = 0; i < count && wrong.length < 10; i++) if (times.get(String(i)) !== 1) wrong.push(`${i}: ${times.get(String(i)) ?? 0}`);
  return wrong;
}

describe('the in-flight window of a persistent session (--max-inflight)', () => {
  const brokers = createTestBrokers();
  const publishers: MqttClient[] = [];
  const sessions: RawSession[] = [];
  let redis: { url: string; child: ChildProcess };
  let db: Redis;

  beforeAll(async () => {
    redis = await startRedis();
    db = new Redis(redis.url);
  });

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.connection.socket.destroy();
    await Promise.all(publishers.splice(0).map((p) => p.endAsync(true)));
    await brokers.closeAll();
    await killAll();
  });

  afterAll(async () => {
    await db.quit();
    redis.child.kill('SIGKILL');
  });

  const publisherOn = async (url: string): Promise<MqttClient> => {
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    publishers.push(client);
    return client;
  };
  const sessionOn = async (url: string, clientId: string, options?: { subscribe?: boolean }): Promise<RawSession> => {
    const session = await rawSession(url, clientId, options);
    sessions.push(session);
    return session;
  };

  /** Publishes `count` on `publishVia`, to a session on `sessionOn`: it holds `WINDOW`, the rest wait on `windowed` until it acknowledges. */
  async function throughTheWindow(publishVia: Broker, windowed: Broker, clientId: string, count: number): Promise<RawSession> {
    const session = await sessionOn(windowed.url, clientId);
    await publishAll(await publisherOn(publishVia.url), count);
    let most = 0;
    // Every publish is acknowledged to its publisher; the windowed node has sent the session what
    // fits and holds the rest. Without a window it sends them all, and `most` says so at once.
    await waitFor(
      async () => {
        most = Math.max(most, session.unacked());
        return most > WINDOW || (session.received().length === WINDOW && (await waitingOn(windowed)) === count - WINDOW);
      },
      `${WINDOW} messages sent to the session and ${count - WINDOW} waiting`,
      30_000,
    );
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    most = await drain(session, count, most);
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    expect(notOnce(session.received(), count)).toEqual([]);
    expect(await waitingOn(windowed)).toBe(0);
    return session;
  }

  it('cluster: holds the session to the window, sends the rest as PUBACKs come, and its Redis queue ends empty', async () => {
    const a = await brokers.start({ redisUrl: redis.url, limits: { maxInflight: WINDOW } });
    const b = await brokers.start({ redisUrl: redis.url, limits: { maxInflight: WINDOW } });
    await throughTheWindow(a, b, 'windowed-cluster', 400);
    // Each PUBACK found its packet: nothing stays behind in the list every later LREM reads.
    await waitFor(async () => (await db.llen('outgoing:windowed-cluster')) === 0, 'the Redis queue of the session to empty');
  });

  it('single broker (in memory): the same window', async () => {
    const broker = await brokers.start({ limits: { maxInflight: WINDOW } });
    await throughTheWindow(broker, broker, 'windowed-single', 400);
  });

  it('cluster: what a SIGKILLed node held for the session is delivered, paced, by the node it reconnects to', async () => {
    assertBuilt();
    // More than aedes-persistence-redis replays by default (1,001): the rest were never sent after a reconnect.
    const count = 1500;
    const daemon = spawnDaemon('node A', BINS.broker, ['--port', '0', '--redis', redis.url, '--max-inflight', String(WINDOW)]);
    const listening = await daemon.waitForLog((l) => typeof l.url === 'string' && String(l.msg).startsWith('listening on'), 'node A listening', 30_000);
    const b = await brokers.start({ redisUrl: redis.url, limits: { maxInflight: WINDOW } });
    const first = await sessionOn(listening.url as string, 'windowed-kill');
    await publishAll(await publisherOn(b.url), count);
    await waitFor(async () => first.received().length >= WINDOW && (await db.llen('outgoing:windowed-kill')) === count, `${WINDOW} sent on node A and ${count} queued in Redis`, 30_000);
    expect(first.unacked()).toBe(WINDOW);

    await daemon.kill('SIGKILL');
    first.connection.socket.destroy();
    // The session is in Redis: node B restores its subscription and replays its whole queue, through the window.
    const second = await sessionOn(b.url, 'windowed-kill', { subscribe: false });
    const most = await drain(second, count, 0);
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    expect(notOnce(second.received(), count)).toEqual([]);
    await waitFor(async () => (await db.llen('outgoing:windowed-kill')) === 0, 'the Redis queue of the session to empty');
  });
});
