// The browser's own MQTT connection: the agents' statuses (the fleet), their
// events, diffs and gaps (the live stream) and the retained configs, as far
// as the broker's ACL lets this login read them.
import mqtt from '/vendor/mqtt.js';
import type { MqttClient } from '/vendor/mqtt.js';
import { createWebTopics } from './topics.js';
import type { WebTopics } from './topics.js';
import type { Access, AgentConfig, AgentStatus, Credentials, FsoDiff, FsoEvent, FsoGap, Info } from './types.js';

/** The key of the default config in {@link Live.configs} (an agent id never has parentheses). */
export const DEFAULT_TARGET = '(default)';

/** The connection's state, as the header shows it. */
export type LinkState = 'connecting' | 'online' | 'offline';

/** What a {@link Live} reports, by kind. */
export interface LiveListeners {
  status: (status: AgentStatus) => void;
  event: (event: FsoEvent) => void;
  diff: (diff: FsoDiff) => void;
  gap: (gap: FsoGap) => void;
  /** A retained config (null: cleared) of an agent, or of {@link DEFAULT_TARGET}. */
  config: (target: string, config: AgentConfig | null) => void;
  link: (state: LinkState, reason?: string) => void;
}

/** The live connection and what it has learnt so far. */
export interface Live {
  readonly topics: WebTopics;
  /** The newest status of each agent (retained first, then live). */
  readonly statuses: ReadonlyMap<string, AgentStatus>;
  /** The configs retained on the config topics (controllers only). */
  readonly configs: ReadonlyMap<string, AgentConfig | null>;
  readonly link: LinkState;
  /** Adds a listener; returns its removal. */
  on<K extends keyof LiveListeners>(kind: K, listener: LiveListeners[K]): () => void;
  close(): void;
}

/** A random client id: clean sessions, so the broker binds none of them to the login. */
export function clientId(purpose: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `fso-console-${purpose}-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Connects to the broker over WebSocket as the logged-in user and subscribes
 * to what `access` says the broker grants; reconnects by itself.
 *
 * @example
 * const live = connectLive(info, { username, password }, session.access);
 * live.on('status', (s) => render(s));
 */
export function connectLive(info: Info, creds: Credentials, access: Access): Live {
  const topics = createWebTopics(info.topicPrefix);
  const listeners: { [K in keyof LiveListeners]: Set<LiveListeners[K]> } = {
    status: new Set(), event: new Set(), diff: new Set(), gap: new Set(), config: new Set(), link: new Set(),
  };
  const statuses = new Map<string, AgentStatus>();
  const configs = new Map<string, AgentConfig | null>();
  let link: LinkState = 'connecting';
  const setLink = (state: LinkState, reason?: string): void => {
    link = state;
    for (const l of listeners.link) l(state, reason);
  };
  const decoder = new TextDecoder();

  const client: MqttClient = mqtt.connect(info.wsUrl, {
    username: creds.username, password: creds.password, clientId: clientId('live'),
    clean: true, protocolVersion: 4, reconnectPeriod: 2_000, connectTimeout: 10_000,
  });
  const filters = [
    ...(access.fleet ? [topics.allStatus()] : []),
    ...(access.trail ? topics.trail() : []),
    ...(access.configs ? topics.configs() : []),
  ];
  client.on('connect', () => {
    // One SUBSCRIBE per filter: a refused one (0x80) must not fail the others.
    // "online" once every SUBACK is in: from then on nothing published is missed.
    let waiting = filters.length;
    if (waiting === 0) setLink('online');
    for (const filter of filters) {
      client.subscribe([filter], { qos: 0 }, () => {
        waiting -= 1;
        if (waiting === 0) setLink('online');
      });
    }
  });
  client.on('reconnect', () => setLink('connecting'));
  client.on('offline', () => setLink('offline'));
  client.on('error', (err) => setLink('offline', err.message));
  client.on('message', (topic, payload) => {
    const kind = topics.parse(topic);
    if (!kind) return;
    const text = decoder.decode(payload);
    let json: unknown = null;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        return; // Not JSON: the recorder writes it as rejected; nothing to show live.
      }
    }
    if (kind.kind === 'config' || kind.kind === 'defaultConfig') {
      const target = kind.kind === 'config' ? kind.agentId : DEFAULT_TARGET;
      const config = json as AgentConfig | null;
      configs.set(target, config);
      for (const l of listeners.config) l(target, config);
      return;
    }
    if (json === null || typeof json !== 'object' || (json as { agentId?: unknown }).agentId !== kind.agentId) return;
    switch (kind.kind) {
      case 'status': {
        const status = json as AgentStatus;
        statuses.set(kind.agentId, status);
        for (const l of listeners.status) l(status);
        break;
      }
      case 'event':
        for (const l of listeners.event) l(json as FsoEvent);
        break;
      case 'diff':
        for (const l of listeners.diff) l(json as FsoDiff);
        break;
      case 'gap':
        for (const l of listeners.gap) l(json as FsoGap);
        break;
    }
  });

  return {
    topics,
    statuses,
    configs,
    get link() {
      return link;
    },
    on(kind, listener) {
      const set = listeners[kind] as Set<typeof listener>;
      set.add(listener);
      return () => set.delete(listener);
    },
    close() {
      client.end(true);
    },
  };
}
