// Scenario 3: what watching a tree costs. For each tree size the agent (a
// first start, then a restart) and chokidar alone (same options, own process)
// take turns on the same tree: time to ready, RSS (VmRSS, /proc), heap (after
// a GC, over IPC), inotify watches (/proc/PID/fdinfo).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeFiles } from '../lib/generator.mjs';
import { nextMessage } from '../lib/ipc.mjs';
import { inotifyWatches, procMemory, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { askMemory, startAgent, startBroker } from '../lib/stack.mjs';
import { pairedRatios, spread } from '../lib/stats.mjs';

const CHOKIDAR_CHILD = fileURLToPath(new URL('../lib/chokidarChild.mjs', import.meta.url));
const SETTLE_MS = 1000;

/** RSS, heap and watches of a ready process (RSS read before the GC the heap figure needs). */
async function footprint(proc) {
  await sleep(SETTLE_MS);
  const mem = await procMemory(proc.pid);
  const watches = await inotifyWatches(proc.pid);
  const heap = await askMemory(proc, { gc: true });
  return { rss: mem.rss, peakRss: mem.peakRss, heapUsed: heap.heapUsed, external: heap.external, watches };
}

async function runAgent(tree, files) {
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

async function runChokidar(tree) {
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
            `scale ${files} files ${r + 1}/${repeats} ${who}: ready ${(run.readyMs / 1000).toFixed(2)} s, RSS ${mb(run.rss)} MB, heap ${mb(run.heapUsed)} MB, ${run.watches} watches` +
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
    peakRss: pick('peakRss'),
    heapUsed: pick('heapUsed'),
    watches: pick('watches'),
    rssPerFile: spread(runs.map((x) => x.rss / files), 0),
  };
}
