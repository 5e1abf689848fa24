import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { assertAgentId, createMqttClient, createSilentLogger, createTopics, endMqtt, parseJson, ackSchema } from '@fso/common';
import type { AgentConfig, AgentStatus, HealthState, Logger, WatchSpec } from '@fso/common';
import type { Registry } from 'prom-client';
import { createAgentMetrics } from './agentMetrics.js';
import type { PublishedKind } from './agentMetrics.js';
import { createChangePublisher } from './delivery/changeMessages.js';
import { ConfigManager } from './configManager.js';
import type { ConfigSource } from './configManager.js';
import { createContentStore } from './diff/contentStore.js';
import { createDiffer } from './diff/differ.js';
import { createFileLooker } from './watch/fileLooks.js';
import { openRedactionKey } from './diff/redactionKey.js';
import { JOURNAL_FILE, foldJournal } from './delivery/journal.js';
import { openOutbox } from './delivery/outbox.js';
import { readMaxQueuedEvents } from './watch/overflowMonitor.js';
import { createRescanner } from './watch/overflowRescans.js';
import { createPublisher } from './delivery/publisher.js';
import { startRootWatcher } from './watch/rootWatcher.js';
import type { RootWatcher } from './watch/rootWatcher.js';
import { openStateDir } from './stateDir.js';
import { createStatusReporter, offlineStatusAtStart } from './delivery/status.js';
import { startWhoSource } from './who/whoSource.js';
import type { WhoMode } from './who/whoSource.js';

/** Options of {@link startAgent}. */
export interface AgentOptions {
  agentId: string;
  brokerUrl: string;
  /** The agent's own folder: epoch, outbox, baselines, last config, diff contents. */
  stateDir: string;
  topicPrefix?: string;
  /** The config to run until one arrives over MQTT (flags or `--config`); the saved one wins over it. */
  initialConfig?: AgentConfig;
  logger?: Logger;
  username?: string;
  passwordFile?: string;
  /** CA certificate (PEM file) for mqtts:// and wss:// brokers. */
  caFile?: string;
  /** Globs whose content never leaves this host, whatever a pushed config says (`--nodiff`); DEFAULT_NODIFF always applies. */
  nodiff?: string[];
  /** How long a new path waits to be renamed over a file, and at most a vanished path for its rename partner (ms); default 100. */
  pairWindowMs?: number;
  /** Resend unacknowledged messages after this long without ack progress (ms); default 10 s. */
  resendIntervalMs?: number;
  /** Compare every watched tree with its baseline this often (ms), catching what the OS dropped; default off. */
  rescanIntervalMs?: number;
  /** Most bytes of unacknowledged messages the outbox keeps; default 256 MiB. Past it, changes are lost loudly (status `outbox.lost`, gap records). */
  outboxMaxBytes?: number;
  /** Status heartbeat (ms); default 30 s. */
  statusIntervalMs?: number;
  /**
   * Who made each change (issue 16): `auto` uses fanotify where the host
   * allows it (root, Linux ≥ 5.9, the addon built), else Linux audit (a
   * running auditd), else events carry `who: null` and the reason;
   * `fanotify` and `audit` fail to start without theirs; `off` (the default
   * here; the CLI's is auto) adds nothing.
   */
  who?: WhoMode;
}

/** A running agent. */
export interface Agent {
  readonly agentId: string;
  readonly epoch: string;
  /** The current status (what is published retained). */
  status(): AgentStatus;
  /** The config in force, or null. */
  config(): AgentConfig | null;
  /** Resolves when every watched root finished its initial scan. */
  ready(): Promise<void>;
  /** Its Prometheus metrics (`fso_agent_*`; serve them with `startHealthServer`). */
  readonly metrics: Registry;
  /**
   * Live until close() starts; ready when connected to the broker and every
   * watched root finished its initial scan, else the reasons (`broker not
   * connected`, `watch /srv not ready: …`).
   */
  health(): HealthState;
  /** Settles pending changes, publishes the offline status, releases everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an agent: watches the configured roots, publishes every change
 * (through the durable outbox), applies configs pushed over MQTT live.
 *
 * The route of a change, top to bottom:
 * - watch/: each root's watcher (rootWatcher.ts) turns the directory watches'
 *   notifications (dirWatcher.ts) into hints; the reconciler (reconciler.ts)
 *   decides each hinted path against the baseline (baseline.ts), pairing
 *   renames by inode (renamePairing.ts), and the change emitter
 *   (changeEmitter.ts) hashes and reports the changes in order to the
 *   watcher's sink;
 * - delivery/: the change publisher (changeMessages.ts) turns a change into
 *   an event message and, for an important file, a diff message (computed in
 *   diff/); the publisher (publisher.ts) numbers them and keeps them in the
 *   outbox (outbox.ts) until the recorder acknowledges them.
 * Beside it: the status reporter (delivery/status.ts), the overflow
 * rescans (watch/overflowRescans.ts) and the Prometheus metrics
 * (agentMetrics.ts: each stage above counts into them through a callback).
 *
 * @example
 * const agent = await startAgent({ agentId: 'web-01', brokerUrl: 'mqtt://127.0.0.1:1883', stateDir: '/var/lib/fso-agent',
 *   initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: '/srv/app' }] }, 'flags') });
 */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const agentId = assertAgentId(options.agentId);
  const log = (options.logger ?? createSilentLogger()).child({ agentId });
  const topics = createTopics(options.topicPrefix);
  // Its probe reads what is made below, and only at a scrape, once startAgent has returned.
  const metrics = createAgentMetrics({
    lastSeq: () => publisher.lastSeq,
    ackedSeq: () => outbox.ackedSeq,
    pendingMessages: () => outbox.pendingCount,
    pendingBytes: () => outbox.pendingBytes,
    oldestPendingMs: () => publisher.oldestPendingMs(),
    connected: () => client.connected,
    watchRoots: () => {
      const states = [...watchers.values()].map((w) => w.state());
      const ready = states.filter((w) => w.ready).length;
      return { ready, pending: states.length - ready };
    },
    configRevision: () => configs.current?.config.revision ?? null,
  });
  // First, so that `--who fanotify` on a host without it fails before anything is opened.
  const who = await startWhoSource({ mode: options.who ?? 'off', agentId, auditCanaryFile: path.join(options.stateDir, 'who-audit.canary'), log: log.child({ component: 'who' }), onAnswer: (result) => metrics.who(result) });
  const state = await openStateDir(options.stateDir, log);
  const outbox = await openOutbox({
    file: state.resolve('outbox.jsonl'), journalFile: state.resolve(JOURNAL_FILE), log: log.child({ component: 'outbox' }),
    // The baseline is as far as the events in the outbox, no further: fold the journal up to them.
    recover: async (lastSeq) => {
      await foldJournal(state.dir, log.child({ component: 'journal' }), lastSeq);
    },
    maxBytes: options.outboxMaxBytes,
  });
  const store = await createContentStore(state.resolve('contents'));
  // Redaction markers are HMACs under a per-host key: a short secret's marker cannot be brute-forced.
  const redactionKey = await openRedactionKey(state.resolve('redaction.key'));
  const looker = createFileLooker({ log: log.child({ component: 'looker' }), onHashed: metrics.hashed });
  const differ = createDiffer({ store, logger: log.child({ component: 'differ' }), nodiff: options.nodiff, redactionKey, onDiffed: metrics.diffed });
  const identity = { agentId, hostname: os.hostname(), epoch: state.epoch };
  // null where there is no inotify (not Linux): no overflow monitor then.
  const maxQueuedEvents = await readMaxQueuedEvents();
  const watchers = new Map<string, RootWatcher>();
  /** The config last handed to applyConfig: set before it is applied, kept if it is rejected. */
  let pendingConfig: AgentConfig | undefined;
  let closing: Promise<void> | undefined;
  // Its callbacks run from start() and offer() only, below, once everything they use exists.
  const configs = new ConfigManager({
    log: log.child({ component: 'config' }),
    apply: applyConfig,
    onOutcome: () => status.publish(),
  });
  const configInForce = (): AgentConfig | undefined => configs.current?.config ?? pendingConfig;
  const newestConfig = (): AgentConfig | undefined => pendingConfig ?? configs.current?.config;

  // The client connects on its own: no `await` from here to `client.on('connect')` below, or a
  // connect during it goes unseen and the agent never subscribes to its config and acks (so the
  // factories below are synchronous).
  const client = createMqttClient({
    url: options.brokerUrl,
    clientId: agentId,
    username: options.username,
    passwordFile: options.passwordFile,
    caFile: options.caFile,
    clean: true,
    resubscribe: false,
    will: { topic: topics.status(agentId), payload: Buffer.from(JSON.stringify(offlineStatusAtStart(identity, outbox.lastSeq))), qos: 1, retain: true },
  });
  // The publisher sends events, diffs and gaps only: its topics tell them apart.
  const diffsTopic = topics.diffs(agentId);
  const gapsTopic = topics.gaps(agentId);
  const kindOf = (topic: string): PublishedKind => (topic === diffsTopic ? 'diff' : topic === gapsTopic ? 'gap' : 'event');
  const publisher = createPublisher({
    client, outbox, agentId, epoch: state.epoch, log: log.child({ component: 'publisher' }),
    resendIntervalMs: options.resendIntervalMs,
    onOverflow: () => {
      metrics.lost();
      status.publishSoon();
    },
    onSent: (entry, resend) => (resend ? metrics.resent() : metrics.published(kindOf(entry.topic))),
  });
  const rescans = createRescanner({
    watchers, publisher, topics, agentId, log, maxQueuedEvents,
    intervalMs: options.rescanIntervalMs,
    onOverflow: () => {
      metrics.overflowed();
      status.publishSoon();
    },
  });
  const status = createStatusReporter({
    ...identity, client, topics, log,
    intervalMs: options.statusIntervalMs,
    onPublished: () => metrics.published('status'),
    sources: {
      lastSeq: () => publisher.lastSeq,
      outbox,
      config: () => configs.outcome,
      watching: () => [...watchers.values()].map((w) => w.state()),
      inotify: () => rescans.inotify(),
      who: () => (options.who === undefined ? undefined : who.state()),
    },
  });
  const changes = createChangePublisher({ publisher, differ, topics, agentId, log, configInForce, newestConfig, who });

  function startWatch(spec: WatchSpec, quiet: boolean, handOver?: RootWatcher): Promise<RootWatcher> {
    const publishing = changes.sink(path.resolve(spec.path), spec);
    return startRootWatcher({
      spec, log, stateDir: state.dir, quiet, baseline: handOver?.baseline, saveSnapshots: false,
      hashMaxBytes: newestConfig()?.hashing.maxFileBytes ?? 256 * 1024 * 1024,
      pairWindowMs: options.pairWindowMs ?? 100,
      looker,
      sink: {
        ...publishing,
        change: (change, filter) => {
          metrics.observed(change.type, change.origin);
          return publishing.change(change, filter);
        },
        state: () => status.publishSoon(),
        notification: () => rescans.note(),
        directory: (dir, watched) => who.directory(dir, watched),
      },
    });
  }

  // Applies a config live: unchanged watches keep running untouched (no spurious events).
  async function applyConfig(config: AgentConfig, source: ConfigSource): Promise<void> {
    pendingConfig = config;
    const wanted = new Map(config.watch.map((spec) => [path.resolve(spec.path), spec]));
    // Marked before the watches start, so that the first live change has its record.
    who.watch([...wanted.keys()]);
    for (const [root, watcher] of [...watchers]) {
      const spec = wanted.get(root);
      if (spec && isDeepStrictEqual(spec, watcher.spec)) continue;
      watchers.delete(root);
      await watcher.close();
      if (spec) watchers.set(root, rescans.holdingDeletes(await startWatch(spec, true, watcher)));
      else log.info({ root }, 'no longer watching');
    }
    for (const [root, spec] of wanted) {
      if (!watchers.has(root)) watchers.set(root, rescans.holdingDeletes(await startWatch(spec, false)));
    }
    if (source !== 'cli') await state.saveConfig({ source, config });
    status.publishSoon();
  }

  client.on('connect', () => {
    log.info({ url: options.brokerUrl }, 'connected to broker');
    client.subscribe([topics.config(agentId), topics.defaultConfig(), topics.ack(agentId)], { qos: 1 }, (err) => {
      if (err) log.error({ err }, 'cannot subscribe to config and ack topics');
    });
    status.publish();
    publisher.resendPending();
  });
  client.on('offline', () => log.warn({ url: options.brokerUrl }, 'broker unreachable; changes are kept in the outbox'));
  client.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'));
  client.on('message', (topic, payload) => {
    if (topic === topics.ack(agentId)) {
      const parsed = parseJson(payload);
      const ack = parsed.ok ? ackSchema.safeParse(parsed.value) : undefined;
      if (!ack?.success) {
        log.warn({ topic }, 'ignoring a malformed ack');
        return;
      }
      if (ack.data.epoch === state.epoch) publisher.acknowledge(ack.data.seq);
      return;
    }
    if (topic === topics.config(agentId)) void configs.offer('agent', payload);
    else if (topic === topics.defaultConfig()) void configs.offer('default', payload);
  });

  const saved = await state.loadConfig();
  if (saved) await configs.start(saved.config, saved.source);
  else if (options.initialConfig) await configs.start(options.initialConfig, 'cli');
  else log.warn('no config yet: waiting for one on the config topics');

  return {
    agentId,
    epoch: state.epoch,
    status: () => status.status(),
    config: () => configs.current?.config ?? null,
    async ready() {
      await Promise.all([...watchers.values()].map((w) => w.ready()));
    },
    metrics: metrics.registry,
    health() {
      if (closing) return { live: false, ready: false, reasons: ['stopping'] };
      const reasons: string[] = [];
      if (!client.connected) reasons.push('broker not connected');
      for (const watcher of watchers.values()) {
        const { path: root, ready, error } = watcher.state();
        if (!ready) reasons.push(`watch ${root} not ready${error ? `: ${error}` : ' (initial scan under way)'}`);
      }
      return { live: true, ready: reasons.length === 0, reasons };
    },
    close() {
      closing ??= (async () => {
        // Both stop at once, as one flag stopped them before the split: no status and no new rescan round from here on.
        await Promise.all([status.close(), rescans.close()]);
        for (const watcher of watchers.values()) await watcher.close();
        // An overflow seen while the watchers closed is announced too (the monitor counts until the last one is gone).
        rescans.announceGap();
        await changes.close();
        who.close();
        await differ.close();
        await looker.close();
        await publisher.close();
        await status.publishOffline();
        await endMqtt(client);
        await outbox.close();
        await store.close();
        log.info('agent stopped');
      })();
      return closing;
    },
  };
}
