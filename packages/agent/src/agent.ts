import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  FSO_VERSION,
  assertAgentId,
  createMqttClient,
  createSilentLogger,
  createTopics,
  endMqtt,
  isoFromMs,
  isoNow,
  parseJson,
  ackSchema,
} from '@fso/common';
import type { AgentConfig, AgentStatus, FsoDiff, FsoEvent, FsoGap, Logger, WatchSpec } from '@fso/common';
import { ConfigManager } from './configManager.js';
import type { ConfigOutcome, ConfigSource } from './configManager.js';
import { createContentStore } from './contentStore.js';
import { createDiffer } from './differ.js';
import { createFileLooker } from './fileLooks.js';
import { openRedactionKey } from './redactionKey.js';
import { createWatchFilter } from './filters.js';
import type { WatchFilter } from './filters.js';
import { JOURNAL_FILE, foldJournal } from './journal.js';
import { openOutbox } from './outbox.js';
import { createOverflowMonitor, overflowThreshold, readMaxQueuedEvents, MAX_QUEUED_EVENTS_FILE } from './overflowMonitor.js';
import type { OverflowSuspicion } from './overflowMonitor.js';
import { createPublisher } from './publisher.js';
import type { Unstamped } from './publisher.js';
import type { Change } from './reconciler.js';
import { startRootWatcher } from './rootWatcher.js';
import type { RootWatcher } from './rootWatcher.js';
import { openStateDir } from './stateDir.js';

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
  /** Settles pending changes, publishes the offline status, releases everything. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts an agent: watches the configured roots, publishes every change
 * (through the durable outbox), applies configs pushed over MQTT live.
 *
 * @example
 * const agent = await startAgent({ agentId: 'web-01', brokerUrl: 'mqtt://127.0.0.1:1883', stateDir: '/var/lib/fso-agent',
 *   initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: '/srv/app' }] }, 'flags') });
 */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const agentId = assertAgentId(options.agentId);
  const log = (options.logger ?? createSilentLogger()).child({ agentId });
  const topics = createTopics(options.topicPrefix);
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
  const looker = createFileLooker({ log: log.child({ component: 'looker' }) });
  const differ = createDiffer({ store, logger: log.child({ component: 'differ' }), nodiff: options.nodiff, redactionKey });
  const hostname = os.hostname();
  // null where there is no inotify (not Linux): no overflow monitor then.
  const maxQueuedEvents = await readMaxQueuedEvents();
  let overflows = 0;
  let lastOverflowMs: number | null = null;
  const watchers = new Map<string, RootWatcher>();
  const diffsInFlight = new Set<Promise<void>>();
  let configs: ConfigManager | undefined;
  let pendingConfig: AgentConfig | undefined;
  let closing: Promise<void> | undefined;

  const offlineStatus = (): AgentStatus => ({ ...buildStatus(), state: 'offline' });
  // The client connects on its own: no `await` from here to `client.on('connect')` below, or a
  // connect during it goes unseen and the agent never subscribes to its config and acks.
  const client = createMqttClient({
    url: options.brokerUrl,
    clientId: agentId,
    username: options.username,
    passwordFile: options.passwordFile,
    caFile: options.caFile,
    clean: true,
    resubscribe: false,
    will: { topic: topics.status(agentId), payload: Buffer.from(JSON.stringify(offlineStatusAtStart())), qos: 1, retain: true },
  });
  const publisher = createPublisher({
    client, outbox, agentId, epoch: state.epoch, log: log.child({ component: 'publisher' }),
    resendIntervalMs: options.resendIntervalMs,
    onOverflow: () => publishStatusSoon(),
  });

  function buildStatus(): AgentStatus {
    const outcome = configs?.outcome;
    return {
      schema: 'fso.status/1',
      agentId,
      state: 'online',
      hostname,
      version: FSO_VERSION,
      epoch: state.epoch,
      lastSeq: publisher?.lastSeq ?? outbox.lastSeq,
      config: {
        revision: outcome?.revision ?? null,
        state: outcome?.state ?? 'none',
        error: outcome?.error ?? null,
        source: outcome?.source ?? 'cli',
        appliedRevision: outcome?.appliedRevision ?? null,
      },
      watching: [...watchers.values()].map((w) => w.state()),
      outbox: {
        pending: outbox.pendingCount, ackedSeq: outbox.ackedSeq, bytes: outbox.pendingBytes, full: outbox.full,
        lost: outbox.lost().map((r) => ({ ...r })),
      },
      ...(maxQueuedEvents === null ? {} : { inotify: { maxQueuedEvents, overflows, lastOverflowAt: lastOverflowMs === null ? null : isoFromMs(lastOverflowMs) } }),
      at: isoNow(),
    };
  }
  // The will is fixed at connect time; it says offline with what was known then.
  function offlineStatusAtStart(): AgentStatus {
    return {
      schema: 'fso.status/1', agentId, state: 'offline', hostname, version: FSO_VERSION, epoch: state.epoch,
      lastSeq: outbox.lastSeq, config: { revision: null, state: 'none', error: null }, watching: [], at: isoNow(),
    };
  }

  let statusTimer: NodeJS.Timeout | undefined;
  const publishStatus = (): void => {
    if (statusTimer) clearTimeout(statusTimer);
    statusTimer = undefined;
    if (!client.connected || closing) return;
    client.publish(topics.status(agentId), JSON.stringify(buildStatus()), { qos: 1, retain: true }, (err) => {
      if (err) log.warn({ err }, 'cannot publish status');
    });
  };
  const publishStatusSoon = (): void => {
    statusTimer ??= setTimeout(publishStatus, 200);
  };
  const heartbeat = setInterval(publishStatus, options.statusIntervalMs ?? 30_000);
  heartbeat.unref();
  // Rescans of every root, one round at a time; a request during a round asks for one more.
  let rescanning: Promise<void> | undefined;
  let rescanAgain = false;
  /** Held deletes of every root, from an overflow until the rescans after it are done. */
  let deleteHolds: Array<() => void> | undefined;
  /** An inotify overflow not announced yet: announced as a gap message when the next round starts. */
  let unannounced: { sinceMs: number; untilMs: number; notifications: number } | undefined;
  const rescanAll = (): void => {
    if (closing) return;
    if (rescanning) {
      rescanAgain = true;
      return;
    }
    rescanning = (async () => {
      do {
        rescanAgain = false;
        announceGap();
        const started = Date.now();
        await Promise.all([...watchers.values()].map((w) => w.rescan()));
        log.info({ ms: Date.now() - started }, 'rescan done');
      } while (rescanAgain && !closing);
    })()
      .catch((err: unknown) => log.error({ err }, 'rescan failed'))
      .finally(() => {
        rescanning = undefined;
        for (const release of deleteHolds?.splice(0) ?? []) release();
        deleteHolds = undefined;
      });
  };
  const announceGap = (): void => {
    const gap = unannounced;
    if (!gap) return;
    unannounced = undefined;
    const message: Unstamped<FsoGap> = {
      schema: 'fso.gap/1', reason: 'watcher-overflow', roots: [...watchers.keys()],
      since: isoFromMs(gap.sinceMs), until: isoFromMs(gap.untilMs), notifications: gap.notifications, observedAt: isoFromMs(gap.untilMs),
    };
    publisher.publish(topics.gaps(agentId), message);
  };
  const onOverflow = (suspicion: OverflowSuspicion): void => {
    log.error(
      { notifications: suspicion.notifications, maxQueuedEvents, since: isoFromMs(suspicion.sinceMs) },
      `inotify queue overflowed: changes since then may be missing; announcing a gap and rescanning every root (raise ${MAX_QUEUED_EVENTS_FILE}, see docs/reliability.md)`,
    );
    overflows += 1;
    lastOverflowMs = suspicion.atMs;
    // The full queue may have cut renames in half (old name notified, new name dropped): the
    // vanished names wait for the rescan, which finds the new ones, rather than read as deletes.
    deleteHolds ??= [...watchers.values()].map((w) => w.holdDeletes());
    publishStatusSoon();
    unannounced = {
      sinceMs: Math.min(unannounced?.sinceMs ?? suspicion.sinceMs, suspicion.sinceMs),
      untilMs: suspicion.atMs,
      notifications: Math.max(unannounced?.notifications ?? 0, suspicion.notifications),
    };
    rescanAll();
  };
  const overflowMonitor =
    maxQueuedEvents === null
      ? undefined
      : createOverflowMonitor({ threshold: overflowThreshold(maxQueuedEvents), onOverflow });
  if (maxQueuedEvents === null && process.platform === 'linux') {
    // Not silently: without it an overflow of the kernel queue would go unannounced.
    log.warn({ file: MAX_QUEUED_EVENTS_FILE }, 'cannot read the inotify queue size: inotify overflows will not be detected (is /proc mounted?)');
  }
  log.debug({ maxQueuedEvents, overflowThreshold: overflowMonitor?.threshold }, 'inotify queue');
  const rescanTimer = options.rescanIntervalMs ? setInterval(rescanAll, options.rescanIntervalMs) : undefined;
  rescanTimer?.unref();

  const emitChange = (change: Change, filter: WatchFilter, root: string): void => {
    const important = filter.isImportant(change.path) || (change.oldPath !== undefined && filter.isImportant(change.oldPath));
    const observedAt = isoFromMs(change.observedAtMs);
    const event: Unstamped<FsoEvent> = {
      schema: 'fso.event/1',
      type: change.type,
      path: change.path,
      ...(change.oldPath !== undefined ? { oldPath: change.oldPath } : {}),
      root,
      kind: change.kind,
      size: change.size,
      mtime: change.mtimeMs === null ? null : isoFromMs(change.mtimeMs),
      sha256: change.sha256,
      hashSkipped: change.hashSkipped,
      important,
      origin: change.origin,
      observedAt,
    };
    const eventId = publisher.publish(topics.event(agentId, change.type), event, { root, ops: change.ops });
    if (!important || change.kind !== 'file' || change.type === 'rename') return;
    const diffOptions = (configs?.current?.config ?? pendingConfig)?.diff;
    if (!diffOptions) return;
    const running = differ
      .diff({ path: change.path, change: change.type, options: diffOptions })
      .then((result) => {
        const diff: Unstamped<FsoDiff> = {
          schema: 'fso.diff/1', eventId, path: change.path, format: 'unified',
          patch: result.patch, added: result.added, removed: result.removed, skipped: result.skipped, redactions: result.redactions, observedAt,
        };
        publisher.publish(topics.diffs(agentId), diff);
      })
      .catch((err: unknown) => log.error({ err, path: change.path }, 'diff failed'))
      .finally(() => diffsInFlight.delete(running));
    diffsInFlight.add(running);
  };

  const startWatch = async (spec: WatchSpec, quiet: boolean, handOver?: RootWatcher): Promise<RootWatcher> => {
    const root = path.resolve(spec.path);
    // Content is kept for important files only: a rename of two unimportant paths has none to move
    // (asking the store cost a failed rename(2) per renamed file).
    const patterns = createWatchFilter(spec);
    return startRootWatcher({
      spec, log, stateDir: state.dir, quiet, baseline: handOver?.baseline, saveSnapshots: false,
      hashMaxBytes: (pendingConfig ?? configs?.current?.config)?.hashing.maxFileBytes ?? 256 * 1024 * 1024,
      pairWindowMs: options.pairWindowMs ?? 100,
      looker,
      onChange: (change, filter) => emitChange(change, filter, root),
      onMove: (oldPath, newPath) => {
        if (!patterns.isImportant(oldPath) && !patterns.isImportant(newPath)) return;
        differ.rename(oldPath, newPath, (pendingConfig ?? configs?.current?.config)?.diff.nodiff).catch((err: unknown) => log.warn({ err }, 'cannot move saved content'));
      },
      onUnreported: (ops) => publisher.journal(root, ops),
      onRecorded: (p, entry, filter) => {
        publisher.journal(root, [['set', p, entry]]);
        const diffOptions = (pendingConfig ?? configs?.current?.config)?.diff;
        if (entry.kind === 'file' && filter.isImportant(p)) {
          differ.remember(p, diffOptions?.maxFileBytes ?? 0, diffOptions?.nodiff).catch((err: unknown) => log.warn({ err, path: p }, 'cannot keep content for diffs'));
        }
      },
      onState: publishStatusSoon,
      onNotification: overflowMonitor ? () => overflowMonitor.note() : undefined,
    });
  };

  /** A watcher started while an overflow's rescans run holds its deletes like the others. */
  const holdingDeletes = (watcher: RootWatcher): RootWatcher => {
    deleteHolds?.push(watcher.holdDeletes());
    return watcher;
  };

  // Applies a config live: unchanged watches keep running untouched (no spurious events).
  const applyConfig = async (config: AgentConfig, source: ConfigSource): Promise<void> => {
    pendingConfig = config;
    const wanted = new Map(config.watch.map((spec) => [path.resolve(spec.path), spec]));
    for (const [root, watcher] of [...watchers]) {
      const spec = wanted.get(root);
      if (spec && isDeepStrictEqual(spec, watcher.spec)) continue;
      watchers.delete(root);
      await watcher.close();
      if (spec) watchers.set(root, holdingDeletes(await startWatch(spec, true, watcher)));
      else log.info({ root }, 'no longer watching');
    }
    for (const [root, spec] of wanted) {
      if (!watchers.has(root)) watchers.set(root, holdingDeletes(await startWatch(spec, false)));
    }
    if (source !== 'cli') await state.saveConfig({ source, config });
    publishStatusSoon();
  };

  const manager = new ConfigManager({
    log: log.child({ component: 'config' }),
    apply: applyConfig,
    onOutcome: (_outcome: ConfigOutcome) => publishStatus(),
  });
  configs = manager;

  client.on('connect', () => {
    log.info({ url: options.brokerUrl }, 'connected to broker');
    client.subscribe([topics.config(agentId), topics.defaultConfig(), topics.ack(agentId)], { qos: 1 }, (err) => {
      if (err) log.error({ err }, 'cannot subscribe to config and ack topics');
    });
    publishStatus();
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
    if (topic === topics.config(agentId)) void manager.offer('agent', payload);
    else if (topic === topics.defaultConfig()) void manager.offer('default', payload);
  });

  const saved = await state.loadConfig();
  if (saved) await manager.start(saved.config, saved.source);
  else if (options.initialConfig) await manager.start(options.initialConfig, 'cli');
  else log.warn('no config yet: waiting for one on the config topics');

  return {
    agentId,
    epoch: state.epoch,
    status: buildStatus,
    config: () => manager.current?.config ?? null,
    async ready() {
      await Promise.all([...watchers.values()].map((w) => w.ready()));
    },
    close() {
      closing ??= (async () => {
        clearInterval(heartbeat);
        if (rescanTimer) clearInterval(rescanTimer);
        overflowMonitor?.close();
        await rescanning;
        // An overflow seen after the last round started is still announced.
        announceGap();
        if (statusTimer) clearTimeout(statusTimer);
        for (const watcher of watchers.values()) await watcher.close();
        // And one seen while the watchers closed (the monitor counts until the last one is gone).
        announceGap();
        await Promise.all([...diffsInFlight]);
        await differ.close();
        await looker.close();
        await publisher.close();
        if (client.connected) {
          await client.publishAsync(topics.status(agentId), JSON.stringify(offlineStatus()), { qos: 1, retain: true }).catch(() => undefined);
        }
        await endMqtt(client);
        await outbox.close();
        await store.close();
        log.info('agent stopped');
      })();
      return closing;
    },
  };
}
