// Preloaded into a child under measurement (`node --import memProbe.mjs …`):
// answers `{ bench: 'memory' }` over the IPC channel with the process's own
// view of its memory (heap, external) — what /proc cannot tell. Inert
// without an IPC channel. The channel is unref'd: it never keeps the child alive.
import v8 from 'node:v8';
import vm from 'node:vm';

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
