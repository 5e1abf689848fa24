// docs/benchmarks.md gets a dated section per run (created with its
// introduction the first time); the scale chart goes to docs/ for full runs,
// to bench/results/ otherwise.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { scaleChart } from './plot.mjs';
import { REPO } from './processes.mjs';

const DOC = path.join(REPO, 'docs', 'benchmarks.md');
export const CHART_IN_DOCS = path.join(REPO, 'docs', 'benchmarks-scale.png');

const INTRO = `# Benchmarks

\`pnpm bench\` (full, about a quarter of an hour on 2 cores) and \`pnpm bench --quick\`
(under 3 minutes) build the workspace, run five scenarios against the built
bins — each part its own process, as a user runs them, on 127.0.0.1 — and
append a section below. Raw figures: \`bench/results/latest.json\`.
\`node bench/run.mjs --only throughput,latency\` runs some scenarios only.

How it measures:

- **Durable means acked.** The recorder writes a batch, fsyncs it, then
  publishes its \`ack\`: a line is visible in the file *before* its fsync, so
  "the audit line is fsync'd" is taken as the \`at\` of the first ack covering
  the event's \`seq\` (the recorder's clock, right after the fsync).
- **Side by side, alternating.** Every comparison runs in the same bench run,
  the order of A and B rotating each round; ratios are paired per round and
  quoted as median (min–max), because the machine is shared and noisy. The
  load average at start and end is in each section.
- **Throughput.** N files in directories of 100 (made before the agent
  starts: its first start records a silent baseline): create all, then modify
  all, rename all (same directory), delete all, each phase as fast as
  synchronous calls go. A phase ends when its last change is fsync'd in the
  audit (pipeline) or its last event arrived (raw chokidar 5 in a process of
  its own, counting events, with the options the agent gave it while it was
  built on chokidar; since issue 5 the agent watches directories itself, see
  packages/agent/src/watch/dirWatcher.ts); throughput is changes over the
  sum of the phases. Every expected change must be in the audit exactly once
  (by id and by type + path); "unexpected" counts extra events. When the
  kernel's inotify queue overflows, raw chokidar never gets some events: its
  phase then ends at the last event it got, and its changes/s still counts
  all N changes (it did less work than the pipeline, which rescans).
- **Latency.** Creates, modifies, renames and deletes in turn, each on its own
  path, at a fixed rate, with the agent's default \`--pair-window\` (100 ms
  since issue 5; 200 ms before): creates are held for it before they are
  emitted, by design; deletes only until the hints around them are decided.
- **Scale.** A first start on an existing tree; RSS is VmRSS one second after
  the "watching" log line, heap is \`heapUsed\` after a GC (asked over IPC of a
  preloaded probe, bench/lib/memProbe.mjs), watches are the \`inotify wd:\`
  lines of /proc/PID/fdinfo. The restart column is a second start on the same
  state directory.
- **Diffs.** Important files rewritten as editors save them (temp file,
  rename over). The agent's config raises \`diff.maxFileBytes\` to 16 MiB;
  jsdiff keeps its default 1 s time-out.
- **Recorder.** The real recorder, and the same recorder with fsync and
  fdatasync turned into no-ops by a preload (bench/lib/noFsync.mjs).
`;

/** Appends the run's section to docs/benchmarks.md and writes the chart. */
export async function writeDocs(result, markdown, progress) {
  const chart = await writeChart(result, progress);
  if (!existsSync(DOC)) await writeFile(DOC, INTRO);
  const m = result.machine;
  const section = [
    '',
    `## ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC — ${result.mode}${result.label ? `: ${result.label}` : ''}`,
    '',
    `Code: commit ${result.packages.commit ?? 'unknown'}${result.packages.otherRoot ? `, bins from ${result.packages.root}` : ''}${result.packages.brokerArgs ? `, broker flags \`${result.packages.brokerArgs}\`` : ''}.`,
    '',
    `${m.cpus} × ${m.cpuModel}, ${m.memoryGb} GB, Linux ${m.kernel}, Node ${m.node}, ${m.mosquitto ?? 'no mosquitto'}` +
      `${m.inotifyMaxQueuedEvents ? `, fs.inotify.max_queued_events ${m.inotifyMaxQueuedEvents}` : ''}; ` +
      `load average ${result.load.start.join(' ')} at start, ${result.load.end.join(' ')} at end; ${Math.round(result.durationMs / 1000)} s.`,
    '',
    markdown,
    ...(chart === CHART_IN_DOCS ? ['', `![RSS and time to ready against tree size](${path.basename(chart)})`] : []),
    '',
  ].join('\n');
  await appendFile(DOC, section);
  progress(`appended a section to ${path.relative(REPO, DOC)}`);
}

/**
 * Draws the scale chart of `result` (docs/ for a full run, bench/results/
 * otherwise); returns its path, or null without scale figures.
 */
export async function writeChart(result, progress = () => {}) {
  const scale = result.scenarios.scale;
  if (!scale || scale.error || scale.bySize.length === 0) return null;
  const chart = result.mode === 'full' ? CHART_IN_DOCS : path.join(REPO, 'bench', 'results', `scale-${result.mode}.png`);
  await mkdir(path.dirname(chart), { recursive: true });
  const rows = scale.bySize.map((s) => ({
    files: s.files,
    agent: { rssMb: s.agent.rss.median / 2 ** 20, readyS: s.agent.readyMs.median / 1000 },
    chokidar: { rssMb: s.chokidar.rss.median / 2 ** 20, readyS: s.chokidar.readyMs.median / 1000 },
  }));
  const caption = `${result.startedAt.slice(0, 10)}, ${result.machine.cpus} CPUS, MEDIAN OF ${scale.repeats} RUN(S) PER SIZE`;
  await writeFile(chart, scaleChart(rows, caption));
  progress(`chart: ${path.relative(REPO, chart)}`);
  return chart;
}
