// Test support for this package's tests (kept out of the build by tsconfig.json).
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { waitFor } from '../../../../tests/helpers.js';
import { createTestBrokers } from './brokers.js';
import type { TestBrokers } from './brokers.js';
import { connackCode, connectPacket, pubackPacket, publishesIn, rawConnect, subscribePacket } from './raw.js';
import type { RawConnection, RawPublish } from './raw.js';
import { startRedis } from './redis.js';

/**
 * A persistent session (clean session off) subscribed to a filter at QoS 1
 * over a raw socket, which acknowledges only when told. Not MQTT.js: it
 * handles one PUBLISH at a time and sends its PUBACK before it reads the
 * next, so it can never hold many unacknowledged, and it cannot withhold one.
 */
export interface RawSession {
  received(): RawPublish[];
  /** Received and not yet acknowledged. */
  unacked(): number;
  /** Acknowledges everything received so far, or the first `upTo` received when given. */
  ackAll(upTo?: number): void;
  connection: RawConnection;
}

/** Connects `clientId` with clean session off and, unless `subscribe` is false, subscribes it to `filter` at QoS 1. */
export async function rawSession(url: string, clientId: string, { subscribe = true, filter = 'win/#' } = {}): Promise<RawSession> {
  const connection = await rawConnect(Number(new URL(url).port));
  connection.socket.write(connectPacket(clientId, undefined, false));
  await waitFor(() => connackCode(connection.received()) === 0, `a CONNACK 0 for ${clientId}`);
  if (subscribe) {
    connection.socket.write(subscribePacket(1, [filter]));
    await waitFor(() => connection.received().includes(Buffer.from([0x90, 3, 0, 1, 1])), `a SUBACK (QoS 1) for ${clientId}`);
  }
  let acked = 0;
  const received = (): RawPublish[] => publishesIn(connection.received());
  return {
    received,
    unacked: () => received().length - acked,
    ackAll: (upTo) => {
      const all = received().slice(0, upTo);
      for (const p of all.slice(acked)) connection.socket.write(pubackPacket(p.messageId as number));
      acked = Math.max(acked, all.length);
    },
    connection,
  };
}

/** How many times each payload arrived, as `n: times` for those not exactly once (empty when each of `count` came once). */
export function notOnce(received: readonly RawPublish[], count: number): string[] {
  const times = new Map<string, number>();
  for (const p of received) times.set(p.payload, (times.get(p.payload) ?? 0) + 1);
  const wrong: string[] = [];
  for (let i = 0; i < count && wrong.length < 10; i++) if (times.get(String(i)) !== 1) wrong.push(`${i}: ${times.get(String(i)) ?? 0}`);
  return wrong;
}

/** Publishes `${topic}/0` … `${topic}/${count - 1}` at QoS 1, payload the number; resolves once all are acknowledged. */
export async function publishAll(client: MqttClient, topic: string, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, i) => client.publishAsync(`${topic}/${i}`, String(i), { qos: 1 })));
}

/** A real redis-server for a describe block, brokers, publishers and raw sessions closed after each test. */
export interface SessionFixture {
  readonly brokers: TestBrokers;
  /** The redis-server's URL (after beforeAll). */
  redisUrl(): string;
  /** A command connection to it (after beforeAll). */
  db(): Redis;
  publisherOn(url: string): Promise<MqttClient>;
  sessionOn(url: string, clientId: string, options?: { subscribe?: boolean; filter?: string }): Promise<RawSession>;
}

/** Registers the describe block's hooks: redis-server started once, what a test opened closed after it. */
export function useSessionFixture(): SessionFixture {
  const brokers = createTestBrokers();
  const publishers: MqttClient[] = [];
  const sessions: RawSession[] = [];
  let redis: { url: string; child: ChildProcess } | undefined;
  let db: Redis | undefined;
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useSessionFixture: redis-server not started (call it inside describe, use it inside a test)');
    return value;
  };

  beforeAll(async () => {
    redis = await startRedis();
    db = new Redis(redis.url);
  });

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.connection.socket.destroy();
    await Promise.all(publishers.splice(0).map((p) => p.endAsync(true)));
    await brokers.closeAll();
  });

  afterAll(async () => {
    await db?.quit();
    redis?.child.kill('SIGKILL');
  });

  return {
    brokers,
    redisUrl: () => started(redis).url,
    db: () => started(db),
    publisherOn: async (url) => {
      const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
      publishers.push(client);
      return client;
    },
    sessionOn: async (url, clientId, options) => {
      const session = await rawSession(url, clientId, options);
      sessions.push(session);
      return session;
    },
  };
}
