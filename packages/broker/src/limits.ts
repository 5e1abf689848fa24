/** The broker's resource limits, their defaults and their checks. */
import { MAX_PAYLOAD_BYTES } from '@fso/common';

/** What one client or all of them together may cost the broker. */
export interface BrokerLimits {
  /**
   * Largest MQTT packet (its remaining length: variable header + payload),
   * checked at the fixed header before anything is buffered.
   */
  maxPacketBytes: number;
  /** Largest CONNECT packet (client id, credentials, last will), the only packet before login. */
  maxConnectBytes: number;
  /** Most `/`-separated levels in a topic or filter (aedes caps it at 100). */
  maxTopicLevels: number;
  /** A connection that has not sent CONNECT (or finished its TLS handshake or WebSocket upgrade) by then is closed. */
  connectTimeoutMs: number;
  /** Open connections across all listeners; more are closed at accept. */
  maxConnections: number;
  /**
   * PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets per second per connection
   * (burst of one second); 0 for no limit.
   */
  maxPublishRate: number;
  /**
   * Subscriptions one client may hold; a SUBSCRIBE or UNSUBSCRIBE carrying
   * more topic filters than this closes the connection at the packet guard,
   * before aedes does any per-filter work.
   */
  maxSubscriptions: number;
  /**
   * Client ids one login may own (ids used with a persistent session,
   * `clean: false`); a login asking for one more is refused (CONNACK 2).
   */
  maxClientIdsPerLogin: number;
  /**
   * QoS 1/2 messages sent to one persistent session and not yet acknowledged;
   * further ones wait in its queue (deliveryWindow.ts). Below the 65,535
   * packet ids, so none is reused while in flight (MQTT-2.3.1-2). 0: the
   * mode's default, {@link CLUSTER_MAX_INFLIGHT} on a cluster node and no
   * window on one broker (its PUBACKs are cleared in microseconds, and the
   * window's bookkeeping cost it a quarter of its pace in the fleet benchmark).
   */
  maxInflight: number;
}

/** The MQTT ceiling for a remaining length (four 7-bit bytes, MQTT-2.2.3). */
export const MQTT_MAX_REMAINING_LENGTH = 268_435_455;

/**
 * The defaults. 16 MiB + 64 KiB per packet: the largest payload any FSO
 * receiver parses (common's MAX_PAYLOAD_BYTES, room for a 4 MiB diff patch
 * even at JSON's worst escaping) plus the largest topic.
 */
export const DEFAULT_LIMITS: Readonly<BrokerLimits> = {
  maxPacketBytes: MAX_PAYLOAD_BYTES + 64 * 1024,
  maxConnectBytes: 64 * 1024,
  maxTopicLevels: 16,
  connectTimeoutMs: 10_000,
  // A fleet: 1,000 agents plus recorder, alerter, consoles and controllers must fit with room to grow (issue 15).
  maxConnections: 10_000,
  // An agent reports a burst (a checkout, an rm -r, a restore) at several thousand
  // events a second; 2,000 halved its end-to-end throughput (docs/benchmarks.md).
  maxPublishRate: 20_000,
  maxSubscriptions: 64,
  maxClientIdsPerLogin: 100,
  maxInflight: 0,
};

/**
 * A cluster node's window: half the packet ids. A window caps a session's throughput at window ÷ PUBACK
 * round trip, and a cluster node's PUBACK took seconds under load (docs/scaling.md: 2,000 carried 1,587/s
 * where no window carried 3,761/s): the window is there to keep packet ids unique, not to pace.
 */
export const CLUSTER_MAX_INFLIGHT = 32_768;

function check(name: keyof BrokerLimits, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`invalid ${name} ${String(value)}: use an integer from ${min} to ${max}`);
  }
}

/**
 * `partial` over {@link DEFAULT_LIMITS}, checked. `maxTopicLevels` must leave
 * room for the deepest FSO topic under `prefix` (`P/agents/ID/events/TYPE`).
 *
 * @throws {RangeError} naming the limit that is out of range.
 */
export function resolveLimits(partial: Partial<BrokerLimits> = {}, prefix: string): BrokerLimits {
  const limits = { ...DEFAULT_LIMITS, ...partial };
  check('maxPacketBytes', limits.maxPacketBytes, 1024, MQTT_MAX_REMAINING_LENGTH);
  check('maxConnectBytes', limits.maxConnectBytes, 64, MQTT_MAX_REMAINING_LENGTH);
  check('maxTopicLevels', limits.maxTopicLevels, prefix.split('/').length + 4, 100);
  check('connectTimeoutMs', limits.connectTimeoutMs, 1, 3_600_000);
  check('maxConnections', limits.maxConnections, 1, 1_000_000);
  check('maxPublishRate', limits.maxPublishRate, 0, 10_000_000);
  check('maxSubscriptions', limits.maxSubscriptions, 1, 100_000);
  check('maxClientIdsPerLogin', limits.maxClientIdsPerLogin, 1, 1_000_000);
  // Half the packet id space: room for a few acknowledgements that come out of order.
  check('maxInflight', limits.maxInflight, 0, 32_768);
  return limits;
}
