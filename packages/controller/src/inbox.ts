import { parseJson, parseTopic } from '@fso/common';
import type { ParsedTopic } from '@fso/common';
import type { MqttClient } from 'mqtt';
import { DEFAULT_CONNECT_TIMEOUT_MS, acknowledged } from './connection.js';
import { OperationAbortedError } from './errors.js';

/** One message an {@link Inbox} received. */
export interface InboxMessage {
  topic: string;
  parsed: ParsedTopic;
  /** True when the broker sent it because of our new subscription (a retained message, MQTT-3.3.1-8). */
  retain: boolean;
  /** The payload as JSON; undefined when it is empty (a cleared retained message) or not JSON. */
  json: unknown;
  /** Why `json` is undefined, if the payload was not empty. */
  error: string | null;
}

/** Messages of a few subscriptions, kept in arrival order, with ways to wait for them. */
export interface Inbox {
  readonly messages: readonly InboxMessage[];
  /**
   * Re-runs `check` on every message until it returns a value; resolves
   * that value, or undefined after `timeoutMs`.
   */
  waitFor<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined>;
  /**
   * Resolves once no message came for `quietMs` (retained messages have no
   * end marker in MQTT 3.1.1), after `maxMs` at most, or as soon as
   * `complete()` holds.
   */
  settle(options: { quietMs: number; maxMs: number; complete?: () => boolean }): Promise<void>;
  /** Unsubscribes and stops listening; idempotent. */
  close(): Promise<void>;
}

/** Whether MQTT topic filter `filter` (with `+` and `#`) matches `topic`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** Options of {@link openInbox}. */
export interface InboxOptions {
  /** Makes every wait reject with `OperationAbortedError`. */
  signal?: AbortSignal;
  /** How long SUBSCRIBE and UNSUBSCRIBE may wait for the broker; default 5 s. */
  ackTimeoutMs?: number;
}

/**
 * Subscribes `client` (QoS 1) to `filters` and keeps what arrives. The
 * listener is attached before SUBSCRIBE, so no retained message is missed.
 */
export async function openInbox(client: MqttClient, filters: string[], prefix: string, options: InboxOptions = {}): Promise<Inbox> {
  const { signal, ackTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS } = options;
  const messages: InboxMessage[] = [];
  const wakers = new Set<() => void>();
  const onMessage = (topic: string, payload: Buffer, packet: { retain: boolean }): void => {
    const parsed = parseTopic(topic, prefix);
    if (!parsed || !filters.some((f) => topicMatches(f, topic))) return;
    const result = payload.length === 0 ? null : parseJson(payload);
    messages.push({
      topic,
      parsed,
      retain: packet.retain,
      json: result?.ok ? result.value : undefined,
      error: result && !result.ok ? result.error : null,
    });
    for (const wake of wakers) wake();
  };
  client.on('message', onMessage);
  try {
    await acknowledged(client.subscribeAsync(filters, { qos: 1 }), ackTimeoutMs, 'SUBSCRIBE', filters.join(', '));
  } catch (err) {
    client.off('message', onMessage);
    throw err;
  }

  const interrupted = (): OperationAbortedError =>
    new OperationAbortedError(`waiting for messages on ${filters.join(', ')}`, { cause: signal?.reason });

  /** Runs `setup` (it arms its timers and a waker run on every message) until it calls `done`; rejects on abort. */
  const wait = <T>(setup: (done: (value: T) => void, wake: (fn: () => void) => void) => () => void): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(interrupted());
      let waker: (() => void) | undefined;
      let teardown: () => void = () => {};
      const finish = (): void => {
        teardown();
        if (waker) wakers.delete(waker);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        finish();
        reject(interrupted());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      teardown = setup(
        (value) => {
          finish();
          resolve(value);
        },
        (fn) => {
          waker = fn;
          wakers.add(fn);
        },
      );
    });

  let closing: Promise<void> | undefined;
  return {
    messages,
    waitFor: <T>(check: () => T | undefined, timeoutMs: number) =>
      wait<T | undefined>((done, wake) => {
        const first = check();
        if (first !== undefined) {
          done(first);
          return () => {};
        }
        const timer = setTimeout(() => done(undefined), timeoutMs);
        wake(() => {
          const value = check();
          if (value !== undefined) done(value);
        });
        return () => clearTimeout(timer);
      }),
    settle: ({ quietMs, maxMs, complete }) =>
      wait<void>((done, wake) => {
        if (complete?.()) {
          done();
          return () => {};
        }
        const hard = setTimeout(() => done(), maxMs);
        let quiet = setTimeout(() => done(), quietMs);
        wake(() => {
          clearTimeout(quiet);
          if (complete?.()) done();
          else quiet = setTimeout(() => done(), quietMs);
        });
        return () => {
          clearTimeout(hard);
          clearTimeout(quiet);
        };
      }),
    close: () => {
      closing ??= (async () => {
        client.off('message', onMessage);
        wakers.clear();
        // A client that is gone has no subscription left to undo.
        if (client.connected) {
          await acknowledged(client.unsubscribeAsync(filters), ackTimeoutMs, 'UNSUBSCRIBE', filters.join(', ')).catch(() => undefined);
        }
      })();
      return closing;
    },
  };
}
