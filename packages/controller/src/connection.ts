import { randomBytes } from 'node:crypto';
import { connectMqtt, createSilentLogger, createTopics, endMqtt, resolveBrokerUrl } from '@fso/common';
import type { Logger, Topics } from '@fso/common';
import type { MqttClient } from 'mqtt';
import { BrokerTimeoutError } from './errors.js';

/** How every controller operation reaches the broker. */
export interface ConnectionOptions {
  /** A connected client to use (left open afterwards); without one the operation connects and disconnects itself. */
  client?: MqttClient;
  /** Broker URL when no client is given; default `FSO_BROKER_URL`, else `mqtt://127.0.0.1:1883`. */
  brokerUrl?: string;
  /** Topic prefix; default `fso`. */
  topicPrefix?: string;
  /** How long connecting, and each SUBSCRIBE/PUBLISH acknowledgement, may take; default 5 s. */
  connectTimeoutMs?: number;
  /** Where warnings (malformed retained payloads) go; default silent. */
  logger?: Logger;
  /** Stops waiting (Ctrl-C); the operation then rejects with `OperationAbortedError`. */
  signal?: AbortSignal;
  /** MQTT username (default `FSO_USERNAME`). */
  username?: string;
  /** File holding the password or token (default `FSO_PASSWORD`). */
  passwordFile?: string;
  /** CA certificate (PEM file) for mqtts:// and wss:// (default `FSO_CA_FILE`). */
  caFile?: string;
}

/** Default of {@link ConnectionOptions.connectTimeoutMs}: a one-shot CLI should not hang on a dead broker. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** The inbox options that follow from connection options. */
export function inboxOptions(options: ConnectionOptions): { signal?: AbortSignal; ackTimeoutMs: number } {
  return { signal: options.signal, ackTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS };
}

/**
 * `promise`, or {@link BrokerTimeoutError} when it takes longer than
 * `timeoutMs`: MQTT.js queues packets while it reconnects, so without a
 * bound a broker that vanished after the connect would hang the command.
 */
export async function acknowledged<T>(promise: Promise<T>, timeoutMs: number, operation: string, topic: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BrokerTimeoutError(operation, topic, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `fn` with a connected client and the prefix's topics; a client this
 * function connected is ended afterwards, whatever `fn` does.
 */
export async function withConnection<T>(
  options: ConnectionOptions,
  fn: (client: MqttClient, topics: Topics, log: Logger) => Promise<T>,
): Promise<T> {
  const topics = createTopics(options.topicPrefix);
  const log = options.logger ?? createSilentLogger();
  if (options.client) return fn(options.client, topics, log);
  const client = await connectMqtt({
    url: resolveBrokerUrl(options.brokerUrl),
    clientId: `fso-controller-${randomBytes(6).toString('hex')}`,
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    username: options.username,
    passwordFile: options.passwordFile,
    caFile: options.caFile,
  });
  let failed = true;
  try {
    const result = await fn(client, topics, log);
    failed = false;
    return result;
  } finally {
    // A graceful end waits for in-flight packets, which a broker that is gone never acks:
    // after a failure, force it. After success every packet was acknowledged already.
    await endMqtt(client, failed);
  }
}
