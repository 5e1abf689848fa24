// Issue 14's figures: alert latency from a file write to the webhook
// receiving the alert (p50/p99), and a mass delete of N files making one
// alert, not N. A real stack as separate processes: fso-broker, fso-audit
// record, fso-agent, fso-alert (rules file with a webhook target), and an
// HTTP receiver in this process that checks each signature.
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { createAuditTail } from '../lib/audit.mjs';
import { nowMs } from '../lib/generator.mjs';
import { binOf, procCpuSeconds, sleep, startNode, tempDir, withResources } from '../lib/processes.mjs';
import { startAgent, startBroker, startRecorder } from '../lib/stack.mjs';
import { percentile } from '../lib/stats.mjs';

const KEY = 'bench-webhook-key-0123456789abcdef';

function rules(url, massDelete) {
  return `targets:
  hook: { type: webhook, url: "${url}", secretFile: hook.key, timeout: 5s }
rules:
  - id: hot
    when: change
    match: { path: "**/hot/**" }
    limit: { incidents: 1000000, per: 1h }
    notify: [hook]
  - id: mass-delete
    severity: critical
    when: change
    match: { type: delete, path: "**/mass/**" }
    threshold: { count: ${massDelete.threshold}, window: 1m }
    resolveAfter: 5s
    notify: [hook]
`;
}

/** Starts the webhook receiver: each alert with the time it arrived (ms, same clock as the writes). */
async function startReceiver() {
  const received = [];
  let badSignatures = 0;
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = nowMs();
      const body = Buffer.concat(chunks);
      if (req.headers['x-fso-signature-256'] !== `sha256=${createHmac('sha256', KEY).update(body).digest('hex')}`) badSignatures += 1;
      received.push({ at, alert: JSON.parse(body.toString('utf8')) });
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${server.address().port}/hook`, received, badSignatures: () => badSignatures, stop: () => new Promise((r) => server.close(() => r())) };
}

async function waitUntil(check, what, { stallMs = 30_000, progress = () => 0 } = {}) {
  let last = progress();
  let movedAt = Date.now();
  for (;;) {
    if (await check()) return;
    const now = progress();
    if (now !== last) {
      last = now;
      movedAt = Date.now();
    }
    if (Date.now() - movedAt > stallMs) throw new Error(`no progress for ${stallMs} ms waiting for ${what} (at ${now})`);
    await sleep(20);
  }
}

/**
 * `writes` files written one at a time, `gapMs` apart, each its own incident
 * of rule `hot`: write → webhook latency. Then `massDelete.files` files
 * deleted at once under a threshold rule: the alerts it makes.
 */
export async function alertsScenario({ writes = 200, gapMs = 50, massDelete = { files: 10_000, threshold: 100 }, progress = () => {} }) {
  return withResources(async (track) => {
    const tmp = track(await tempDir('alerts'));
    const watched = path.join(tmp.path, 'watched');
    const audit = path.join(tmp.path, 'audit');
    mkdirSync(path.join(watched, 'hot'), { recursive: true });
    const mass = path.join(watched, 'mass');
    mkdirSync(mass);
    for (let i = 0; i < massDelete.files; i++) writeFileSync(path.join(mass, `f${i}`), `${i}\n`);
    const receiver = await startReceiver();
    track({ stop: receiver.stop });
    await writeFile(path.join(tmp.path, 'hook.key'), KEY);
    const rulesFile = path.join(tmp.path, 'rules.yml');
    await writeFile(rulesFile, rules(receiver.url, massDelete));
    const broker = track(await startBroker('embedded', tmp.path));
    track(await startRecorder(broker.url, audit));
    const alert = startNode('fso-alert', [binOf('alerts'), '--rules', rulesFile, '--broker', broker.url, '--client-id', 'bench-alert'], { env: { FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: 'info' } });
    track({ stop: () => alert.stop() });
    await alert.waitForLine((_l, j) => j?.msg === 'connected and subscribed', '"connected and subscribed" log line');
    track(await startAgent({ brokerUrl: broker.url, watch: watched, stateDir: path.join(tmp.path, 'state') }));

    // 1. Latency: one write, its alert, the next write.
    const latencies = [];
    const cpu0 = await procCpuSeconds(alert.pid);
    for (let i = 0; i < writes; i++) {
      const file = path.join(watched, 'hot', `f${i}.txt`);
      const t0 = nowMs();
      await writeFile(file, `${i}\n`);
      await waitUntil(() => receiver.received.some((r) => r.alert.path === file), `the alert of write ${i}`);
      latencies.push(receiver.received.find((r) => r.alert.path === file).at - t0);
      await sleep(gapMs);
    }
    const cpuLatency = (await procCpuSeconds(alert.pid)) - cpu0;
    latencies.sort((a, b) => a - b);
    const latency = { n: latencies.length, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) };
    progress(`write → webhook: p50 ${latency.p50.toFixed(1)} ms, p99 ${latency.p99.toFixed(1)} ms over ${writes} writes`);

    // 2. Mass delete: every delete recorded, then the resolved alert (5 s quiet).
    const tail = createAuditTail(audit);
    const massDeletes = () => tail.events.filter((e) => e.type === 'delete' && e.path.startsWith(`${mass}/`)).length;
    const t0 = nowMs();
    const cpu1 = await procCpuSeconds(alert.pid);
    await rm(mass, { recursive: true });
    await waitUntil(async () => {
      await tail.poll();
      return massDeletes() >= massDelete.files;
    }, `${massDelete.files} deletes in the trail`, { progress: massDeletes });
    const recordedMs = nowMs() - t0;
    const ofRule = (state) => receiver.received.filter((r) => r.alert.rule === 'mass-delete' && r.alert.state === state);
    await waitUntil(() => ofRule('resolved').length > 0, 'the resolved mass-delete alert', { stallMs: 60_000 });
    const cpuMass = (await procCpuSeconds(alert.pid)) - cpu1;
    const firing = ofRule('firing');
    const result = {
      latency,
      alertCpuSecondsPerWrite: cpuLatency / writes,
      massDelete: {
        files: massDelete.files,
        threshold: massDelete.threshold,
        recordedMs: Math.round(recordedMs),
        firingAlerts: firing.length,
        resolvedAlerts: ofRule('resolved').length,
        firingAfterMs: firing[0] ? Math.round(firing[0].at - t0) : null,
        resolvedCount: ofRule('resolved')[0]?.alert.count ?? null,
        alertCpuSeconds: cpuMass,
      },
      badSignatures: receiver.badSignatures(),
    };
    progress(`mass delete of ${massDelete.files}: ${result.massDelete.firingAlerts} firing alert(s) after ${result.massDelete.firingAfterMs} ms, resolved with count ${result.massDelete.resolvedCount}`);
    return result;
  });
}

/** The figures as targets. */
export function alertsTargets(r) {
  return [
    { name: 'alert latency write → webhook p99', measured: { median: `${r.latency.p99.toFixed(0)} ms` }, bound: '(figure)', met: true },
    { name: `mass delete of ${r.massDelete.files} files: firing alerts`, measured: { median: r.massDelete.firingAlerts }, bound: '1', met: r.massDelete.firingAlerts === 1 },
    { name: 'mass delete: resolved alert counts every delete', measured: { median: r.massDelete.resolvedCount }, bound: `≥ ${r.massDelete.files}`, met: (r.massDelete.resolvedCount ?? 0) >= r.massDelete.files },
    { name: 'webhook signatures that did not verify', measured: { median: r.badSignatures }, bound: '0', met: r.badSignatures === 0 },
  ];
}

/** Markdown for the run. */
export function alertsMarkdown(r) {
  const m = r.massDelete;
  return [
    `**Alerts** — fso-alert as its own process beside broker, recorder and agent; a webhook receiver in the bench process.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| file write → webhook received (${r.latency.n} writes, one incident each): p50 / p99 / max | ${r.latency.p50.toFixed(1)} / ${r.latency.p99.toFixed(1)} / ${r.latency.max.toFixed(1)} ms |`,
    `| fso-alert CPU per write (rule match, alert, publish, webhook) | ${(r.alertCpuSecondsPerWrite * 1000).toFixed(2)} ms |`,
    `| mass delete of ${m.files} files (threshold ${m.threshold}/min): firing / resolved alerts | ${m.firingAlerts} / ${m.resolvedAlerts} |`,
    `| mass delete: first delete → firing alert at the webhook | ${m.firingAfterMs} ms |`,
    `| mass delete: the resolved alert's count | ${m.resolvedCount} |`,
    `| mass delete: all deletes in the trail after | ${m.recordedMs} ms |`,
    `| fso-alert CPU for the ${m.files} deletes | ${m.alertCpuSeconds.toFixed(2)} s |`,
  ].join('\n');
}
