import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitForProgress } from '../../../tests/helpers.js';
import type { Broker } from './broker.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients } from './testing/clients.js';

// aedes drops a packet numbered below one it already delivered to that client, and LevelDB
// writes finish out of order: before keepPublishOrder (storage.ts) a burst lost 1-3 % of its
// messages, and a burst with retained messages in it about 10 % (moscajs/aedes#955).

const TOPIC_FILTER = 'order/#';
/** How long deliveries may pause, once every publish is acknowledged, before the test gives up. */
const STALL_MS = 10_000;

let temp: { path: string; cleanup: () => Promise<void> };
const brokers = createTestBrokers();
const clients = createTestClients();

beforeEach(async () => {
  temp = await createTempDir('fso-broker-order-');
});

afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
  await temp.cleanup();
});

/** What one subscriber received: how many times each published number arrived. */
interface Tally {
  readonly name: string;
  readonly times: Map<number, number>;
}

/** One line per subscriber, equal to {@link complete} when it got each of `count` numbers once. */
function summary({ name, times }: Tally, count: number): string {
  const missing: number[] = [];
  for (let n = 0; n < count && missing.length < 5; n++) if (!times.has(n)) missing.push(n);
  const duplicated = [...times.values()].filter((t) => t > 1).length;
  return `${name}: ${times.size} of ${count}, ${duplicated} duplicated, first missing [${missing.join(', ')}]`;
}

const complete = (name: string, count: number): string => `${name}: ${count} of ${count}, 0 duplicated, first missing []`;

/** Which publishes of a {@link burst} are retained, and their payload size. */
interface Retained {
  every: number;
  bytes: number;
}

/**
 * Publishes `count` QoS 1 messages (payload: their number) as fast as MQTT.js
 * sends them, some `retained`, to a persistent and a clean subscriber of
 * {@link TOPIC_FILTER}; resolves once both have them all, or deliveries
 * stopped for {@link STALL_MS} after the last PUBACK.
 */
async function burst(broker: Broker, count: number, retained?: Retained): Promise<{ acked: number; tallies: Tally[] }> {
  let lastArrival = Date.now();
  const subscriber = async (name: string, clientId: string, clean: boolean): Promise<Tally> => {
    const client: MqttClient = await clients.connect(broker.url, { clientId, clean });
    const times = new Map<number, number>();
    client.on('message', (_topic, payload) => {
      const n = Number(payload.toString('utf8').trimEnd());
      times.set(n, (times.get(n) ?? 0) + 1);
      lastArrival = Date.now();
    });
    await client.subscribeAsync(TOPIC_FILTER, { qos: 1 });
    return { name, times };
  };
  const tallies = [await subscriber('persistent subscriber', 'order-persistent', false), await subscriber('clean subscriber', 'order-clean', true)];

  const publisher = await clients.connect(broker.url, { clientId: 'order-publisher' });
  let acked = 0;
  for (let n = 0; n < count; n++) {
    const retain = retained !== undefined && n % retained.every === 0;
    const payload = retain ? String(n).padEnd(retained.bytes) : String(n);
    publisher.publish(`order/${n % 4}`, payload, { qos: 1, retain }, (err) => {
      if (!err) acked++;
    });
  }
  const allThere = (): boolean => tallies.every((t) => t.times.size === count);
  const stalled = (): boolean => acked === count && Date.now() - lastArrival > STALL_MS;
  // No fixed budget for the burst (a loaded machine is slow, not stuck: issue 12): the wait
  // goes on while publishes are acknowledged or delivered, and ends at a stall.
  await waitForProgress(
    () => allThere() || stalled(),
    () => `${acked} acknowledged, ${tallies.map((t) => `${t.times.size} at the ${t.name}`).join(', ')}`,
    `${count} publishes at both subscribers`,
  );
  return { acked, tallies };
}

describe('startBroker with dataDir under a QoS 1 burst', () => {
  it('delivers all 10,000 publishes exactly once to a persistent and to a clean subscriber', { timeout: 300_000 }, async () => {
    const count = 10_000;
    const broker = await brokers.start({ dataDir: path.join(temp.path, 'data') });
    const { acked, tallies } = await burst(broker, count);
    expect(acked).toBe(count);
    expect(tallies.map((t) => summary(t, count))).toEqual(tallies.map((t) => complete(t.name, count)));
  });

  // A large retained publish waits for storeRetained longer than the small ones after it wait for
  // outgoingEnqueueCombi: ordering outgoingEnqueueCombi alone still lost a few of them.
  it('keeps large retained publishes in order with the small ones after them', { timeout: 300_000 }, async () => {
    const count = 3000;
    const broker = await brokers.start({ dataDir: path.join(temp.path, 'data') });
    const { acked, tallies } = await burst(broker, count, { every: 30, bytes: 256_000 });
    expect(acked).toBe(count);
    expect(tallies.map((t) => summary(t, count))).toEqual(tallies.map((t) => complete(t.name, count)));
  });
});
