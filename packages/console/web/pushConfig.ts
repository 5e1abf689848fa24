// Pushing a config from the browser, with the semantics of fso-controller
// push (packages/controller/src/pushConfig.ts): a one-shot MQTT connection
// of its own, QoS 1 retained; PUBACK = the broker took it; then the target
// agents' status for that revision says applied or rejected.
import mqtt from '/vendor/mqtt.js';
import type { MqttClient } from '/vendor/mqtt.js';
import { DEFAULT_TARGET, clientId } from './live.js';
import type { WebTopics } from './topics.js';
import type { AgentConfig, AgentStatus, Credentials, Info } from './types.js';

/** What became of a push, for one agent or for the whole push. */
export type PushOutcome =
  | { outcome: 'applied'; agentId: string }
  | { outcome: 'rejected'; agentId: string; reason: string }
  | { outcome: 'timeout'; agentId: string }
  /** The broker took the config and no online agent runs the default: it waits, retained, for those that start later. */
  | { outcome: 'retained' }
  /** The connection closed before PUBACK: the broker's ACL does not let this login publish there. */
  | { outcome: 'refused' }
  | { outcome: 'unreachable'; reason: string };

/** What {@link pushConfig} needs. */
export interface PushRequest {
  info: Info;
  topics: WebTopics;
  creds: Credentials;
  /** An agent id, or {@link DEFAULT_TARGET}. */
  target: string;
  config: AgentConfig;
  /** The agents to wait for (for the default: the online agents that run it). */
  waitFor: string[];
  /** Default 15 s. */
  timeoutMs?: number;
}

function connect(info: Info, creds: Credentials): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(info.wsUrl, {
      username: creds.username, password: creds.password, clientId: clientId('push'),
      clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000,
    });
    client.on('connect', () => resolve(client));
    client.on('error', (err) => reject(err));
    client.on('close', () => reject(new Error('the broker closed the connection')));
  });
}

/**
 * Publishes `config` retained on the target's config topic and waits for
 * the answer of every agent in `waitFor`.
 *
 * @example
 * const outcomes = await pushConfig({ info, topics, creds, target: 'web-01', config, waitFor: ['web-01'] });
 */
export async function pushConfig(request: PushRequest): Promise<PushOutcome[]> {
  const { topics, target, config, waitFor } = request;
  let client: MqttClient;
  try {
    client = await connect(request.info, request.creds);
  } catch (err) {
    return [{ outcome: 'unreachable', reason: (err as Error).message }];
  }
  try {
    const statusFilter = target === DEFAULT_TARGET ? topics.allStatus() : topics.status(target);
    // Subscribe before publishing, so a quick answer cannot slip past.
    await new Promise<void>((resolve) => client.subscribe([statusFilter], { qos: 0 }, () => resolve()));
    const answers = new Map<string, AgentStatus>();
    let publishing = false;
    let wake: () => void = () => undefined;
    client.on('message', (_topic, payload, packet) => {
      // A retained status is what the agent said before this push (MQTT-3.3.1-9 clears the flag on live ones).
      if (!publishing || packet.retain) return;
      let status: AgentStatus;
      try {
        status = JSON.parse(new TextDecoder().decode(payload)) as AgentStatus;
      } catch {
        return;
      }
      if (waitFor.includes(status.agentId) && !answers.has(status.agentId) && status.config?.revision === config.revision
        && (status.config.state === 'applied' || status.config.state === 'rejected')) {
        answers.set(status.agentId, status);
        wake();
      }
    });
    const topic = target === DEFAULT_TARGET ? topics.defaultConfig() : topics.config(target);
    publishing = true;
    const acked = await new Promise<boolean>((resolve) => {
      // A login that may not publish there is disconnected by the broker: no PUBACK ever comes.
      client.on('close', () => resolve(false));
      client.publish(topic, JSON.stringify(config), { qos: 1, retain: true }, (err) => resolve(!err));
    });
    if (!acked) return [{ outcome: 'refused' }];
    if (waitFor.length === 0) return [{ outcome: 'retained' }];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, request.timeoutMs ?? 15_000);
      wake = () => {
        if (waitFor.every((id) => answers.has(id))) {
          clearTimeout(timer);
          resolve();
        }
      };
      wake();
    });
    return waitFor.map((agentId): PushOutcome => {
      const status = answers.get(agentId);
      if (!status) return { outcome: 'timeout', agentId };
      if (status.config.state === 'applied') return { outcome: 'applied', agentId };
      return { outcome: 'rejected', agentId, reason: status.config.error ?? 'no reason given' };
    });
  } finally {
    client.end(true);
  }
}
