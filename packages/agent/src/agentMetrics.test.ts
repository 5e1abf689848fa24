import { describe, expect, it } from 'vitest';
import { parseMetrics } from '../../../tests/helpers.js';
import { createAgentMetrics } from './agentMetrics.js';
import type { AgentMetrics, AgentMetricsProbe } from './agentMetrics.js';

/** A probe whose values the test sets, read at each scrape as the agent's are. */
function fakeProbe(): AgentMetricsProbe & { values: Record<string, unknown> } {
  const values: Record<string, unknown> = {
    lastSeq: 0, ackedSeq: 0, pendingMessages: 0, pendingBytes: 0, oldestPendingMs: null, connected: false,
    watchRoots: { ready: 0, pending: 0 }, configRevision: null, now: 1_000_000,
  };
  return {
    values,
    lastSeq: () => values.lastSeq as number,
    ackedSeq: () => values.ackedSeq as number,
    pendingMessages: () => values.pendingMessages as number,
    pendingBytes: () => values.pendingBytes as number,
    oldestPendingMs: () => values.oldestPendingMs as number | null,
    connected: () => values.connected as boolean,
    watchRoots: () => values.watchRoots as { ready: number; pending: number },
    configRevision: () => values.configRevision as number | null,
    now: () => values.now as number,
  };
}

const scrape = async (metrics: AgentMetrics): Promise<Map<string, number>> => parseMetrics(await metrics.registry.metrics());

describe('createAgentMetrics', () => {
  it('starts every counter at 0, by every label value the dashboard plots, with the process metrics prefixed', async () => {
    const s = await scrape(createAgentMetrics(fakeProbe()));
    for (const type of ['create', 'modify', 'delete', 'rename']) {
      for (const origin of ['live', 'scan']) expect(s.get(`fso_agent_events_observed_total{type="${type}",origin="${origin}"}`), `${type}/${origin}`).toBe(0);
    }
    for (const kind of ['event', 'diff', 'gap', 'status']) expect(s.get(`fso_agent_messages_published_total{kind="${kind}"}`), kind).toBe(0);
    for (const name of ['fso_agent_resends_total', 'fso_agent_outbox_lost_messages_total', 'fso_agent_watch_overflows_total', 'fso_agent_hash_seconds_count', 'fso_agent_diff_seconds_count']) {
      expect(s.get(name), name).toBe(0);
    }
    expect(s.get('fso_agent_connected')).toBe(0);
    expect(s.get('fso_agent_ack_lag_seconds')).toBe(0);
    expect(s.get('fso_agent_config_revision')).toBe(-1);
    expect(s.get('fso_agent_watch_roots{state="ready"}')).toBe(0);
    expect(s.get('fso_agent_watch_roots{state="pending"}')).toBe(0);
    expect(s.has('fso_agent_process_resident_memory_bytes')).toBe(true);
    expect(s.has('fso_agent_nodejs_eventloop_lag_seconds')).toBe(true);
  });

  it('counts what it is told: changes by type and origin, first sends by kind apart from resends, lost messages, overflows, hash and diff times', async () => {
    const metrics = createAgentMetrics(fakeProbe());
    metrics.observed('create', 'live');
    metrics.observed('create', 'live');
    metrics.observed('delete', 'scan');
    metrics.published('event');
    metrics.published('event');
    metrics.published('diff');
    metrics.published('status');
    metrics.resent();
    metrics.resent();
    metrics.resent();
    metrics.lost();
    metrics.overflowed();
    metrics.hashed(0.0003);
    metrics.hashed(2);
    metrics.diffed(0.02);
    const s = await scrape(metrics);
    expect(s.get('fso_agent_events_observed_total{type="create",origin="live"}')).toBe(2);
    expect(s.get('fso_agent_events_observed_total{type="create",origin="scan"}')).toBe(0);
    expect(s.get('fso_agent_events_observed_total{type="delete",origin="scan"}')).toBe(1);
    expect(s.get('fso_agent_messages_published_total{kind="event"}')).toBe(2);
    expect(s.get('fso_agent_messages_published_total{kind="diff"}')).toBe(1);
    expect(s.get('fso_agent_messages_published_total{kind="gap"}')).toBe(0);
    expect(s.get('fso_agent_messages_published_total{kind="status"}')).toBe(1);
    expect(s.get('fso_agent_resends_total')).toBe(3);
    expect(s.get('fso_agent_outbox_lost_messages_total')).toBe(1);
    expect(s.get('fso_agent_watch_overflows_total')).toBe(1);
    expect(s.get('fso_agent_hash_seconds_count')).toBe(2);
    expect(s.get('fso_agent_hash_seconds_sum')).toBeCloseTo(2.0003, 6);
    expect(s.get('fso_agent_hash_seconds_bucket{le="0.0005"}')).toBe(1);
    expect(s.get('fso_agent_hash_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(s.get('fso_agent_diff_seconds_count')).toBe(1);
    expect(s.get('fso_agent_diff_seconds_bucket{le="0.025"}')).toBe(1);
    expect(s.get('fso_agent_diff_seconds_bucket{le="0.01"}')).toBe(0);
  });

  it('reads its gauges from the probe at each scrape: seqs, outbox, ack lag, connection, roots by state, config revision', async () => {
    const probe = fakeProbe();
    const metrics = createAgentMetrics(probe);
    Object.assign(probe.values, {
      lastSeq: 42, ackedSeq: 40, pendingMessages: 2, pendingBytes: 512, oldestPendingMs: 1_000_000 - 2_500, connected: true,
      watchRoots: { ready: 2, pending: 1 }, configRevision: 7,
    });
    let s = await scrape(metrics);
    expect(s.get('fso_agent_last_seq')).toBe(42);
    expect(s.get('fso_agent_acked_seq')).toBe(40);
    expect(s.get('fso_agent_outbox_pending_messages')).toBe(2);
    expect(s.get('fso_agent_outbox_pending_bytes')).toBe(512);
    expect(s.get('fso_agent_ack_lag_seconds')).toBe(2.5);
    expect(s.get('fso_agent_connected')).toBe(1);
    expect(s.get('fso_agent_watch_roots{state="ready"}')).toBe(2);
    expect(s.get('fso_agent_watch_roots{state="pending"}')).toBe(1);
    expect(s.get('fso_agent_config_revision')).toBe(7);

    // Acknowledged: the lag is 0 again, not the age of the last message.
    Object.assign(probe.values, { ackedSeq: 42, pendingMessages: 0, pendingBytes: 0, oldestPendingMs: null, connected: false, watchRoots: { ready: 3, pending: 0 } });
    s = await scrape(metrics);
    expect(s.get('fso_agent_acked_seq')).toBe(42);
    expect(s.get('fso_agent_ack_lag_seconds')).toBe(0);
    expect(s.get('fso_agent_connected')).toBe(0);
    expect(s.get('fso_agent_watch_roots{state="pending"}')).toBe(0);
    // A clock that stepped back never makes a negative lag.
    Object.assign(probe.values, { pendingMessages: 1, oldestPendingMs: 1_000_000 + 60_000 });
    expect((await scrape(metrics)).get('fso_agent_ack_lag_seconds')).toBe(0);
  });

  it('keeps a registry of its own: two agents in one process do not clash', async () => {
    const a = createAgentMetrics(fakeProbe());
    const b = createAgentMetrics(fakeProbe());
    a.observed('modify', 'live');
    expect(a.registry).not.toBe(b.registry);
    expect((await scrape(a)).get('fso_agent_events_observed_total{type="modify",origin="live"}')).toBe(1);
    expect((await scrape(b)).get('fso_agent_events_observed_total{type="modify",origin="live"}')).toBe(0);
  });
});
