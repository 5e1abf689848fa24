/** Runs at most `concurrency` tasks at once (bounded fds while hashing a burst of 10,000 files). */
export function createLimiter(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  // A queue read from `head`: Array#shift on 50,000 waiters (a first start) moved them all each time.
  let waiting: Array<() => void> = [];
  let head = 0;
  const release = (): void => {
    active -= 1;
    const next = waiting[head];
    if (next === undefined) return;
    head += 1;
    if (head === waiting.length) {
      waiting = [];
      head = 0;
    }
    next();
  };
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    active += 1;
    try {
      return await task();
    } finally {
      release();
    }
  };
}
