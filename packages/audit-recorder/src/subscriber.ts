import { createMqttClient, waitForConnect } from '@fso/common';
import type { MqttClient } from 'mqtt';

/** Options of {@link connectSubscriber}. */
export interface SubscriberOptions {
  url: string;
  clientId: string;
  username?: string;
  passwordFile?: string;
  caFile?: string;
  connectTimeoutMs?: number;
  /** Receives every message, from the very first packet after CONNACK. */
  onMessage: (topic: string, payload: Buffer, retained: boolean) => void;
}

/**
 * Connects a persistent-session (clean: false) MQTT 3.1.1 client with its
 * message handler attached before the connection starts, and resolves once
 * connected (or rejects with `BrokerConnectError` on time-out or a
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
    caFile: options.caFile,
    // Keep the subscription and its QoS 1 queue while the recorder is down.
    clean: false,
    connectTimeoutMs: options.connectTimeoutMs,
  });
  client.on('message', (topic, payload, packet) => options.onMessage(topic, payload, packet.retain));
  await waitForConnect(client, options.url, options.connectTimeoutMs ?? 10_000);
  return client;
}
