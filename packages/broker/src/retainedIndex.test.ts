import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { withRetainedIndex } from './retainedIndex.js';

/** A store like aedes-persistence's, counting full scans. */
function store(initial: Record<string, string> = {}) {
  const data = new Map<string, { topic: string; payload: Buffer }>(Object.entries(initial).map(([topic, p]) => [topic, { topic, payload: Buffer.from(p) }]));
  const s = {
    scans: 0,
    data,
    async storeRetained(packet: { topic: string; payload: Buffer }) {
      if (packet.payload.length === 0) data.delete(packet.topic);
      else data.set(packet.topic, packet);
    },
    createRetainedStream(pattern: string) {
      expect(pattern).toBe('#');
      s.scans += 1;
      return Readable.from([...data.values()]);
    },
    other: () => 'passed through',
  };
  return s;
}

async function read(stream: NodeJS.ReadableStream): Promise<string[]> {
  const out: string[] = [];
  for await (const p of stream as AsyncIterable<{ topic: string; payload: Buffer }>) out.push(`${p.topic}=${p.payload.toString()}`);
  return out;
}

describe('withRetainedIndex', () => {
  it('answers exact filters by lookup and wildcards by one pass, reading the store once', async () => {
    const s = store({ 'fso/agents/a/status': 'on', 'fso/agents/b/status': 'off', 'fso/config/default': 'c', '$SYS/x': 'sys' });
    const p = withRetainedIndex(s) as typeof s & { createRetainedStreamCombi(p: string[]): NodeJS.ReadableStream };
    expect(await read(p.createRetainedStreamCombi(['fso/agents/a/status', 'fso/config/default', 'fso/agents/zz/config']))).toEqual(['fso/agents/a/status=on', 'fso/config/default=c']);
    expect((await read(p.createRetainedStream('fso/agents/+/status'))).sort()).toEqual(['fso/agents/a/status=on', 'fso/agents/b/status=off']);
    expect(await read(p.createRetainedStream('#'))).not.toContain('$SYS/x=sys');
    expect(await read(p.createRetainedStream('$SYS/#'))).toEqual(['$SYS/x=sys']);
    expect(s.scans).toBe(1);
    expect(p.other()).toBe('passed through');
  });

  it('writes through: a new, changed or cleared message is seen at once and kept by the store', async () => {
    const s = store({ 'fso/agents/a/status': 'old' });
    const p = withRetainedIndex(s) as typeof s & { createRetainedStreamCombi(p: string[]): NodeJS.ReadableStream };
    // Stored before the first read (the index is not filled yet): the newer value wins over the store's scan.
    await p.storeRetained({ topic: 'fso/agents/a/status', payload: Buffer.from('new') });
    await p.storeRetained({ topic: 'fso/agents/b/status', payload: Buffer.from('b') });
    expect((await read(p.createRetainedStream('fso/#'))).sort()).toEqual(['fso/agents/a/status=new', 'fso/agents/b/status=b']);
    await p.storeRetained({ topic: 'fso/agents/b/status', payload: Buffer.alloc(0) });
    expect(await read(p.createRetainedStream('fso/agents/b/status'))).toEqual([]);
    expect([...s.data.keys()]).toEqual(['fso/agents/a/status']);
  });
});
