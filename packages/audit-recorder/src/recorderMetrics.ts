import { AUDIT_FILE_KINDS } from '@fso/audit-trail';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommitStats } from './auditWriter.js';

/** The recorder's Prometheus metrics (issue 14 §3), in a registry of their own. */
export interface RecorderMetrics {
  readonly registry: Registry;
  committed(stats: CommitStats): void;
  acked(agentId: string, seq: number): void;
}

/**
 * Creates the recorder's metrics: lines written per kind, the group commit's
 * write + fsync time, messages per commit, the queue, the last acked seq per
 * agent (an agent's own last seq minus this is its ack lag), and whether the
 * recorder is connected and subscribed. Process metrics (CPU, RSS, event loop
 * lag) come with them, prefixed `fso_recorder_`.
 */
export function createRecorderMetrics(probe: { queued: () => number; connected: () => boolean }): RecorderMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fso_recorder_' });
  const lines = new Counter({ name: 'fso_recorder_records_written_total', help: 'Audit lines appended and fsynced, by kind of file', labelNames: ['kind'], registers: [registry] });
  for (const kind of AUDIT_FILE_KINDS) lines.inc({ kind }, 0);
  const commitSeconds = new Histogram({
    name: 'fso_recorder_commit_seconds', help: 'One group commit: its writes and fsyncs',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
  });
  const commitMessages = new Histogram({
    name: 'fso_recorder_commit_messages', help: 'Messages in one group commit', buckets: [1, 10, 100, 500, 1000, 2500, 5000], registers: [registry],
  });
  const ackedSeq = new Gauge({ name: 'fso_recorder_acked_seq', help: 'The last seq acknowledged to each agent (its current epoch)', labelNames: ['agent'], registers: [registry] });
  new Gauge({ name: 'fso_recorder_queue_messages', help: 'Messages received, waiting for the next commit', registers: [registry], collect() { this.set(probe.queued()); } });
  new Gauge({ name: 'fso_recorder_connected', help: '1 when connected to the broker and subscribed', registers: [registry], collect() { this.set(probe.connected() ? 1 : 0); } });
  return {
    registry,
    committed: (stats) => {
      for (const [kind, n] of Object.entries(stats.lines)) lines.inc({ kind }, n);
      commitSeconds.observe(stats.seconds);
      commitMessages.observe(stats.messages);
    },
    acked: (agentId, seq) => ackedSeq.set({ agent: agentId }, seq),
  };
}
