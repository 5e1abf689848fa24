import { readFileSync } from 'node:fs';
import { BrokerConnectError } from '@fso/common';
import mqtt from 'mqtt';
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
 * message handler attached before the connection starts.
 *
 * Why not common's `connectMqtt`: with a resumed session the broker sends the
 * queued QoS 1 messages right behind CONNACK, and MQTT.js handles packets of
 * one socket read on `process.nextTick`, before `await connectMqtt()` resumes
 * (promise continuations run after the nextTick queue). A handler attached
 * after the await misses them, and MQTT.js PUBACKs them anyway: those
 * messages would be lost. Move this into common once `connectMqtt` takes an
 * `onMessage` (or `setup(client)`) option.
 */
export async function connectSubscriber(options: SubscriberOptions): Promise<MqttClient> {
  const password = (): string | undefined =>
    options.passwordFile ? readFileSync(options.passwordFile, 'utf8').trim() : process.env.FSO_PASSWORD;
  const client = mqtt.connect(options.url, {
    protocolVersion: 4,
    clientId: options.clientId,
    username: options.username ?? process.env.FSO_USERNAME,
    password: password(),
    // Keep the subscription and its QoS 1 queue while the recorder is down.
    clean: false,
    reconnectPeriod: 1000,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    resubscribe: true,
  });
  client.on('message', (topic, payload, packet) => options.onMessage(topic, payload, packet.retain));
  if (options.passwordFile) {
    client.on('reconnect', () => {
      try {
        client.options.password = password();
      } catch {
        // Keep the previous password; the connect error will say why it fails.
      }
    });
  }
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  await new Promise<void>((resolve, reject) => {
    let lastError = 'no answer';
    const fail = (error: BrokerConnectError): void => {
      cleanup();
      client.end(true);
      reject(error);
    };
    const timer = setTimeout(() => fail(new BrokerConnectError(options.url, `${lastError} after ${timeoutMs} ms`)), timeoutMs);
    const onConnect = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      lastError = err.message;
      // A refused CONNACK (bad credentials, not authorized) will not get better by retrying.
      if ('code' in err && typeof err.code === 'number' && err.code !== 0) fail(new BrokerConnectError(options.url, err.message, { cause: err }));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
    };
    client.on('connect', onConnect);
    client.on('error', onError);
  });
  return client;
}
