// Test support for this package's tests (kept out of the build by tsconfig.json).
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';

/** A message as a test client saw it, payload as UTF-8. */
export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

/** Real MQTT.js clients (MQTT 3.1.1, no reconnect) that a test ends in `afterEach`. */
export interface TestClients {
  /** Connects and resolves once the CONNACK arrived. */
  connect(url: string, options?: IClientOptions): Promise<MqttClient>;
  /** Starts connecting and returns at once, so `received()` sees what comes right after CONNACK. */
  connectLater(url: string, options?: IClientOptions): MqttClient;
  endAll(): Promise<void>;
}

export function createTestClients(): TestClients {
  const clients: MqttClient[] = [];
  const base: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0 };
  return {
    connect: async (url, options = {}) => {
      const client = await mqtt.connectAsync(url, { ...base, ...options });
      clients.push(client);
      return client;
    },
    connectLater: (url, options = {}) => {
      const client = mqtt.connect(url, { ...base, ...options });
      clients.push(client);
      return client;
    },
    endAll: async () => {
      await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    },
  };
}

/** Every message `client` receives from now on. */
export function received(client: MqttClient): Received[] {
  const messages: Received[] = [];
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload: payload.toString('utf8'), qos: packet.qos, retain: packet.retain });
  });
  return messages;
}

export { subscribeCodes } from '@fso/common';

/** The CONNACK return code of a refused login; throws when the login is accepted. */
export async function loginRefusal(url: string, options: IClientOptions): Promise<number> {
  try {
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
    await client.endAsync(true);
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
  throw new Error(`login ${options.clientId ?? ''} was accepted`);
}
