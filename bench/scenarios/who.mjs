// Issue 16's figure: what who-data costs the agent. The same changes (N
// creates, then N modifies, then N deletes, each phase recorded before the
// next) watched by an agent with --who off, --who fanotify and, where auditd
// runs, --who audit, in turns (the order reversed every other round) in one
// run, on one broker and recorder:
// the agent's CPU (all its threads: the fanotify reader's included) per
// 1,000 changes, the time until all were recorded, lost / duplicated, and
// how many events say who. The fanotify group sees the whole file system,
// so what else writes on it (the recorder's trail among it) costs too.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import path from 'node:path';
import { liveAuditd } from '@fso/agent';
import { changeKey, checkRecorded, createAuditTail, waitForEvents } from '../lib/audit.mjs';
import { nowMs } from '../lib/generator.mjs';
import { procCpuSeconds, tempDir, withResources } from '../lib/processes.mjs';
import { startAgent, startBroker, startRecorder } from '../lib/stack.mjs';
import { pairedRatios, spread } from '../lib/stats.mjs';

/** A live auditd's pid (then `--who audit` is measured too, with auditd's own CPU beside the agent's); not a dead one the kernel still names. */
function auditdPid() {
  const daemon = liveAuditd(spawnSync('/usr/sbin/auditctl', ['-s'], { encoding: 'utf8' }).stdout ?? '');
  return 'pid' in daemon ? daemon.pid : null;
}

async function oneRun({ mode, files, broker, tail, dir, index, auditd }) {
  const watched = path.join(dir, `watched-${index}`);
  mkdirSync(watched);
  const agent = await startAgent({ id: `who-${index}`, brokerUrl: broker.url, watch: watched, stateDir: path.join(dir, `state-${index}`), extraArgs: ['--who', mode] });
  try {
    const names = Array.from({ length: files }, (_, i) => path.join(watched, `f${i}.txt`));
    const phases = [
      ['create', (p, i) => writeFileSync(p, `file ${i}\n`)],
      ['modify', (p, i) => appendFileSync(p, `more ${i}\n`)],
      ['delete', (p) => rmSync(p)],
    ];
    const cpu0 = await procCpuSeconds(agent.pid);
    const auditd0 = mode === 'audit' && auditd ? await procCpuSeconds(auditd) : 0;
    const t0 = nowMs();
    const expected = new Set();
    const events = [];
    for (const [type, act] of phases) {
      const keys = new Set(names.map((p) => changeKey(type, p)));
      names.forEach((p, i) => act(p, i));
      const found = await waitForEvents(tail, keys, { stallMs: 60_000 });
      for (const k of keys) expected.add(k);
      events.push(...found.values());
    }
    const recordedMs = nowMs() - t0;
    const cpu = (await procCpuSeconds(agent.pid)) - cpu0;
    const auditdCpu = mode === 'audit' && auditd ? (await procCpuSeconds(auditd)) - auditd0 : null;
    // Every event of this agent's tree, duplicates included, for the tally.
    const mine = tail.events.filter((e) => e.path.startsWith(`${watched}/`));
    const check = checkRecorded(mine, expected);
    const attributed = mine.filter((e) => e.who && typeof e.who === 'object').length;
    return {
      mode, changes: expected.size, recordedMs: Math.round(recordedMs),
      cpuMsPer1000: Math.round((cpu * 1000 * 1000) / expected.size),
      auditdCpuMsPer1000: auditdCpu === null ? null : Math.round((auditdCpu * 1000 * 1000) / expected.size),
      lost: check.lost, duplicated: check.duplicatedById + check.duplicatedByPath,
      attributed, whoMissing: [...new Set(mine.filter((e) => e.who === null).map((e) => e.whoMissing))],
    };
  } finally {
    await agent.stop();
  }
}

/**
 * What other processes' writes cost the agent: it watches an empty
 * directory while `files` files are made, written and deleted beside it on
 * the same file system. fanotify's filesystem mark reports them all to the
 * reader thread, which drops them in C (not under a root); inotify and audit
 * rules are per directory and never see them. One change in the watched
 * directory at the end, waited for: with fanotify it waits until the reader
 * has drained past the others' writes, so their cost is in the figure.
 */
async function othersRun({ mode, files, broker, tail, dir, index }) {
  const watched = path.join(dir, `quiet-${index}`);
  const beside = path.join(dir, `beside-${index}`);
  mkdirSync(watched);
  mkdirSync(beside);
  const agent = await startAgent({ id: `who-others-${index}`, brokerUrl: broker.url, watch: watched, stateDir: path.join(dir, `state-others-${index}`), extraArgs: ['--who', mode] });
  try {
    const cpu0 = await procCpuSeconds(agent.pid);
    for (let i = 0; i < files; i++) {
      const p = path.join(beside, `f${i}.txt`);
      writeFileSync(p, `file ${i}\n`);
      appendFileSync(p, `more ${i}\n`);
      rmSync(p);
    }
    const marker = path.join(watched, 'marker.txt');
    writeFileSync(marker, 'x\n');
    await waitForEvents(tail, new Set([changeKey('create', marker)]), { stallMs: 60_000 });
    const cpu = (await procCpuSeconds(agent.pid)) - cpu0;
    return { mode, others: files * 3, cpuMsPer1000: Math.round((cpu * 1000 * 1000) / (files * 3)) };
  } finally {
    await agent.stop();
  }
}

/** `repeats` pairs of runs (off and fanotify, the order alternating) of `files` × 3 changes each. */
export async function whoScenario({ files = 2000, repeats = 3, progress = () => {} }) {
  if (process.getuid?.() !== 0) return { error: 'needs root (fanotify)', runs: [] };
  return withResources(async (track) => {
    const tmp = track(await tempDir('who'));
    const audit = path.join(tmp.path, 'audit');
    const broker = track(await startBroker('embedded', tmp.path));
    track(await startRecorder(broker.url, audit));
    const tail = createAuditTail(audit);
    const auditd = auditdPid();
    const modes = auditd ? ['off', 'fanotify', 'audit'] : ['off', 'fanotify'];
    const runs = [];
    let index = 0;
    for (let r = 0; r < repeats; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        const run = await oneRun({ mode, files, broker, tail, dir: tmp.path, index: index++, auditd });
        progress(`who ${mode}: ${run.changes} changes, agent ${run.cpuMsPer1000} CPU ms per 1,000, recorded in ${run.recordedMs} ms, lost ${run.lost}, duplicated ${run.duplicated}, attributed ${run.attributed}`);
        runs.push(run);
      }
    }
    // Others' writes on the same file system, in turns too: what the fanotify mark costs a busy host.
    const others = [];
    for (let r = 0; r < repeats; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        const run = await othersRun({ mode, files, broker, tail, dir: tmp.path, index: index++ });
        progress(`who ${mode}, others' writes: ${run.others} changes beside the watched directory, agent ${run.cpuMsPer1000} CPU ms per 1,000`);
        others.push(run);
      }
    }
    const of = (mode, key) => runs.filter((x) => x.mode === mode).map((x) => x[key]);
    const othersOf = (mode) => others.filter((x) => x.mode === mode).map((x) => x.cpuMsPer1000);
    return {
      files, repeats, runs,
      modes,
      cpuMsPer1000: Object.fromEntries(modes.map((m) => [m, spread(of(m, 'cpuMsPer1000'), 0)])),
      // Run i of one mode against run i of the other: measured side by side, in the same minute.
      cpuRatio: pairedRatios(of('fanotify', 'cpuMsPer1000'), of('off', 'cpuMsPer1000')),
      ...(auditd ? { auditCpuRatio: pairedRatios(of('audit', 'cpuMsPer1000'), of('off', 'cpuMsPer1000')), auditdCpuMsPer1000: spread(of('audit', 'auditdCpuMsPer1000'), 0) } : {}),
      recordedMs: Object.fromEntries(modes.map((m) => [m, spread(of(m, 'recordedMs'), 0)])),
      others,
      othersCpuMsPer1000: Object.fromEntries(modes.map((m) => [m, spread(othersOf(m), 0)])),
    };
  });
}

export function whoMarkdown(result) {
  if (result.error) return `### Who-data cost\n\nnot run: ${result.error}`;
  const rows = result.runs.map((r) => `| ${r.mode} | ${r.changes} | ${r.cpuMsPer1000}${r.auditdCpuMsPer1000 === null || r.auditdCpuMsPer1000 === undefined ? '' : ` (+ auditd ${r.auditdCpuMsPer1000})`} | ${r.recordedMs} | ${r.lost} / ${r.duplicated} | ${r.attributed}${r.whoMissing.length ? ` (null: ${r.whoMissing.join(', ')})` : ''} |`);
  return [
    `### Who-data cost (issue 16): ${result.files} creates, modifies and deletes per run, ${result.repeats} runs per mode, in turns`,
    '',
    '| --who | changes | agent CPU ms per 1,000 changes | all recorded after (ms) | lost / duplicated | events with who |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Agent CPU per 1,000 changes: ${result.modes.map((m) => `${m} ${result.cpuMsPer1000[m].median} ms (${result.cpuMsPer1000[m].min}–${result.cpuMsPer1000[m].max})`).join(', ')}; fanotify ÷ off, paired runs: ${result.cpuRatio.median} (${result.cpuRatio.min}–${result.cpuRatio.max})${result.auditCpuRatio ? `; audit ÷ off: ${result.auditCpuRatio.median} (${result.auditCpuRatio.min}–${result.auditCpuRatio.max}), and auditd itself ${result.auditdCpuMsPer1000.median} ms per 1,000` : ''}.`,
    '',
    `Other processes' writes beside the watched directory, on its file system (${result.files * 3} changes per run, none watched): agent CPU per 1,000 of them ${result.modes.map((m) => `${m} ${result.othersCpuMsPer1000[m].median} ms (${result.othersCpuMsPer1000[m].min}–${result.othersCpuMsPer1000[m].max})`).join(', ')}.`,
  ].join('\n');
}
