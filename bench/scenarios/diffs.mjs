// Scenario 4: important files of 10 KB, 1 MB and 10 MB with 1% and 100% of
// their lines changed: time per diff (event emittedAt → diff emittedAt), and
// the p99 latency of steady small-file operations with and without a 10 MB,
// 100%-changed diff running (the two windows alternate).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAgentConfig } from '@fso/common';
import { createAuditTail } from '../lib/audit.mjs';
import { nowMs, prepareSteady, steadyOps } from '../lib/generator.mjs';
import { measureOps, summarise } from '../lib/latency.mjs';
import { sleep, tempDir, withResources } from '../lib/processes.mjs';
import { followAcks, startAgent, startBroker, startRecorder } from '../lib/stack.mjs';
import { spread } from '../lib/stats.mjs';

const LINE_BYTES = 100;
const SIZES = { '10KB': 10 * 1024, '1MB': 1024 * 1024, '10MB': 10 * 1024 * 1024 };
const CHANGED = { '1%': 100, '100%': 1 };

/** `bytes` of text in 100-byte lines; line i reads `tag` when i % every === 0, else `a`. */
function text(bytes, tag, every) {
  const lines = Math.ceil(bytes / LINE_BYTES);
  const parts = new Array(lines);
  for (let i = 0; i < lines; i += 1) {
    const head = `${i % every === 0 ? tag : 'a'} line ${String(i).padStart(8, '0')} `;
    parts[i] = `${head.padEnd(LINE_BYTES - 1, i % 2 ? 'x' : 'y')}\n`;
  }
  return Buffer.from(parts.join(''));
}

/** The six important files: each has a base content and an alternate one that differs in 1% or 100% of lines. */
function bigFiles(dir, sizes) {
  const files = [];
  for (const sizeName of sizes) {
    const bytes = SIZES[sizeName];
    for (const [changedName, every] of Object.entries(CHANGED)) {
      files.push({
        name: `${sizeName} ${changedName}`,
        size: sizeName,
        changed: changedName,
        path: path.join(dir, `big-${sizeName}-${changedName === '1%' ? 'p1' : 'p100'}.conf`),
        versions: [text(bytes, 'a', every), text(bytes, 'b', every)],
        turn: 0,
      });
    }
  }
  return files;
}

/** Replaces the file's content with its other version the way editors save (temp file, rename over). */
async function rewrite(file, { sync = false } = {}) {
  file.turn ^= 1;
  const tmp = path.join(path.dirname(file.path), `.${path.basename(file.path)}.tmp`);
  const at = nowMs();
  if (sync) {
    writeFileSync(tmp, file.versions[file.turn]);
    renameSync(tmp, file.path);
  } else {
    await writeFile(tmp, file.versions[file.turn]);
    await rename(tmp, file.path);
  }
  return at;
}

/** Waits for the next diff message of `file` after `since` seen ones; null on time-out. */
async function nextDiff(acks, file, since, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const d = acks.diffs.slice(since).find((x) => x.path === file.path);
    if (d) return d;
    await sleep(10);
  }
  return null;
}

/** The recorded event `id` (polls the audit). */
async function eventById(tail, id, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await tail.poll();
    const e = tail.events.findLast((x) => x.id === id);
    if (e || Date.now() > deadline) return e;
    await sleep(20);
  }
}

/** Waits until the agent keeps the first content of every file for diffs (contents/<sha256 of path>). */
async function waitRemembered(stateDir, files) {
  const deadline = Date.now() + 120_000;
  const key = (p) => path.join(stateDir, 'contents', createHash('sha256').update(p, 'utf8').digest('hex'));
  while (Date.now() < deadline) {
    // At least: the store may add a header to the content.
    if (files.every((f) => existsSync(key(f.path)) && statSync(key(f.path)).size >= f.versions[0].length)) return;
    await sleep(100);
  }
  throw new Error('the agent did not store the important files for diffs within 120 s');
}

/**
 * Runs the diff timings (`reps` per file of each of `sizes`: 10KB, 1MB, 10MB) and `repeats` quiet/loaded window pairs of `seconds` at `rate` ops/s.
 * `onWindow({ kind, start, end })` (epoch ms of the window's operations) lets a caller line other measurements up with the windows.
 */
export async function diffsScenario({ sizes = Object.keys(SIZES), reps, seconds, rate = 200, repeats, progress, onWindow }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('diffs'));
    const watched = path.join(tmp.path, 'watched');
    const audit = path.join(tmp.path, 'audit');
    const stateDir = path.join(tmp.path, 'state');
    const ops = Math.round(rate * seconds);
    const plans = Array.from({ length: 2 * repeats }, (_, i) => prepareSteady(watched, ops, `w${i}`));
    mkdirSync(path.join(watched, 'important'));
    const files = bigFiles(path.join(watched, 'important'), sizes);
    for (const f of files) writeFileSync(f.path, f.versions[0], { flag: 'wx' });
    const config = path.join(tmp.path, 'config.json');
    // Diffs up to 16 MiB files (the default is 1 MiB); jsdiff's own time-out stays the default.
    const value = { schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }], diff: { maxFileBytes: 16 * 1024 * 1024 } };
    parseAgentConfig(value, 'bench diffs config');
    writeFileSync(config, JSON.stringify(value));
    const broker = track(await startBroker('embedded', tmp.path));
    track(await startRecorder(broker.url, audit));
    const acks = track(await followAcks(broker.url, 'bench', { diffs: true }));
    track(await startAgent({ brokerUrl: broker.url, config, stateDir }));
    await waitRemembered(stateDir, files);
    const tail = createAuditTail(audit);

    // Time per diff, one at a time.
    const perFile = {};
    for (const file of files) {
      const runs = [];
      for (let i = 0; i < reps; i += 1) {
        const since = acks.diffs.length;
        const at = await rewrite(file, { sync: true });
        const diff = await nextDiff(acks, file, since);
        if (!diff) throw new Error(`no diff for ${file.name} within 60 s`);
        const event = await eventById(tail, diff.eventId);
        runs.push({
          diffMs: event ? diff.emittedAt - Date.parse(event.emittedAt) : null,
          opToDiffMs: diff.emittedAt - at,
          outcome: diff.skipped ?? `patch +${diff.added} -${diff.removed} (${Math.round(diff.patchBytes / 1024)} KiB)`,
        });
      }
      perFile[file.name] = { diffMs: spread(runs.map((r) => r.diffMs), 0), opToDiffMs: spread(runs.map((r) => r.opToDiffMs), 0), outcomes: [...new Set(runs.map((r) => r.outcome))] };
      progress(`diffs ${file.name}: ${perFile[file.name].diffMs.median} ms per diff (${perFile[file.name].outcomes.join(', ')})`);
    }

    // Other events' latency without, then with, back-to-back 10 MB 100% diffs (order alternates).
    const heavy = files.findLast((f) => f.changed === '100%');
    const windows = { quiet: [], loaded: [] };
    let heavyDiffs = 0;
    for (let r = 0; r < repeats; r += 1) {
      for (const kind of r % 2 ? ['loaded', 'quiet'] : ['quiet', 'loaded']) {
        const plan = plans[2 * r + (kind === 'quiet' ? 0 : 1)];
        let stop = false;
        const churn = (async () => {
          while (kind === 'loaded' && !stop) {
            const since = acks.diffs.length;
            await rewrite(heavy);
            if (await nextDiff(acks, heavy, since)) heavyDiffs += 1;
          }
        })();
        const start = Date.now();
        const load = await steadyOps(plan, { rate });
        onWindow?.({ kind, start, end: Date.now() });
        stop = true;
        await churn;
        const measured = await measureOps(load.done, tail, acks);
        windows[kind].push(measured);
        const s = summarise([measured]).stages.opToAudit;
        progress(`diffs ${r + 1}/${repeats} ${kind}: other events op→audit p99 ${s.p99} ms, lost ${measured.check.lost}`);
      }
    }
    const p99 = (kind) => windows[kind].map((m) => summarise([m]).stages.opToAudit.p99);
    const added = p99('loaded').map((v, i) => v - p99('quiet')[i]);
    return {
      reps,
      perFile,
      interference: {
        heavy: heavy.name,
        rate,
        seconds,
        repeats,
        heavyDiffs,
        quiet: summarise(windows.quiet),
        loaded: summarise(windows.loaded),
        p99Added: spread(added, 0),
        lost: [...windows.quiet, ...windows.loaded].reduce((s, m) => s + m.check.lost, 0),
      },
    };
  });
}
