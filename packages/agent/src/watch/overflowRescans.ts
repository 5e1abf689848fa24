import { isoFromMs } from '@fso/common';
import type { AgentStatus, FsoGap, Logger, Topics } from '@fso/common';
import { createOverflowMonitor, overflowThreshold, MAX_QUEUED_EVENTS_FILE } from './overflowMonitor.js';
import type { OverflowSuspicion } from './overflowMonitor.js';
import type { Publisher, Unstamped } from '../delivery/publisher.js';
import type { RootWatcher } from './rootWatcher.js';

/** Options of {@link createRescanner}. */
export interface RescannerOptions {
  /** The agent's watchers by root (read at each round: roots come and go with configs). */
  watchers: ReadonlyMap<string, RootWatcher>;
  publisher: Publisher;
  topics: Topics;
  agentId: string;
  log: Logger;
  /** The kernel's inotify queue size (see readMaxQueuedEvents); null where there is no inotify: no overflow monitor then. */
  maxQueuedEvents: number | null;
  /** Rescan every root this often (ms), catching what the OS dropped; default off. */
  intervalMs?: number;
  /** An overflow was noticed (the status counts them). */
  onOverflow: () => void;
}

/** Rescans every root after an inotify overflow (announced as a gap message) and on an interval. */
export interface Rescanner {
  /** Counts one fs.watch notification (every watcher's sink calls it): the overflow monitor's input. */
  note(): void;
  /** The status's inotify part; undefined where there is no inotify. */
  inotify(): AgentStatus['inotify'];
  /** A watcher started while an overflow's rescans run holds its deletes like the others; returns it. */
  holdingDeletes(watcher: RootWatcher): RootWatcher;
  /**
   * Publishes the gap message of an overflow not announced yet, if any. close()
   * does; the agent does again once its watchers are closed, as the monitor
   * counts notifications until the last watch is gone.
   */
  announceGap(): void;
  /** Stops the interval and the monitor's tick, waits for the round under way, announces a pending gap. A second call returns the same promise. */
  close(): Promise<void>;
}

/**
 * Creates the rescanner and starts its overflow monitor and interval.
 * Synchronous: the agent creates it between its MQTT client and the
 * client's connect listener, where an await would miss the connect.
 *
 * @example
 * const rescans = createRescanner({ watchers, publisher, topics, agentId, log, maxQueuedEvents: await readMaxQueuedEvents(), onOverflow: () => status.publishSoon() });
 * startRootWatcher({ ...options, sink: { change, notification: () => rescans.note() } });
 */
export function createRescanner(options: RescannerOptions): Rescanner {
  const { watchers, publisher, topics, agentId, log, maxQueuedEvents } = options;
  let closing: Promise<void> | undefined;
  let overflows = 0;
  let lastOverflowMs: number | null = null;
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
    options.onOverflow();
    unannounced = {
      sinceMs: Math.min(unannounced?.sinceMs ?? suspicion.sinceMs, suspicion.sinceMs),
      untilMs: suspicion.atMs,
      notifications: Math.max(unannounced?.notifications ?? 0, suspicion.notifications),
    };
    rescanAll();
  };

  const monitor =
    maxQueuedEvents === null
      ? undefined
      : createOverflowMonitor({ threshold: overflowThreshold(maxQueuedEvents), onOverflow });
  if (maxQueuedEvents === null && process.platform === 'linux') {
    // Not silently: without it an overflow of the kernel queue would go unannounced.
    log.warn({ file: MAX_QUEUED_EVENTS_FILE }, 'cannot read the inotify queue size: inotify overflows will not be detected (is /proc mounted?)');
  }
  log.debug({ maxQueuedEvents, overflowThreshold: monitor?.threshold }, 'inotify queue');
  const timer = options.intervalMs ? setInterval(rescanAll, options.intervalMs) : undefined;
  timer?.unref();

  return {
    note() {
      monitor?.note();
    },
    inotify() {
      if (maxQueuedEvents === null) return undefined;
      return { maxQueuedEvents, overflows, lastOverflowAt: lastOverflowMs === null ? null : isoFromMs(lastOverflowMs) };
    },
    holdingDeletes(watcher) {
      deleteHolds?.push(watcher.holdDeletes());
      return watcher;
    },
    announceGap,
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        // Its note() still counts (and reports) until the last watch is gone; only the liveness tick stops.
        monitor?.close();
        await rescanning;
        // An overflow seen after the last round started is still announced.
        announceGap();
      })();
      return closing;
    },
  };
}
