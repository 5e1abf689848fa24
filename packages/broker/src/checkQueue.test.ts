import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createCheckQueue } from './checkQueue.js';
import { CheckQueueFullError } from './errors.js';

describe('createCheckQueue', () => {
  it('runs at most `concurrency` tasks at once, in arrival order, and refuses beyond `maxWaiting` at once', async () => {
    const queue = createCheckQueue(2, 3);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const task = (n: number) => async (): Promise<number> => {
      started.push(n);
      running += 1;
      most = Math.max(most, running);
      await sleep(30);
      running -= 1;
      return n;
    };
    const runs = [0, 1, 2, 3, 4].map((n) => queue.run(task(n)));
    expect({ running: queue.running, waiting: queue.waiting }).toEqual({ running: 2, waiting: 3 });
    const refusedAt = Date.now();
    await expect(queue.run(task(5))).rejects.toBeInstanceOf(CheckQueueFullError);
    expect(Date.now() - refusedAt).toBeLessThan(20);
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4]);
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect({ running: queue.running, waiting: queue.waiting }).toEqual({ running: 0, waiting: 0 });
  });

  it('frees the place of a task that throws', async () => {
    const queue = createCheckQueue(1, 0);
    await expect(queue.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await queue.run(() => Promise.resolve('next'))).toBe('next');
  });

  it('imitates a task: as long as one when a place is free, longer behind others, refused when full, taking no place', async () => {
    const queue = createCheckQueue(1, 2);
    let started = Date.now();
    await queue.imitate(60);
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(queue.running).toBe(0);

    const busy = [queue.run(() => sleep(200)), queue.run(() => sleep(10))];
    started = Date.now();
    await queue.imitate(60);
    // Half a running task plus one waiting turn plus its own: 2.5 x 60 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);

    const full = queue.run(() => sleep(10));
    expect(queue.waiting).toBe(2);
    await expect(queue.imitate(60)).rejects.toBeInstanceOf(CheckQueueFullError);
    await Promise.all([...busy, full]);
  });
});
