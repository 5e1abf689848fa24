import { describe, expect, it } from 'vitest';
import { Fifo } from './fifo.js';

describe('Fifo', () => {
  it('gives items back oldest first, across the trims of its read part', () => {
    const q = new Fifo<number>([0, 1]);
    for (let i = 2; i < 5000; i += 1) q.push(i);
    const out: number[] = [];
    for (let i = 0; i < 3000; i += 1) out.push(q.shift() as number);
    expect(q.size).toBe(2000);
    expect(q.peek()).toBe(3000);
    q.push(5000);
    expect(q.toArray()).toEqual(Array.from({ length: 2001 }, (_, i) => 3000 + i));
    while (q.size > 0) out.push(q.shift() as number);
    expect(out).toEqual(Array.from({ length: 5001 }, (_, i) => i));
    expect(q.shift()).toBeUndefined();
    expect(q.peek()).toBeUndefined();
  });

  it('clear empties it', () => {
    const q = new Fifo<string>(['a']);
    q.clear();
    expect(q.size).toBe(0);
    expect(q.toArray()).toEqual([]);
  });
});
