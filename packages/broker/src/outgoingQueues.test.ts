import { describe, expect, it } from 'vitest';
import { OutgoingQueues } from './outgoingQueues.js';

const client = { id: 'recorder' };
const packet = (counter: number, brokerId = 'b1') => ({ cmd: 'publish', brokerId, brokerCounter: counter, topic: `t/${counter}`, payload: Buffer.from(String(counter)), qos: 1, retain: false });

async function drain(stream: NodeJS.ReadableStream): Promise<Array<{ brokerCounter?: number; messageId?: number; cmd?: string }>> {
  const out: Array<{ brokerCounter?: number; messageId?: number; cmd?: string }> = [];
  for await (const p of stream) out.push(p as { brokerCounter?: number });
  return out;
}

describe('OutgoingQueues (indexed outgoing queues of persistent sessions)', () => {
  it('keeps enqueue order, gives packet ids, clears by packet id', async () => {
    const q = new OutgoingQueues();
    for (let i = 1; i <= 5; i++) await q.outgoingEnqueueCombi([{ clientId: 'recorder' }, { clientId: 'other' }], packet(i));
    for (let i = 1; i <= 5; i++) await q.outgoingUpdate(client, { ...packet(i), messageId: 100 + i });
    expect((await drain(q.outgoingStream(client))).map((p) => [p.brokerCounter, p.messageId])).toEqual([[1, 101], [2, 102], [3, 103], [4, 104], [5, 105]]);
    expect((await q.outgoingClearMessageId(client, { messageId: 103 }))?.brokerCounter).toBe(3);
    expect(await q.outgoingClearMessageId(client, { messageId: 103 })).toBeUndefined();
    expect((await drain(q.outgoingStream(client))).map((p) => p.brokerCounter)).toEqual([1, 2, 4, 5]);
    // Another session's queue is its own.
    expect((await drain(q.outgoingStream({ id: 'other' }))).map((p) => p.messageId)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    expect(q.size).toBe(9);
  });

  it('moves a packet to its new packet id when it is resent after a reconnect, and frees the old id', async () => {
    const q = new OutgoingQueues();
    await q.outgoingEnqueue({ clientId: 'recorder' }, packet(1));
    await q.outgoingEnqueue({ clientId: 'recorder' }, packet(2));
    await q.outgoingUpdate(client, { ...packet(1), messageId: 7 });
    await q.outgoingUpdate(client, { ...packet(1), messageId: 9 });
    // Packet id 7 now belongs to another packet: clearing 7 must not take packet 1 away.
    await q.outgoingUpdate(client, { ...packet(2), messageId: 7 });
    expect((await q.outgoingClearMessageId(client, { messageId: 7 }))?.brokerCounter).toBe(2);
    expect((await q.outgoingClearMessageId(client, { messageId: 9 }))?.brokerCounter).toBe(1);
    expect(q.size).toBe(0);
  });

  it('replaces a QoS 2 packet by its PUBREL in place, and refuses an update of nothing', async () => {
    const q = new OutgoingQueues();
    await q.outgoingEnqueue({ clientId: 'recorder' }, packet(1));
    await q.outgoingEnqueue({ clientId: 'recorder' }, packet(2));
    await q.outgoingUpdate(client, { ...packet(1), messageId: 1 });
    await q.outgoingUpdate(client, { cmd: 'pubrel', messageId: 1 });
    expect((await drain(q.outgoingStream(client))).map((p) => p.cmd)).toEqual(['pubrel', 'publish']);
    await expect(q.outgoingUpdate(client, { ...packet(3), messageId: 3 })).rejects.toThrow('no such packet');
    await expect(q.outgoingUpdate(client, { cmd: 'pubrel', messageId: 42 })).rejects.toThrow('no such packet');
  });

  it('a deep queue: 100,000 in flight, packet ids wrapping past 65,535, acknowledged out of order', async () => {
    const q = new OutgoingQueues();
    const n = 100_000;
    for (let i = 1; i <= n; i++) await q.outgoingEnqueue({ clientId: 'recorder' }, packet(i));
    for (let i = 1; i <= n; i++) await q.outgoingUpdate(client, { ...packet(i), messageId: (i % 65535) + 1 });
    // Packet ids repeat past 65,535: the index follows the latest holder, as aedes only reuses an acknowledged id.
    let cleared = 0;
    for (let i = n; i > n - 60_000; i--) if (await q.outgoingClearMessageId(client, { messageId: (i % 65535) + 1 })) cleared++;
    expect(cleared).toBe(60_000);
  });
});
