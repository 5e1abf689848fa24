import type { MqttClient } from 'mqtt';
import { FSO_VERSION, isoNow } from '@fso/common';
import type { AgentStatus, Logger, Topics, WatchState } from '@fso/common';
import type { ConfigOutcome } from '../configManager.js';
import type { Outbox } from './outbox.js';

/** Who the status speaks for: what it says whatever else changes. */
export interface StatusIdentity {
  agentId: string;
  hostname: string;
  epoch: string;
}

/** What the status reads each time it is built. */
export interface StatusSources {
  /** The last seq handed out. */
  lastSeq(): number;
  outbox: Outbox;
  /** The outcome of the last config received. */
  config(): ConfigOutcome;
  /** Every watched root's state. */
  watching(): WatchState[];
  /** The kernel's watch queue and the overflows noticed; undefined where there is no inotify. */
  inotify(): AgentStatus['inotify'];
  /** Who-data's mode and source; undefined where the agent was not asked (the library's default). */
  who?(): AgentStatus['who'];
}

/** Options of {@link createStatusReporter}. */
export interface StatusReporterOptions extends StatusIdentity {
  client: MqttClient;
  topics: Topics;
  log: Logger;
  sources: StatusSources;
  /** Heartbeat (ms): the status is published this often; default 30 s. */
  intervalMs?: number;
  /** A status was handed to the broker (for metrics). */
  onPublished?: () => void;
}

/** Builds and publishes the agent's retained status. */
export interface StatusReporter {
  /** The current status (what is published retained). */
  status(): AgentStatus;
  /** Publishes the status now (when connected and not closed). */
  publish(): void;
  /** Publishes the status shortly: many changes in a burst make one status. */
  publishSoon(): void;
  /** Publishes the current status saying offline, if connected (the last words of a clean close); still works after close(). */
  publishOffline(): Promise<void>;
  /** Stops the heartbeat and any status due: nothing is published after it but {@link StatusReporter.publishOffline}. A second call returns the same promise. */
  close(): Promise<void>;
}

const SOON_MS = 200;

/**
 * The offline status of the MQTT last will. The will is fixed at connect
 * time, so it says offline with what was known then.
 */
export function offlineStatusAtStart(identity: StatusIdentity, lastSeq: number): AgentStatus {
  return {
    schema: 'fso.status/1', agentId: identity.agentId, state: 'offline', hostname: identity.hostname, version: FSO_VERSION, epoch: identity.epoch,
    lastSeq, config: { revision: null, state: 'none', error: null }, watching: [], at: isoNow(),
  };
}

/**
 * Creates the status reporter and starts its heartbeat. Synchronous: the
 * agent creates it between its MQTT client and the client's connect
 * listener, where an await would miss the connect.
 *
 * @example
 * const status = createStatusReporter({ client, topics, log, agentId, hostname, epoch, sources });
 * client.on('connect', () => status.publish());
 */
export function createStatusReporter(options: StatusReporterOptions): StatusReporter {
  const { client, topics, log, sources, agentId } = options;
  let closing: Promise<void> | undefined;
  let soonTimer: NodeJS.Timeout | undefined;

  const status = (): AgentStatus => {
    const outcome = sources.config();
    const { outbox } = sources;
    const inotify = sources.inotify();
    const who = sources.who?.();
    return {
      schema: 'fso.status/1',
      agentId,
      state: 'online',
      hostname: options.hostname,
      version: FSO_VERSION,
      epoch: options.epoch,
      lastSeq: sources.lastSeq(),
      config: {
        revision: outcome.revision,
        state: outcome.state,
        error: outcome.error,
        source: outcome.source,
        appliedRevision: outcome.appliedRevision,
      },
      watching: sources.watching(),
      outbox: {
        pending: outbox.pendingCount, ackedSeq: outbox.ackedSeq, bytes: outbox.pendingBytes, full: outbox.full,
        lost: outbox.lost().map((r) => ({ ...r })),
      },
      ...(inotify === undefined ? {} : { inotify }),
      ...(who === undefined ? {} : { who }),
      at: isoNow(),
    };
  };

  const publish = (): void => {
    if (soonTimer) clearTimeout(soonTimer);
    soonTimer = undefined;
    if (!client.connected || closing) return;
    options.onPublished?.();
    client.publish(topics.status(agentId), JSON.stringify(status()), { qos: 1, retain: true }, (err) => {
      if (err) log.warn({ err }, 'cannot publish status');
    });
  };
  const heartbeat = setInterval(publish, options.intervalMs ?? 30_000);
  heartbeat.unref();

  return {
    status,
    publish,
    publishSoon() {
      if (closing) return;
      soonTimer ??= setTimeout(publish, SOON_MS);
    },
    async publishOffline() {
      if (!client.connected) return;
      options.onPublished?.();
      await client.publishAsync(topics.status(agentId), JSON.stringify({ ...status(), state: 'offline' }), { qos: 1, retain: true }).catch(() => undefined);
    },
    close() {
      closing ??= (async () => {
        clearInterval(heartbeat);
        if (soonTimer) clearTimeout(soonTimer);
        soonTimer = undefined;
      })();
      return closing;
    },
  };
}
