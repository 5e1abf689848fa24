import type { FsoAlert, Logger } from '@fso/common';
import { NotifyError } from '../errors.js';
import type { Notifier, NotifyOutcome } from './notifier.js';

/** Options of {@link createDispatcher}. */
export interface DispatcherOptions {
  notifiers: readonly Notifier[];
  log: Logger;
  /** Attempts per alert and target (default 6), the first delay (default 1 s), doubling with jitter up to `maxDelayMs` (default 60 s). */
  retry?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** Alerts waiting per target before the oldest is dropped (default 1,000). */
  maxQueue?: number;
  /** Every attempt's outcome, with its duration. */
  onOutcome?: (target: string, outcome: NotifyOutcome, seconds: number) => void;
}

/** Sends alerts to their targets. */
export interface Dispatcher {
  /** Queues `alert` for each named target and returns at once; never throws. */
  dispatch(targets: readonly string[], alert: FsoAlert): void;
  /** Alerts waiting or being sent, per target. */
  pending(): Map<string, number>;
  /**
   * Waits up to `drainMs` (default 0) for the queues to empty, then drops
   * what is left, closes every notifier (which cuts a send in flight) and
   * waits for the last outcomes; a second call returns the same promise.
   */
  close(options?: { drainMs?: number }): Promise<void>;
}

interface Lane {
  notifier: Notifier;
  queue: FsoAlert[];
  busy: boolean;
  /** Wakes a lane waiting between retries when closing. */
  wake?: () => void;
}

/**
 * Creates the dispatcher: one FIFO lane per target, delivered in order and
 * independently, so a target that is down or hangs (each attempt is cut by
 * the target's timeout) delays no other. A failed attempt is retried with
 * exponential backoff and jitter while it is retryable and attempts remain;
 * a full lane drops its oldest alert, loudly.
 *
 * @example
 * const dispatcher = createDispatcher({ notifiers: [hook, siem], log });
 * dispatcher.dispatch(['hook', 'siem'], alert);
 */
export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { log } = options;
  const attempts = options.retry?.attempts ?? 6;
  const initialDelayMs = options.retry?.initialDelayMs ?? 1000;
  const maxDelayMs = options.retry?.maxDelayMs ?? 60_000;
  const maxQueue = options.maxQueue ?? 1000;
  const lanes = new Map<string, Lane>(options.notifiers.map((n) => [n.name, { notifier: n, queue: [], busy: false }]));
  let closing = false;
  let closed: Promise<void> | undefined;
  const idle: Array<() => void> = [];
  const outcome = (target: string, o: NotifyOutcome, seconds: number): void => {
    // A throwing callback must not stop a lane (an unhandled rejection) nor make dispatch() throw.
    try {
      options.onOutcome?.(target, o, seconds);
    } catch (err) {
      log.error({ err, target, outcome: o }, 'notification outcome callback failed');
    }
  };

  const settleIdle = (): void => {
    if ([...lanes.values()].every((l) => !l.busy && l.queue.length === 0)) for (const resolve of idle.splice(0)) resolve();
  };

  const pause = (lane: Lane, ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        lane.wake = undefined;
        resolve();
      }
      lane.wake = done;
    });

  const deliver = async (lane: Lane, alert: FsoAlert): Promise<void> => {
    const target = lane.notifier.name;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        await lane.notifier.send(alert);
        outcome(target, 'sent', (performance.now() - started) / 1000);
        if (attempt > 1) log.info({ target, alert: alert.id, attempt }, 'notification sent after retries');
        return;
      } catch (err) {
        const seconds = (performance.now() - started) / 1000;
        const canRetry = (!(err instanceof NotifyError) || err.retryable) && attempt < attempts && !closing;
        if (!canRetry) {
          outcome(target, 'failed', seconds);
          log.error({ err, target, alert: alert.id, attempt }, `notification to ${target} failed for good`);
          return;
        }
        outcome(target, 'retried', seconds);
        const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
        const jittered = delay / 2 + Math.random() * (delay / 2);
        log.warn({ err, target, alert: alert.id, attempt, retryInMs: Math.round(jittered) }, `notification to ${target} failed; retrying`);
        await pause(lane, jittered);
        if (closing) {
          // close() ended the drain during the pause: no attempt on a notifier that is closing.
          outcome(target, 'dropped', 0);
          log.error({ target, alert: alert.id, attempt }, `notification to ${target} given up at close after ${attempt} attempts`);
          return;
        }
      }
    }
  };

  const run = async (lane: Lane): Promise<void> => {
    if (lane.busy) return;
    lane.busy = true;
    try {
      for (let alert = lane.queue.shift(); alert; alert = lane.queue.shift()) await deliver(lane, alert);
    } finally {
      lane.busy = false;
      settleIdle();
    }
  };

  return {
    dispatch(targets, alert) {
      for (const target of targets) {
        const lane = lanes.get(target);
        if (!lane) {
          outcome(target, 'dropped', 0);
          log.error({ target, alert: alert.id }, `no notification target named ${target}`);
          continue;
        }
        if (closing) {
          outcome(target, 'dropped', 0);
          log.warn({ target, alert: alert.id }, `notification to ${target} dropped: the dispatcher is closing`);
          continue;
        }
        lane.queue.push(alert);
        if (lane.queue.length > maxQueue) {
          const dropped = lane.queue.shift();
          outcome(target, 'dropped', 0);
          log.error({ target, alert: dropped?.id, maxQueue }, `notification queue of ${target} is full: the oldest alert was dropped (it is still on MQTT and in the trail)`);
        }
        void run(lane);
      }
    },
    pending() {
      return new Map([...lanes].map(([name, lane]) => [name, lane.queue.length + (lane.busy ? 1 : 0)]));
    },
    close(closeOptions) {
      closed ??= (async () => {
        const drainMs = closeOptions?.drainMs ?? 0;
        const drained = new Promise<void>((resolve) => {
          idle.push(resolve);
          settleIdle();
        });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)))]);
        clearTimeout(timer);
        closing = true;
        // Lanes waiting between retries give up now; what is left is counted as dropped.
        for (const lane of lanes.values()) {
          for (const _ of lane.queue.splice(0)) outcome(lane.notifier.name, 'dropped', 0);
          lane.wake?.();
        }
        await Promise.allSettled([...lanes.values()].map((l) => l.notifier.close()));
        // A closed notifier cuts its send in flight; its outcome is counted before close() resolves.
        await new Promise<void>((resolve) => {
          idle.push(resolve);
          settleIdle();
        });
      })();
      return closed;
    },
  };
}
