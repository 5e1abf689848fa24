// The load: trees made before a watcher starts, bursts of create / modify /
// rename / delete as fast as synchronous calls go, and steady mixed
// operations at a fixed rate. Every operation touches its own path, so each
// recorded event maps back to exactly one operation.
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { changeKey } from './audit.mjs';
import { sleep } from './processes.mjs';

// 100 files per directory: chokidar re-reads (and lstats) a whole directory on each change in it, so this matters.
const PER_DIR = 100;

/** Wall-clock ms with sub-ms resolution (comparable with other processes' Date.now()). */
export const nowMs = () => performance.timeOrigin + performance.now();

const dirOf = (root, prefix, i) => path.join(root, `${prefix}${Math.floor(i / PER_DIR)}`);
const fileOf = (root, prefix, i) => path.join(dirOf(root, prefix, i), `f${i}.txt`);

/** Makes the directories for `count` files named with `prefix` (so making them later causes no directory events). */
export function makeDirs(root, prefix, count) {
  for (let d = 0; d * PER_DIR < Math.max(count, 1); d += 1) mkdirSync(path.join(root, `${prefix}${d}`), { recursive: true });
}

/** Creates `count` small files under `root` (in directories of 100); returns their paths. */
export function makeFiles(root, prefix, count, content = (i) => `file ${i}\n`) {
  makeDirs(root, prefix, count);
  const files = [];
  for (let i = 0; i < count; i += 1) {
    const p = fileOf(root, prefix, i);
    writeFileSync(p, content(i));
    files.push(p);
  }
  return files;
}

/**
 * The four throughput phases over `n` files (directories made beforehand):
 * each `run()` does its n operations back to back and returns when they are
 * done; `expected` holds the changes the agent must record.
 */
export function throughputPhases(root, n) {
  const files = Array.from({ length: n }, (_, i) => fileOf(root, 't', i));
  const moved = files.map((p) => `${p}.moved`);
  const phase = (name, type, paths, op) => ({
    phase: name,
    n,
    expected: new Set(paths.map((p) => changeKey(type, p))),
    run() {
      for (let i = 0; i < n; i += 1) op(i);
    },
  });
  return [
    phase('create', 'create', files, (i) => writeFileSync(files[i], `created ${i}\n`)),
    phase('modify', 'modify', files, (i) => writeFileSync(files[i], `modified ${i} once\n`)),
    phase('rename', 'rename', moved, (i) => renameSync(files[i], moved[i])),
    phase('delete', 'delete', moved, (i) => unlinkSync(moved[i])),
  ];
}

/** How many existing files a steady run of `ops` operations consumes (modify, rename, delete: 3 of every 4). */
const poolNeeded = (ops) => Math.ceil((ops * 3) / 4) + 4;

/**
 * Makes what a steady run of `ops` operations needs before the watcher
 * starts: the pool of files it modifies, renames and deletes, and the
 * directories of the files it creates. `tag` keeps several runs apart.
 */
export function prepareSteady(root, ops, tag = 's') {
  const pool = makeFiles(root, `${tag}p`, poolNeeded(ops));
  makeDirs(root, `${tag}n`, ops);
  return { root, pool, ops, tag };
}

/**
 * Runs the operations of `plan` (from {@link prepareSteady}) at `rate` per
 * second: create a new file, modify, rename and delete pool files, in turn,
 * each on its own path. Returns what was done: `{ type, path, at }` with
 * `at` just before the call.
 */
export async function steadyOps(plan, { rate, maxMs = 120_000 }) {
  const { root, pool, ops, tag } = plan;
  const done = [];
  const started = nowMs();
  let next = 0;
  let used = 0;
  const take = () => {
    const p = pool[used];
    used += 1;
    if (p === undefined) throw new Error(`steady load ran out of pool files after ${used - 1}`);
    return p;
  };
  while (next < ops) {
    const due = Math.min(ops, Math.floor(((nowMs() - started) * rate) / 1000) + 1);
    for (; next < due; next += 1) {
      const at = nowMs();
      switch (next % 4) {
        case 0: {
          const p = fileOf(root, `${tag}n`, next);
          writeFileSync(p, `new ${next}\n`);
          done.push({ type: 'create', path: p, at });
          break;
        }
        case 1: {
          const p = take();
          writeFileSync(p, `modified at op ${next}\n`);
          done.push({ type: 'modify', path: p, at });
          break;
        }
        case 2: {
          const p = take();
          renameSync(p, `${p}.moved`);
          done.push({ type: 'rename', path: `${p}.moved`, at });
          break;
        }
        default: {
          const p = take();
          unlinkSync(p);
          done.push({ type: 'delete', path: p, at });
        }
      }
    }
    if (nowMs() - started > maxMs) break;
    await sleep(1);
  }
  const durationMs = nowMs() - started;
  return { done, durationMs, achievedRate: (done.length * 1000) / durationMs };
}
