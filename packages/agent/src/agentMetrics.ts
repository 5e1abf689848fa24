import { EVENT_TYPES, ORIGINS } from '@fso/common';
import type { EventType, Origin } from '@fso/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The kinds of message the agent publishes, as `fso_agent_messages_published_total` labels them. */
export const PUBLISHED_KINDS = ['event', 'diff', 'gap', 'status'] as const;
/** A kind of message the agent publishes. */
export type PublishedKind = (typeof PUBLISHED_KINDS)[number];

/** What the agent's metrics read at each scrape (the gauges' values). */
export interface AgentMetricsProbe {
  /** The last seq handed out (current epoch). */
  lastSeq(): number;
  /** The last seq the recorder acknowledged (current epoch). */
  ackedSeq(): number;
  /** Messages in the outbox not yet acknowledged. */
  pendingMessages(): number;
  /** Bytes of them, as the outbox counts them against its limit. */
  pendingBytes(): number;
  /** When the oldest of them was stamped (ms since the epoch); null when there is none. */
  oldestPendingMs(): number | null;
  /** True while connected to the broker. */
  connected(): boolean;
  /** Watched roots whose initial scan is done (`ready`) and the others (`pending`: scanning, or waiting for a missing root). */
  watchRoots(): { ready: number; pending: number };
  /** The revision of the config in force; null before any. */
  configRevision(): number | null;
  /** Now, ms since the epoch (tests give their own clock). */
  now?(): number;
}

/** The agent's Prometheus metrics (issue 14 §3), in a registry of their own, and the calls that count into them. */
export interface AgentMetrics {
  readonly registry: Registry;
  /** The watcher reported a change (live, or found by a scan). */
  observed(type: EventType, origin: Origin): void;
  /** A message was handed to the broker for the first time. */
  published(kind: PublishedKind): void;
  /** A message was handed to the broker again (no ack progress, a reconnect, a restart). */
  resent(): void;
  /** The outbox could not keep a message (full, or unwritable): it is announced as lost. */
  lost(): void;
  /** The kernel's inotify queue overflowed (a gap and a rescan follow). */
  overflowed(): void;
  /** One file's SHA-256 took `seconds`. */
  hashed(seconds: number): void;
  /** One diff took `seconds` in the diff worker. */
  diffed(seconds: number): void;
  /** An event's who-data: `attributed`, or why it is null. */
  who(result: string): void;
}

/**
 * Creates the agent's metrics: changes observed by type and origin, messages
 * published by kind and resent, the outbox (pending messages and bytes, lost
 * messages, the age of the oldest unacknowledged message), inotify overflows,
 * hash and diff times, the last and acknowledged seqs, whether the agent is
 * connected, its watched roots by state and its config revision. Process
 * metrics (CPU, RSS, event loop lag) come with them, prefixed `fso_agent_`.
 * The gauges are read from `probe` at each scrape.
 *
 * @example
 * const metrics = createAgentMetrics({ lastSeq: () => publisher.lastSeq, connected: () => client.connected, … });
 * const server = await startHealthServer({ port: 9464, registry: metrics.registry, health: () => agent.health() });
 */
export function createAgentMetrics(probe: AgentMetricsProbe): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fso_agent_' });
  const now = probe.now ?? Date.now;
  const observed = new Counter({
    name: 'fso_agent_events_observed_total', help: 'Changes the watcher reported, by event type and origin (live, or found by a scan)',
    labelNames: ['type', 'origin'], registers: [registry],
  });
  for (const type of EVENT_TYPES) for (const origin of ORIGINS) observed.inc({ type, origin }, 0);
  const published = new Counter({
    name: 'fso_agent_messages_published_total', help: 'Messages handed to the broker for the first time, by kind (resends are fso_agent_resends_total)',
    labelNames: ['kind'], registers: [registry],
  });
  for (const kind of PUBLISHED_KINDS) published.inc({ kind }, 0);
  const resends = new Counter({ name: 'fso_agent_resends_total', help: 'Messages handed to the broker again: no ack progress, a reconnect, a restart', registers: [registry] });
  const lost = new Counter({ name: 'fso_agent_outbox_lost_messages_total', help: 'Messages the outbox could not keep (full, or unwritable), announced as lost', registers: [registry] });
  const overflows = new Counter({ name: 'fso_agent_watch_overflows_total', help: 'Overflows of the kernel inotify queue (each announced as a gap, followed by a rescan)', registers: [registry] });
  const hashSeconds = new Histogram({
    name: 'fso_agent_hash_seconds', help: "One file's SHA-256: its open, reads and hash",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
  });
  const diffSeconds = new Histogram({
    name: 'fso_agent_diff_seconds', help: 'One diff of an important file, in the diff worker',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
  });
  const who = new Counter({
    name: 'fso_agent_who_total', help: 'Events by their who-data: attributed, or why it is null (not-root, unsupported, scan, no-record, process-gone)',
    labelNames: ['result'], registers: [registry],
  });
  new Gauge({ name: 'fso_agent_outbox_pending_messages', help: 'Messages in the outbox not yet acknowledged by the recorder', registers: [registry], collect() { this.set(probe.pendingMessages()); } });
  new Gauge({ name: 'fso_agent_outbox_pending_bytes', help: 'Bytes of them, as counted against --outbox-max', registers: [registry], collect() { this.set(probe.pendingBytes()); } });
  new Gauge({ name: 'fso_agent_last_seq', help: 'The last seq handed out (current epoch)', registers: [registry], collect() { this.set(probe.lastSeq()); } });
  new Gauge({ name: 'fso_agent_acked_seq', help: 'The last seq the recorder acknowledged (current epoch)', registers: [registry], collect() { this.set(probe.ackedSeq()); } });
  new Gauge({
    name: 'fso_agent_ack_lag_seconds', help: 'Age of the oldest message not yet acknowledged (0 when there is none)', registers: [registry],
    collect() {
      const oldest = probe.oldestPendingMs();
      this.set(oldest === null ? 0 : Math.max(0, (now() - oldest) / 1000));
    },
  });
  new Gauge({ name: 'fso_agent_connected', help: '1 when connected to the broker', registers: [registry], collect() { this.set(probe.connected() ? 1 : 0); } });
  new Gauge({
    name: 'fso_agent_watch_roots', help: 'Watched roots: ready (initial scan done) or pending (scanning, or waiting for a missing root)', labelNames: ['state'], registers: [registry],
    collect() {
      const roots = probe.watchRoots();
      this.set({ state: 'ready' }, roots.ready);
      this.set({ state: 'pending' }, roots.pending);
    },
  });
  new Gauge({ name: 'fso_agent_config_revision', help: 'Revision of the config in force (-1 before any)', registers: [registry], collect() { this.set(probe.configRevision() ?? -1); } });
  return {
    registry,
    observed: (type, origin) => observed.inc({ type, origin }),
    published: (kind) => published.inc({ kind }),
    resent: () => resends.inc(),
    lost: () => lost.inc(),
    overflowed: () => overflows.inc(),
    hashed: (seconds) => hashSeconds.observe(seconds),
    diffed: (seconds) => diffSeconds.observe(seconds),
    who: (result) => who.inc({ result }),
  };
}
