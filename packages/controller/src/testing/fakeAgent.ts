/**
 * Test support (not built, not exported): a stand-in for fso-agent that
 * speaks the config/status protocol with a real MQTT.js client, so the
 * controller is tested against a real broker without the agent package.
 * The real agent is tested end to end in tests/.
 */
import { ConfigValidationError, FSO_VERSION, createTopics, isoNow, parseAgentConfig, parseJson } from '@fso/common';
import type { AgentConfig, AgentStatus } from '@fso/common';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';

/** What the fake agent answers to a config: null applies it, a string rejects it with that reason. */
export type Answer = (config: AgentConfig) => string | null;

export interface FakeAgentOptions {
  url: string;
  agentId: string;
  prefix?: string;
  /** Default: apply, unless the revision is lower than the one in force (like the real agent). */
  answer?: Answer;
  /** Never answer a config (for time-out tests). */
  silent?: boolean;
  /** The `config` part of the first status (e.g. a stale answer to test the controller ignores it). */
  initialConfig?: AgentStatus['config'];
}

export interface FakeAgent {
  readonly client: MqttClient;
  /** Every config the agent received, in order, with the topic it came on. */
  readonly received: { topic: string; config: AgentConfig }[];
  /** Publishes an offline status (as the last will would) and disconnects. */
  goOffline(): Promise<void>;
  close(): Promise<void>;
}

/** Connects a fake agent, publishes its online status and subscribes to its config topics. */
export async function startFakeAgent(options: FakeAgentOptions): Promise<FakeAgent> {
  const topics = createTopics(options.prefix);
  const { agentId } = options;
  let config: AgentStatus['config'] = options.initialConfig ?? { revision: null, state: 'none', error: null, source: 'cli', appliedRevision: null };
  const status = (state: AgentStatus['state']): AgentStatus => ({
    schema: 'fso.status/1',
    agentId,
    state,
    hostname: `${agentId}.test`,
    version: FSO_VERSION,
    epoch: 'e1',
    lastSeq: 0,
    config,
    watching: [],
    at: isoNow(),
  });
  const client = mqtt.connect(options.url, {
    protocolVersion: 4,
    reconnectPeriod: 0,
    will: { topic: topics.status(agentId), payload: Buffer.from(JSON.stringify(status('offline'))), qos: 1, retain: true },
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const publishStatus = (state: AgentStatus['state']): Promise<unknown> =>
    client.publishAsync(topics.status(agentId), JSON.stringify(status(state)), { qos: 1, retain: true });
  await publishStatus('online');

  const received: FakeAgent['received'] = [];
  let hasOwn = false;
  client.on('message', (topic, payload) => {
    const own = topic === topics.config(agentId);
    // An empty payload clears the retained config: the default applies again from the next offer.
    if (payload.length === 0) {
      if (own) hasOwn = false;
      return;
    }
    const json = parseJson(payload);
    if (!json.ok) return;
    if (!own && hasOwn) return; // its own config wins over the default
    hasOwn ||= own;
    let next: AgentConfig;
    try {
      next = parseAgentConfig(json.value, topic);
    } catch (err) {
      if (err instanceof ConfigValidationError) return;
      throw err;
    }
    received.push({ topic, config: next });
    if (options.silent) return;
    const inForce = config.appliedRevision ?? null;
    const reason =
      inForce !== null && next.revision < inForce
        ? `revision ${next.revision} is lower than revision ${inForce} in force`
        : (options.answer?.(next) ?? null);
    config = {
      revision: next.revision,
      state: reason === null ? 'applied' : 'rejected',
      error: reason,
      source: reason === null ? (own ? 'agent' : 'default') : config.source,
      appliedRevision: reason === null ? next.revision : inForce,
    };
    void publishStatus('online');
  });
  await client.subscribeAsync([topics.config(agentId), topics.defaultConfig()], { qos: 1 });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= client.endAsync());
  return {
    client,
    received,
    goOffline: async () => {
      await publishStatus('offline');
      await close();
    },
    close,
  };
}
