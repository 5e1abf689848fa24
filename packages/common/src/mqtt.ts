import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { BrokerConnectError } from './errors.js';

/** Default broker URL when neither a flag nor `FSO_BROKER_URL` gives one. */
export const DEFAULT_BROKER_URL = 'mqtt://127.0.0.1:1883';

/** The broker URL: the flag, else `FSO_BROKER_URL`, else {@link DEFAULT_BROKER_URL}. */
export function resolveBrokerUrl(flag?: string): string {
  return flag ?? process.env.FSO_BROKER_URL ?? DEFAULT_BROKER_URL;
}

/** Options of {@link connectMqtt}. */
export interface ConnectOptions {
  /**
   * The broker URL, or several separated by commas (`mqtt://node-a:1883,mqtt://node-b:1883`,
   * the nodes of a cluster): each reconnect tries the next one.
   */
  url: string;
  clientId?: string;
  username?: string;
  /** A file holding the password; re-read on every reconnect so a rotated secret is picked up. */
  passwordFile?: string;
  password?: string;
  /** MQTT clean session; false keeps QoS 1 subscriptions queued while offline. */
  clean?: boolean;
  will?: IClientOptions['will'];
  /** How long the first connection may take before {@link BrokerConnectError}; default 10 s. */
  connectTimeoutMs?: number;
  /** Reconnect period; default 1 s. */
  reconnectPeriodMs?: number;
  /** Let MQTT.js resubscribe after a reconnect; default true. */
  resubscribe?: boolean;
  /** PEM file of the CA that signed the broker's certificate (mqtts://, wss://); default `FSO_CA_FILE`. */
  caFile?: string;
}

/**
 * Creates an MQTT.js client (MQTT 3.1.1, so any broker works) without
 * waiting for the connection: for daemons that must keep working while the
 * broker is away. The client reconnects by itself.
 */
export function createMqttClient(options: ConnectOptions): MqttClient {
  const password = (): string | undefined =>
    options.passwordFile ? readFileSync(options.passwordFile, 'utf8').trim() : (options.password ?? process.env.FSO_PASSWORD);
  const caFile = options.caFile ?? process.env.FSO_CA_FILE;
  const urls = options.url.split(',').map((u) => u.trim()).filter((u) => u !== '');
  const client = mqtt.connect(urls[0] ?? options.url, {
    ...(urls.length > 1 ? { servers: urls.map(serverOf) } : {}),
    protocolVersion: 4,
    ...(caFile ? { ca: readFileSync(caFile) } : {}),
    rejectUnauthorized: true,
    clientId: options.clientId,
    username: options.username ?? process.env.FSO_USERNAME,
    password: password(),
    clean: options.clean ?? true,
    will: options.will,
    reconnectPeriod: options.reconnectPeriodMs ?? 1000,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    resubscribe: options.resubscribe ?? true,
  });
  if (options.passwordFile) {
    // Re-read before each reconnect so a rotated token needs no restart.
    client.on('reconnect', () => {
      try {
        client.options.password = password();
      } catch {
        // Keep the previous password; the connect error will say why it fails.
      }
    });
  }
  return client;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 };

/** One URL of a broker list as MQTT.js's `servers` entry. */
function serverOf(url: string): { host: string; port: number; protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' } {
  const parsed = new URL(url);
  const protocol = parsed.protocol.replace(/:$/, '');
  if (!(protocol in DEFAULT_PORTS)) throw new TypeError(`invalid broker URL ${JSON.stringify(url)}: use mqtt://, mqtts://, ws:// or wss://`);
  return { host: parsed.hostname, port: parsed.port === '' ? (DEFAULT_PORTS[protocol] ?? 1883) : Number(parsed.port), protocol: protocol as 'mqtt' };
}

/**
 * Connects an MQTT.js client and resolves once connected; the client
 * reconnects by itself afterwards.
 *
 * @example
 * const client = await connectMqtt({ url: resolveBrokerUrl(), clientId: 'fso-controller-1' });
 */
export async function connectMqtt(options: ConnectOptions): Promise<MqttClient> {
  const client = createMqttClient(options);
  await waitForConnect(client, options.url, options.connectTimeoutMs ?? 10_000);
  return client;
}

/**
 * Resolves on the first CONNACK; a refused CONNACK or a time-out ends the
 * client and rejects with {@link BrokerConnectError}. Attach message
 * handlers before awaiting it: a resumed session's queued messages arrive
 * right behind the CONNACK.
 */
export function waitForConnect(client: MqttClient, url: string, timeoutMs: number): Promise<void> {
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

/** Ends a client, waiting for in-flight packets; safe on an already ended client. */
export async function endMqtt(client: MqttClient, force = false): Promise<void> {
  if (client.disconnected && client.disconnecting) return;
  await new Promise<void>((resolve) => client.end(force, {}, () => resolve()));
}

/**
 * The SUBACK's return codes for `filters` (0x80 for a refused one,
 * MQTT-3.9.3). MQTT.js rejects the whole subscribe when any code is 0x80;
 * the codes are then on its error's packet.
 */
export async function subscribeCodes(client: MqttClient, filters: string | string[], qos: 0 | 1 = 1): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos })).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted;
  }
}
