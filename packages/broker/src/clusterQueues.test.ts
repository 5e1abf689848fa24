import type { Redis } from 'ioredis';
import { beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tests/helpers.js';
import { notOnce, publishAll, useSessionFixture } from './testing/rawSession.js';

// A cluster node's QoS 1 queue (clusterQueues.ts): the enqueue and the PUBACK are one Redis script
// each, on the keys aedes-persistence-redis reads back in a session's replay.

/** Redis's calls of each command since the last CONFIG RESETSTAT (`INFO commandstats`). */
async function commandCalls(db: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await db.info('commandstats')).matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]));
  return calls;
}

describe("a cluster node's QoS 1 queue in Redis", () => {
  const { brokers, redisUrl, db: connection, publisherOn, sessionOn } = useSessionFixture();
  let db: Redis;

  beforeEach(async () => {
    db = connection();
    await db.flushall();
    await db.config('RESETSTAT');
  });

  const leftover = async (): Promise<string[]> => (await db.keys('*')).filter((k) => k.startsWith('packet:') || k.startsWith('outgoing:') || k === '');

  it('acknowledged messages leave nothing behind: the list empty, each packet and its count deleted, one script a PUBACK', async () => {
    const count = 300;
    const a = await brokers.start({ redisUrl: redisUrl() });
    const b = await brokers.start({ redisUrl: redisUrl() });
    const acks: Array<{ topic: string; messageId: number | undefined }> = [];
    b.aedes.on('ack', (packet) => {
      if (packet && 'topic' in packet) acks.push({ topic: packet.topic, messageId: packet.messageId });
    });
    const session = await sessionOn(b.url, 'queue-acks', { filter: 'acks/#' });
    await publishAll(await publisherOn(a.url), 'acks', count);
    await waitFor(() => session.received().length >= count, `${count} messages delivered to the session`, 30_000);
    expect(await db.llen('outgoing:queue-acks')).toBe(count);
    expect((await db.keys('packet:*')).length, 'a packet and its count per message').toBe(2 * count);

    session.ackAll();
    await waitFor(() => acks.length >= count, `${count} 'ack' events on node B`, 30_000);
    expect(notOnce(session.received(), count)).toEqual([]);
    expect(await leftover()).toEqual([]);
    // aedes's 'ack' event carries the packet acknowledged, with the packet id of its PUBACK.
    const sent = new Map(session.received().map((p) => [p.topic, p.messageId]));
    expect(acks.filter((ack) => sent.get(ack.topic) !== ack.messageId)).toEqual([]);
    // The PUBACKs were the script, not upstream's GET, LREM, DECR, DEL in turn.
    const calls = await commandCalls(db);
    // (ioredis sends EVALSHA, and EVAL once a node when Redis does not know the script yet.)
    expect((calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0), 'enqueue and PUBACK scripts').toBe(2 * count);
    // Redis counts the commands a script calls too: one of each a message (LREM is also aedes's on the wills' list).
    expect([calls.get('rpush'), calls.get('decr')]).toEqual([count, count]);
  });

  it('a message for two sessions stays until both acknowledged it', async () => {
    const count = 100;
    const a = await brokers.start({ redisUrl: redisUrl() });
    const b = await brokers.start({ redisUrl: redisUrl() });
    const first = await sessionOn(a.url, 'queue-first', { filter: 'two/#' });
    const second = await sessionOn(b.url, 'queue-second', { filter: 'two/#' });
    await publishAll(await publisherOn(a.url), 'two', count);
    await waitFor(() => first.received().length >= count && second.received().length >= count, `${count} messages delivered to both sessions`, 30_000);

    first.ackAll();
    await waitFor(async () => (await db.llen('outgoing:queue-first')) === 0, "the first session's list to empty", 30_000);
    const counts = await db.mget(...(await db.keys('packet:*:offlineCount')));
    expect(counts.length).toBe(count);
    expect(counts.filter((c) => c !== '1')).toEqual([]);

    second.ackAll();
    await waitFor(async () => (await leftover()).length === 0, 'every packet and count key deleted', 30_000);
    expect(notOnce(first.received(), count)).toEqual([]);
    expect(notOnce(second.received(), count)).toEqual([]);
  });

  it('what was not acknowledged is replayed once, with its packet id, to the session reconnecting on another node', async () => {
    const count = 400;
    const acked = count / 2;
    const a = await brokers.start({ redisUrl: redisUrl() });
    const b = await brokers.start({ redisUrl: redisUrl() });
    const first = await sessionOn(b.url, 'queue-replay', { filter: 'replay/#' });
    await publishAll(await publisherOn(a.url), 'replay', count);
    await waitFor(() => first.received().length >= count, `${count} messages delivered to the session`, 30_000);
    first.ackAll(acked);
    await waitFor(async () => (await db.llen('outgoing:queue-replay')) === count - acked, `${acked} PUBACKs handled`, 30_000);
    first.connection.socket.destroy();

    const second = await sessionOn(a.url, 'queue-replay', { subscribe: false });
    await waitFor(() => second.received().length >= count - acked, `${count - acked} messages replayed`, 30_000);
    const unacked = first.received().slice(acked);
    // MQTT-4.4.0-1: resent with the packet ids they were first sent with (stored at each delivery).
    expect(second.received().map((p) => [p.topic, p.messageId])).toEqual(unacked.map((p) => [p.topic, p.messageId]));
    second.ackAll();
    await waitFor(async () => (await leftover()).length === 0, 'every list, packet and count key deleted', 30_000);
    expect(notOnce([...first.received().slice(0, acked), ...second.received()], count)).toEqual([]);
  });
});
