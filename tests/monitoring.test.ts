/**
 * The monitoring profile (issue 14): docker-compose.yml's Prometheus and
 * Grafana, monitoring/prometheus.yml and the FSO dashboard. A dashboard
 * silently shows "No data" when a metric is renamed, so every query here is
 * checked against the names docs/protocol.md documents, parsed by promtool,
 * and every scrape target against the compose services. Needs promtool
 * (Debian: prometheus) and docker-compose on PATH; .ci/run installs both.
 * Without them these tests fail, never skip (as the browser tests do
 * without Chromium).
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createTempDir } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const at = (...parts: string[]): string => path.join(REPO, ...parts);

interface Target { refId: string; expr: string; legendFormat?: string; datasource?: { uid?: string } }
interface Panel { id: number; type: string; title: string; gridPos: { h: number; w: number; x: number; y: number }; datasource?: { uid?: string }; targets?: Target[] }
interface Variable { name: string; type: string; query?: string | { query?: string }; definition?: string }
interface Dashboard { uid: string; title: string; schemaVersion: number; panels: Panel[]; templating: { list: Variable[] } }
interface ComposeService { image?: string; command?: string[]; profiles?: string[]; ports?: string[]; volumes?: string[] }
interface ScrapeConfig { job_name: string; scrape_interval?: string; static_configs: Array<{ targets: string[] }> }

/** Runs a tool of the machine; a missing tool is a failure that says how to get it, never a skip. */
function run(command: string, args: string[], install: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${command} is not on PATH: ${install} (.ci/run installs it)`));
      else if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The metrics the issue asks the dashboard to show, by the names the daemons export. */
const REQUIRED = [
  'fso_agent_connected', 'fso_agent_events_observed_total', 'fso_agent_outbox_pending_messages', 'fso_agent_outbox_pending_bytes',
  'fso_agent_ack_lag_seconds', 'fso_agent_watch_overflows_total', 'fso_agent_messages_published_total', 'fso_agent_resends_total',
  'fso_agent_hash_seconds', 'fso_agent_diff_seconds', 'fso_agent_last_seq', 'fso_agent_acked_seq',
  'fso_broker_connections', 'fso_broker_connections_total', 'fso_broker_messages_received_total', 'fso_broker_deliveries_acked_total',
  'fso_broker_subscriptions_total', 'fso_broker_client_errors_total',
  'fso_recorder_records_written_total', 'fso_recorder_commit_seconds', 'fso_recorder_commit_messages', 'fso_recorder_queue_messages', 'fso_recorder_connected',
  'fso_alert_alerts_total', 'fso_alert_notifications_total', 'fso_alert_notification_seconds', 'fso_alert_events_evaluated_total', 'fso_alert_rules', 'fso_alert_connected',
  'fso_console_http_requests_total', 'fso_console_http_request_seconds', 'fso_console_logins_total', 'fso_console_sessions', 'fso_console_trail_verified',
];

/** Metric names in a PromQL expression; a histogram's series name their family. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/fso_[a-z0-9_]+/g)].map(([name]) => name.replace(/_(bucket|sum|count)$/, ''));
}

/**
 * Grafana's variables replaced by values Prometheus accepts, and a variable's
 * `label_values(selector, label)` (Grafana's, not PromQL) by the query it
 * runs, so promtool can parse the expression.
 */
const concrete = (expr: string): string =>
  expr
    .replace(/^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/, 'group by ($2) ($1)')
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__range', '1h')
    .replaceAll('$instance', '.*');

let dashboard: Dashboard;
let exprs: Array<{ panel: string; expr: string }>;
let protocolMetrics: string;
let compose: { services: Record<string, ComposeService> };
let prometheus: { global: { scrape_interval: string }; scrape_configs: ScrapeConfig[] };
let tmp: { path: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  tmp = await createTempDir('fso-monitoring-');
  dashboard = JSON.parse(await readFile(at('monitoring/grafana/dashboards/fso.json'), 'utf8')) as Dashboard;
  exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  for (const v of dashboard.templating.list) {
    const query = typeof v.query === 'string' ? v.query : v.query?.query;
    if (v.type === 'query' && query) exprs.push({ panel: `variable $${v.name}`, expr: query });
  }
  const protocol = await readFile(at('docs/protocol.md'), 'utf8');
  const section = /^## Metrics and health\n([\s\S]*?)(?=^## )/m.exec(protocol);
  if (!section?.[1]) throw new Error('docs/protocol.md has no "## Metrics and health" section');
  protocolMetrics = section[1];
  compose = parse(await readFile(at('docker-compose.yml'), 'utf8'), { merge: true }) as typeof compose;
  prometheus = parse(await readFile(at('monitoring/prometheus.yml'), 'utf8')) as typeof prometheus;
});
afterAll(() => tmp.cleanup());

describe('the FSO Grafana dashboard', () => {
  it('is a dashboard Grafana provisions: uid fso, a recent schema, unique ids, panels inside the 24-column grid', () => {
    expect(dashboard.uid).toBe('fso');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.schemaVersion).toBeLessThanOrEqual(41);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, `${p.title} fits the grid`).toBeLessThanOrEqual(24);
      expect(p.gridPos.h, `${p.title} has a height`).toBeGreaterThan(0);
    }
    expect(dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual(['Fleet', 'Pipeline', 'Alerts', 'Console']);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
  });

  it('gives every panel queries on the $datasource variable', () => {
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(20);
    for (const p of panels) {
      expect(p.targets?.length, `${p.title} has queries`).toBeGreaterThan(0);
      expect(p.datasource?.uid, `${p.title}'s data source`).toBe('${datasource}');
      for (const t of p.targets ?? []) {
        expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe('');
        expect(t.datasource?.uid, `${p.title} ${t.refId}'s data source`).toBe('${datasource}');
      }
    }
  });

  it('queries only metrics that docs/protocol.md ("Metrics and health") documents', () => {
    const documented = new Set([...protocolMetrics.matchAll(/fso_[a-z0-9_]+/g)].map(([name]) => name).filter((n) => !n.endsWith('_')));
    const undocumented = exprs.flatMap(({ panel, expr }) => metricNames(expr).filter((n) => !documented.has(n)).map((n) => `${n} (panel "${panel}")`));
    expect(undocumented, 'metrics the dashboard queries but docs/protocol.md does not name: renamed, or never documented').toEqual([]);
  });

  it('shows every metric the fleet, pipeline, alerts and console rows are about', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)));
    expect(REQUIRED.filter((n) => !used.has(n))).toEqual([]);
    // Latency percentiles come from the histograms' buckets.
    const all = exprs.map((e) => e.expr).join('\n');
    expect(all).toContain('histogram_quantile(0.99, sum by (le) (rate(fso_recorder_commit_seconds_bucket[$__rate_interval])))');
    expect(all).toContain('histogram_quantile(0.5, sum by (le) (rate(fso_recorder_commit_seconds_bucket[$__rate_interval])))');
  });

  it('has only queries Prometheus parses (promtool check rules)', async () => {
    const rules = { groups: [{ name: 'fso-dashboard', rules: exprs.map(({ expr }, i) => ({ record: `fso_dashboard:query_${i}`, expr: concrete(expr) })) }] };
    const file = path.join(tmp.path, 'dashboard-queries.yml');
    await writeFile(file, JSON.stringify(rules)); // JSON is YAML.
    const { stdout } = await run('promtool', ['check', 'rules', file], 'apt-get install prometheus');
    expect(stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
  });
});

describe('monitoring/prometheus.yml', () => {
  it('is a valid Prometheus config (promtool check config) that scrapes every 15s', async () => {
    await run('promtool', ['check', 'config', at('monitoring/prometheus.yml')], 'apt-get install prometheus');
    expect(prometheus.global.scrape_interval).toBe('15s');
    for (const job of prometheus.scrape_configs) expect(job.scrape_interval ?? '15s', job.job_name).toBe('15s');
  });

  it('scrapes each FSO daemon of docker-compose.yml on its --metrics-port, by service name', () => {
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets.map((t) => ({ job: job.job_name, target: t }))));
    for (const { job, target } of targets) {
      const host = target.split(':')[0] ?? '';
      expect(host in compose.services, `${job}'s target ${target} is a compose service`).toBe(true);
    }
    const daemons = Object.entries(compose.services).filter(([, s]) => s.command?.includes('--metrics-port'));
    expect(daemons.map(([name]) => name).sort()).toEqual(['agent', 'alert', 'broker', 'console', 'recorder']);
    for (const [name, service] of daemons) {
      const flag = (f: string): string | undefined => service.command?.[service.command.indexOf(f) + 1];
      expect(flag('--metrics-host'), `${name} serves metrics beyond its container's loopback`).toBe('0.0.0.0');
      expect(targets.map((t) => t.target), `a scrape target for ${name}`).toContain(`${name}:${flag('--metrics-port')}`);
    }
    expect(targets.map((t) => t.job)).toEqual(['fso-broker', 'fso-recorder', 'fso-agent', 'fso-console', 'fso-alert']);
  });
});

describe('docker-compose.yml, monitoring profile', () => {
  it('puts Prometheus and Grafana, and only them, in the monitoring profile (the cluster nodes in theirs), published on loopback only', () => {
    const profiled = Object.entries(compose.services).filter(([, s]) => s.profiles !== undefined);
    expect(Object.fromEntries(profiled.map(([name, s]) => [name, s.profiles]))).toEqual({
      prometheus: ['monitoring'], grafana: ['monitoring'],
      // The cluster profile (docs/scaling.md): two broker nodes over one Redis.
      redis: ['cluster'], 'broker-a': ['cluster'], 'broker-b': ['cluster'],
    });
    expect(compose.services.prometheus?.image).toMatch(/^prom\/prometheus(:|$)/);
    expect(compose.services.grafana?.image).toMatch(/^grafana\/grafana(:|$)/);
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of service.ports ?? []) expect(port, `${name} publishes ${port}`).toMatch(/^127\.0\.0\.1:/);
    }
  });

  it('mounts the Prometheus config and the Grafana provisioning and dashboards that the provisioning points at', async () => {
    expect(compose.services.prometheus?.volumes).toContain('./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const grafana = compose.services.grafana?.volumes ?? [];
    expect(grafana).toContain('./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro');
    const dashboards = grafana.find((v) => v.startsWith('./monitoring/grafana/dashboards:'))?.split(':')[1];
    const provider = parse(await readFile(at('monitoring/grafana/provisioning/dashboards/fso.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    expect(provider.providers[0]?.options.path).toBe(dashboards);
    const datasources = parse(await readFile(at('monitoring/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: Array<{ type: string; url: string }> };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  });

  it('is valid for docker-compose, with and without the profile', async () => {
    const install = 'apt-get install docker-compose';
    await run('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], install);
    await run('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'monitoring', 'config', '-q'], install);
  });
});
