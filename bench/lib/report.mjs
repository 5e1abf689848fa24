// The targets of issue 5 checked against the results, and the markdown
// tables printed at the end of a run and appended to docs/benchmarks.md.
import { alertsMarkdown, alertsTargets } from '../scenarios/alerts.mjs';
import { whoMarkdown } from '../scenarios/who.mjs';
import { queryMarkdown, queryTargets } from '../scenarios/query.mjs';
import { fmtSpread } from './stats.mjs';

const MB = 2 ** 20;
const mb = (bytes) => (bytes === null || bytes === undefined ? 'n/a' : (bytes / MB).toFixed(1));
const s1 = (ms) => (ms === null || ms === undefined ? 'n/a' : (ms / 1000).toFixed(2));

/** Each target of the issue: what was measured, the bound, and whether it is met. */
export function evaluateTargets(scenarios) {
  const targets = [];
  const add = (name, measured, bound, met, detail) => targets.push({ name, measured, bound, met, detail });
  const tp = scenarios.throughput;
  if (tp && !tp.error) {
    add('e2e throughput ÷ raw chokidar', tp.ratios.e2eOverChokidar, '≥ 0.5', tp.ratios.e2eOverChokidar.median >= 0.5, `median (min–max) of ${tp.repeats} paired rounds, ${tp.n} files`);
    add('embedded ÷ Mosquitto throughput', tp.ratios.embeddedOverMosquitto, '≥ 0.9', tp.ratios.embeddedOverMosquitto.median >= 0.9, `median (min–max) of ${tp.repeats} paired rounds`);
    add('throughput: lost / duplicated', { median: `${tp.lost} / ${tp.duplicatedById + tp.duplicatedByPath}` }, '0 / 0', tp.lost === 0 && tp.duplicatedById + tp.duplicatedByPath === 0, 'all pipeline runs');
  }
  const lat = scenarios.latency;
  const at200 = lat && !lat.error ? lat.byRate[200] : undefined;
  if (at200) {
    const p99 = at200.stages.opToAudit.p99;
    add('p99 operation → audit at 200 ops/s', { median: p99, min: Math.min(...at200.p99PerRepeat), max: Math.max(...at200.p99PerRepeat) }, '≤ 250 ms', p99 <= 250, 'all samples pooled; min–max over repeats');
  }
  const sc = scenarios.scale;
  if (sc && !sc.error) {
    const worst = sc.bySize.reduce((w, s) => (s.rssRatio.median > (w?.rssRatio.median ?? -1) ? s : w), undefined);
    if (worst) add('agent RSS ÷ chokidar alone (settled)', worst.rssRatio, '≤ 1.3', sc.bySize.every((s) => s.rssRatio.median <= 1.3), `worst tree size: ${worst.files} files; at ready and peak in the scale table`);
  }
  const df = scenarios.diffs;
  if (df && !df.error && df.interference) {
    const added = df.interference.p99Added;
    add(`p99 added by ${df.interference.heavy} diffs`, added, '≤ 100 ms', added.median <= 100, `other events at ${df.interference.rate} ops/s, paired windows`);
  }
  const q = scenarios.query;
  if (q && !q.error) targets.push(...queryTargets(q));
  const al = scenarios.alerts;
  if (al && !al.error) targets.push(...alertsTargets(al));
  return targets;
}

const cell = (m) => (m && typeof m === 'object' && 'min' in m ? fmtSpread(m) : String(m?.median ?? m));

/** Markdown for one run: targets first, then each scenario's table. */
export function markdownReport(result) {
  const out = [];
  const { scenarios } = result;
  out.push('| target | measured: median (min–max) | bound | met |', '|---|---|---|---|');
  for (const t of result.targets) out.push(`| ${t.name} | ${cell(t.measured)} | ${t.bound} | ${t.met ? 'yes' : '**no**'} |`);
  const tp = scenarios.throughput;
  if (tp && !tp.error) {
    out.push('', `**Throughput** — ${tp.n} files × create, modify, rename, delete (${tp.changes} changes), first operation → last fsync'd audit line, ${tp.repeats} rounds:`, '');
    const cpu = (v) => Object.entries(tp.cpuPerThousand?.[v] ?? {}).map(([part, s]) => `${part} ${s}`).join(', ');
    out.push('| pipeline | changes/s: median (min–max) | CPU s per 1,000 changes (median) |', '|---|---|---|');
    out.push(`| raw chokidar (events counted in its process) | ${fmtSpread(tp.changesPerSec.chokidar)} | ${cpu('chokidar')} |`);
    out.push(`| agent → embedded broker → recorder | ${fmtSpread(tp.changesPerSec.embedded)} | ${cpu('embedded')} |`);
    out.push(`| agent → Mosquitto → recorder | ${fmtSpread(tp.changesPerSec.mosquitto)} | ${cpu('mosquitto')} |`);
    out.push(`| pipeline: lost / duplicated by id / by path / unexpected | ${tp.lost} / ${tp.duplicatedById} / ${tp.duplicatedByPath} / ${tp.unexpected} | |`);
    if (tp.chokidarLost) out.push(`| raw chokidar: changes it never reported (inotify queue overflow) | ${tp.chokidarLost} | |`);
    if (tp.overflowGaps !== undefined) out.push(`| pipeline: inotify overflows the agent announced (gap lines, then a rescan) | ${tp.overflowGaps} | |`);
    out.push('', '"bench" is the bench process itself, on the same 2 cores: the generator\'s system calls, and for the pipeline also its audit tail and ack follower.');
  }
  const lat = scenarios.latency;
  if (lat && !lat.error) {
    out.push('', `**Latency** — steady create / modify / rename / delete, ${lat.seconds} s per run, ${lat.repeats} run(s) per rate, pair window ${lat.pairWindow} (ms):`, '');
    out.push('| ops/s | stage | p50 | p95 | p99 | max |', '|---|---|---|---|---|---|');
    const names = { opToObserved: 'operation → observedAt', observedToEmitted: 'observedAt → emittedAt', emittedToReceived: 'emittedAt → receivedAt', opToAudit: "operation → audit line fsync'd" };
    for (const [rate, r] of Object.entries(lat.byRate)) {
      for (const [stage, label] of Object.entries(names)) {
        const s = r.stages[stage];
        out.push(`| ${rate} | ${label} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.max} |`);
      }
      const byType = Object.entries(r.opToAuditByType).map(([t, s]) => `${t} ${s.p50}/${s.p99}`).join(', ');
      out.push(`| ${rate} | op → audit p50/p99 by type | ${byType} | | | |`);
    }
  }
  const sc = scenarios.scale;
  if (sc && !sc.error) {
    out.push('', `**Scale** — a first start on an existing tree (files in directories of 100), median of ${sc.repeats} run(s). RSS settled = after full GCs until the heap stops shrinking (what an idle process settles to); at ready = 1 s after ready, as is; heap after the GCs:`, '');
    out.push('| files | ready s: agent / chokidar | agent restart ready s | RSS settled MB: agent / chokidar (ratio) | RSS at ready MB (ratio) | peak RSS MB (ratio) | heap MB: agent / chokidar | inotify watches: agent / chokidar | settled RSS bytes per file: agent / chokidar |');
    out.push('|---|---|---|---|---|---|---|---|---|');
    for (const s of sc.bySize) {
      const a = s.agent;
      const c = s.chokidar;
      out.push(
        `| ${s.files} | ${s1(a.readyMs.median)} / ${s1(c.readyMs.median)} | ${s1(a.restartReadyMs?.median)} | ${mb(a.rss.median)} / ${mb(c.rss.median)} (${fmtSpread(s.rssRatio)}) | ${mb(a.rssAtReady?.median)} / ${mb(c.rssAtReady?.median)} (${s.rssAtReadyRatio ? fmtSpread(s.rssAtReadyRatio) : 'n/a'}) | ${mb(a.peakRss.median)} / ${mb(c.peakRss.median)} (${s.peakRssRatio ? fmtSpread(s.peakRssRatio) : 'n/a'}) | ${mb(a.heapUsed.median)} / ${mb(c.heapUsed.median)} | ${a.watches.median} / ${c.watches.median} | ${a.rssPerFile.median} / ${c.rssPerFile.median} |`,
      );
    }
    const growth = growthPerFile(sc.bySize);
    if (growth) out.push('', `Growth between ${growth.from} and ${growth.to} files: agent ${growth.agent} B RSS per added file, chokidar alone ${growth.chokidar} B.`);
  }
  const df = scenarios.diffs;
  if (df && !df.error) {
    out.push('', `**Diffs** — important files rewritten (temp file + rename), ${df.reps} diff(s) each; time = event emittedAt → diff emittedAt:`, '');
    out.push('| file | lines changed | ms per diff: median (min–max) | outcome |', '|---|---|---|---|');
    for (const [name, f] of Object.entries(df.perFile)) {
      const [size, changed] = name.split(' ');
      out.push(`| ${size} | ${changed} | ${fmtSpread(f.diffMs)} | ${f.outcomes.join('; ')} |`);
    }
    const i = df.interference;
    if (i) {
      out.push('', `Other events (${i.rate} ops/s, ${i.seconds} s windows, ${i.repeats} pair(s)) while ${i.heavy} diffs run back to back (${i.heavyDiffs} diffs): op → audit p99 ${i.quiet.stages.opToAudit.p99} ms quiet, ${i.loaded.stages.opToAudit.p99} ms loaded; added ${fmtSpread(i.p99Added, ' ms')}.`);
    }
  }
  const rec = scenarios.recorder;
  if (rec && !rec.error) {
    out.push('', `**Recorder** — ${rec.m} event messages published at once (QoS 1), first publish → ack of the last, ${rec.repeats} round(s):`, '');
    out.push('| recorder | records/s: median (min–max) |', '|---|---|');
    out.push(`| group-commit fsync (as shipped) | ${fmtSpread(rec.recordsPerSec.fsync)} |`);
    out.push(`| fsync made a no-op (preload) | ${fmtSpread(rec.recordsPerSec.noFsync)} |`);
    out.push(`| fsync ÷ no fsync | ${fmtSpread(rec.fsyncOverNoFsync)} |`);
  }
  const q = scenarios.query;
  if (q && !q.error) out.push('', queryMarkdown(q));
  const al = scenarios.alerts;
  if (al && !al.error) out.push('', alertsMarkdown(al));
  if (scenarios.who && !scenarios.who.error) out.push('', whoMarkdown(scenarios.who));
  for (const [name, s] of Object.entries(scenarios)) if (s?.error) out.push('', `**${name} failed:** ${s.error.split('\n')[0]}`);
  return out.join('\n');
}

/** Bytes of RSS per added file between the smallest and largest tree (medians), or null with one size. */
export function growthPerFile(bySize) {
  if (bySize.length < 2) return null;
  const a = bySize[0];
  const b = bySize.at(-1);
  const per = (who) => Math.round((b[who].rss.median - a[who].rss.median) / (b.files - a.files));
  return { from: a.files, to: b.files, agent: per('agent'), chokidar: per('chokidar') };
}
