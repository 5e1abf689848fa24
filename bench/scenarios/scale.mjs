// Scenario 3: what watching a tree costs. For each tree size the agent (a
// first start, then a restart) and chokidar alone (same options, own process)
// take turns on the same tree: time to ready, RSS (VmRSS, /proc: at ready, and
// settled after a GC), peak RSS, heap (after the GC, over IPC), inotify
// watches (/proc/PID/fdinfo).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeFiles } from '../lib/generator.mjs';
import { nextMessage } from '../lib/ipc.mjs';
import { inotifyWatches, procMemory, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { askMemory, startAgent, startBroker } from '../lib/stack.mjs';
import { pairedRatios, spread } from '../lib/stats.mjs';

const CHOKIDAR_CHILD = fileURLToPath(new URL('../lib/chokidarChild.mjs', import.meta.url));
const SETTLE_MS = 1000;
const MAX_GC_ROUNDS = 6;
const GC_PAUSE_MS = 500;

/**
 * Memory and watches of a ready process: RSS one second after ready (as is);
 * then full GCs until the committed heap stops shrinking (V8 gives pages
 * back over several collections; an idle Node process gets few), and RSS
 * and heap again: the "settled" figure; peak RSS; inotify watches.
 */
async function footprint(proc) {
  await sleep(SETTLE_MS);
  const atReady = await procMemory(proc.pid);
  const watches = await inotifyWatches(proc.pid);
  let heap = await askMemory(proc, { gc: true });
  for (let round = 1; round < MAX_GC_ROUNDS; round += 1) {
    await sleep(GC_PAUSE_MS);
    const next = await askMemory(proc, { gc: true });
    const shrunk = heap.heapTotal - next.heapTotal;
    heap = next;
    if (shrunk < heap.heapTotal * 0.02) break;
  }
  await sleep(GC_PAUSE_MS);
  const settled = await procMemory(proc.pid);
  return {
    rss: settled.rss, rssAtReady: atReady.rss, peakRss: settled.peakRss, heapUsed: heap.heapUsed, heapTotal: heap.heapTotal,
    external: heap.external, arrayBuffers: heap.arrayBuffers, watches,
  };
}

/** A first start of the agent on `tree` (its footprint at ready), then a restart on the same state (its time to ready). */
export async function runAgent(tree, files) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('scale-agent'));
    const broker = track(await startBroker('embedded', tmp.path));
    const stateDir = path.join(tmp.path, 'state');
    const first = track(await startAgent({ brokerUrl: broker.url, watch: tree, stateDir }));
    if (first.entries < files) throw new Error(`agent reported ${first.entries} entries for a tree of ${files} files`);
    const result = { readyMs: first.readyAt - first.startedAt, ...(await footprint(first.proc)) };
    await first.stop();
    const again = track(await startAgent({ brokerUrl: broker.url, watch: tree, stateDir }));
    result.restartReadyMs = again.readyAt - again.startedAt;
    return result;
  });
}

/** chokidar alone on `tree`, in its own process: time to ready and footprint. */
export async function runChokidar(tree) {
  return withResources(async (track) => {
    const startedAt = Date.now();
    const child = track(startNode('chokidar', [CHOKIDAR_CHILD, tree], { ipc: true }));
    const ready = await nextMessage(child, 'ready', 600_000);
    return { readyMs: ready.at - startedAt, ...(await footprint(child)) };
  });
}

/** For each size in `sizes`: `repeats` rounds of agent / chokidar alone (order alternating). */
export async function scaleScenario({ sizes, repeats, progress }) {
  const bySize = [];
  for (const files of sizes) {
    const result = await withResources(async (track) => {
      const tmp = track(await tempDir(`scale-${files}`));
      const tree = path.join(tmp.path, 'tree');
      makeFiles(tree, 'd', files);
      const runs = { agent: [], chokidar: [] };
      for (let r = 0; r < repeats; r += 1) {
        for (const who of r % 2 ? ['chokidar', 'agent'] : ['agent', 'chokidar']) {
          const run = who === 'agent' ? await runAgent(tree, files) : await runChokidar(tree);
          runs[who].push(run);
          progress(
            `scale ${files} files ${r + 1}/${repeats} ${who}: ready ${(run.readyMs / 1000).toFixed(2)} s, RSS ${mb(run.rss)} MB (${mb(run.rssAtReady)} before GC, peak ${mb(run.peakRss)}), heap ${mb(run.heapUsed)} MB, ${run.watches} watches` +
              (run.restartReadyMs ? `, restart ready ${(run.restartReadyMs / 1000).toFixed(2)} s` : ''),
          );
        }
      }
      return runs;
    });
    const of = (who, key) => result[who].map((x) => x[key]);
    bySize.push({
      files,
      agent: summary(result.agent, files),
      chokidar: summary(result.chokidar, files),
      rssRatio: pairedRatios(of('agent', 'rss'), of('chokidar', 'rss')),
      rssAtReadyRatio: pairedRatios(of('agent', 'rssAtReady'), of('chokidar', 'rssAtReady')),
      peakRssRatio: pairedRatios(of('agent', 'peakRss'), of('chokidar', 'peakRss')),
      readyRatio: pairedRatios(of('agent', 'readyMs'), of('chokidar', 'readyMs')),
      runs: result,
    });
  }
  return { repeats, bySize };
}

const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

function summary(runs, files) {
  const pick = (key, digits = 0) => spread(runs.map((x) => x[key]).filter((v) => v !== undefined), digits);
  return {
    readyMs: pick('readyMs'),
    ...(runs[0]?.restartReadyMs !== undefined ? { restartReadyMs: pick('restartReadyMs') } : {}),
    rss: pick('rss'),
    rssAtReady: pick('rssAtReady'),
    peakRss: pick('peakRss'),
    heapUsed: pick('heapUsed'),
    watches: pick('watches'),
    rssPerFile: spread(runs.map((x) => x.rss / files), 0),
  };
}
