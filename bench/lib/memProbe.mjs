// Preloaded into a child under measurement (`node --import memProbe.mjs …`):
// answers `{ bench: 'memory' }` over the IPC channel with the process's own
// view of its memory (heap, external) — what /proc cannot tell. Inert
// without an IPC channel. The channel is unref'd: it never keeps the child alive.
import { appendFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

// BENCH_LOOP_STATS_FILE: every 100 ms, one JSONL line of the event loop's
// delay over that time ({ t: epoch ms, p99, max } in ms): tells main-thread
// blocking from waiting on the disk.
if (process.env.BENCH_LOOP_STATS_FILE) {
  const file = process.env.BENCH_LOOP_STATS_FILE;
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const ms = (ns) => Math.round(ns / 1e5) / 10;
  setInterval(() => {
    appendFileSync(file, `${JSON.stringify({ t: Date.now(), p99: ms(h.percentile(99)), max: ms(h.max) })}\n`);
    h.reset();
  }, 100).unref();
  // The process's fsyncs (FileHandle.sync/datasync: the outbox's group commits), and every
  // 50 ms how long a stat(2) waits in libuv's thread pool: { t, sync | pool: ms }.
  const handle = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(handle);
  await handle.close();
  for (const name of ['sync', 'datasync']) {
    const original = proto[name];
    proto[name] = async function timed(...args) {
      const start = performance.now();
      try {
        return await original.apply(this, args);
      } finally {
        appendFileSync(file, `${JSON.stringify({ t: Date.now(), sync: Math.round((performance.now() - start) * 10) / 10 })}\n`);
      }
    };
  }
  setInterval(() => {
    const start = performance.now();
    void stat('/').then(() => appendFileSync(file, `${JSON.stringify({ t: Date.now(), pool: Math.round((performance.now() - start) * 10) / 10 })}\n`));
  }, 50).unref();
}

if (process.send && process.channel) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  process.on('message', (message) => {
    if (message?.bench === 'heap-snapshot') {
      process.send({ bench: 'heap-snapshot', file: v8.writeHeapSnapshot(message.file) });
      return;
    }
    if (message?.bench !== 'memory') return;
    if (message.gc) gc();
    const usage = process.memoryUsage();
    const heap = v8.getHeapStatistics();
    process.send({ bench: 'memory', ...usage, usedHeapSize: heap.used_heap_size, totalHeapSize: heap.total_heap_size });
  });
  process.channel.unref();
}
