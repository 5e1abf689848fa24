import { BrokerConnectError, createMqttClient } from '@fso/common';
import type { MqttClient } from 'mqtt';

/** Options of {@link connectSubscriber}. */
export interface SubscriberOptions {
  url: string;
  clientId: string;
  username?: string;
  passwordFile?: string;
  connectTimeoutMs?: number;
  /** Receives every message, from the very first packet after CONNACK. */
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
}

/**
 * Connects a persistent-session (clean: false) MQTT 3.1.1 client with its
 * message handler attached before the connection starts, and resolves once
 * connected (or rejects with {@link BrokerConnectError} on time-out or a
 * refused CONNACK).
 *
 * Why not common's `connectMqtt`: with a resumed session the broker sends the
 * queued QoS 1 messages right behind CONNACK, and MQTT.js handles the packets
 * of one socket read on `process.nextTick`, before `await connectMqtt()`
 * resumes (promise continuations run after the nextTick queue). A handler
 * attached after the await misses them, and MQTT.js PUBACKs them anyway.
 */
export async function connectSubscriber(options: SubscriberOptions): Promise<MqttClient> {
  const client = createMqttClient({
    url: options.url,
    clientId: options.clientId,
    username: options.username,
    passwordFile: options.passwordFile,
    // Keep the subscription and its QoS 1 queue while the recorder is down.
    clean: false,
    connectTimeoutMs: options.connectTimeoutMs,
  });
  client.on('message', (topic, payload, packet) => options.onMessage(topic, payload, packet.retain));
  await waitForConnect(client, options.url, options.connectTimeoutMs ?? 10_000);
  return client;
}

/** Resolves on the first CONNACK; a refused one or a time-out ends the client. (Could move to common beside connectMqtt.) */
function waitForConnect(client: MqttClient, url: string, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let lastError = 'no answer';
    const settle = (error?: BrokerConnectError): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      if (!error) return resolve();
      client.end(true);
      reject(error);
    };
    const timer = setTimeout(() => settle(new BrokerConnectError(url, `${lastError} after ${timeoutMs} ms`)), timeoutMs);
    const onConnect = (): void => settle();
    const onError = (err: Error): void => {
      lastError = err.message;
      // A refused CONNACK (bad credentials, not authorized) will not get better by retrying.
      if ('code' in err && typeof err.code === 'number' && err.code !== 0) settle(new BrokerConnectError(url, err.message, { cause: err }));
    };
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}
