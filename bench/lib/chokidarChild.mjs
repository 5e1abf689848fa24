// Raw chokidar 5, alone in its own process: the popular Node watcher, with
// the options the agent gave it while it was built on chokidar (until issue
// 5's directory watches, packages/agent/src/watch/dirWatcher.ts): no polling, no
// atomic mode, symlinks not followed, permission errors ignored. It counts
// events only: the ceiling of a watcher that does nothing with them. Talks to
// the bench over IPC: `ready` with its time, and for `expect` the time the
// last event of a throughput phase arrived. Usage: node chokidarChild.mjs DIR
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { watch } from 'chokidar';

const root = path.resolve(process.argv[2] ?? '.');
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const send = (message) => process.send?.(message);

// Per throughput phase: the distinct paths each event type has been seen for.
const seen = { add: new Set(), change: new Set(), unlink: new Set() };
let total = 0;
let lastEventAt = 0;
let expectation = null;

// Distinct paths seen per kind: new names added, `.moved` names added, old and `.moved` names unlinked.
const counters = { createdNew: 0, movedIn: 0, unlinkedOld: 0, unlinkedMoved: 0 };
/** When a phase of `n` files is complete. */
const PHASES = {
  create: (n) => counters.createdNew >= n,
  modify: (n) => seen.change.size >= n,
  rename: (n) => counters.movedIn >= n && counters.unlinkedOld >= n,
  delete: (n) => counters.unlinkedMoved >= n,
};

const check = (now) => {
  if (expectation && PHASES[expectation.phase](expectation.n)) {
    send({ bench: 'phase-done', phase: expectation.phase, at: now, total });
    expectation = null;
  }
};

const watcher = watch(root, {
  persistent: true,
  ignoreInitial: false,
  followSymlinks: false,
  atomic: false,
  alwaysStat: false,
  ignorePermissionErrors: true,
});
let ready = false;
watcher.on('all', (event, p) => {
  total += 1;
  lastEventAt = Date.now();
  if (!ready) return;
  const moved = p.endsWith('.moved');
  if (event === 'add' && !seen.add.has(p)) {
    seen.add.add(p);
    if (moved) counters.movedIn += 1;
    else counters.createdNew += 1;
  } else if (event === 'change') seen.change.add(p);
  else if (event === 'unlink' && !seen.unlink.has(p)) {
    seen.unlink.add(p);
    if (moved) counters.unlinkedMoved += 1;
    else counters.unlinkedOld += 1;
  }
  if (expectation) check(Date.now());
});
watcher.on('error', (err) => process.stderr.write(`chokidar error: ${err.message}\n`));
watcher.on('ready', () => {
  ready = true;
  send({ bench: 'ready', at: Date.now(), total });
});

process.on('message', (message) => {
  if (message?.bench === 'expect') {
    // Changes counted from here on only: a create's own write may have shown as a change.
    if (message.phase === 'modify') seen.change.clear();
    expectation = { phase: message.phase, n: message.n };
    send({ bench: 'expecting', phase: message.phase });
    check(Date.now());
  } else if (message?.bench === 'status') {
    // What a stalled phase got: the bench counts the rest as lost (the kernel's queue overflowed).
    const seenOfPhase = { create: counters.createdNew, modify: seen.change.size, rename: Math.min(counters.movedIn, counters.unlinkedOld), delete: counters.unlinkedMoved };
    send({ bench: 'status', total, lastEventAt, seen: seenOfPhase });
  } else if (message?.bench === 'memory') {
    if (message.gc) gc();
    const heap = v8.getHeapStatistics();
    send({ bench: 'memory', ...process.memoryUsage(), usedHeapSize: heap.used_heap_size, totalHeapSize: heap.total_heap_size });
  } else if (message?.bench === 'stop') {
    void watcher.close().then(() => process.exit(0));
  }
});
process.on('SIGTERM', () => void watcher.close().then(() => process.exit(0)));
