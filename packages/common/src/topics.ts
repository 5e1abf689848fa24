import type { EventType } from './schemas.js';
import { RULE_ID_PATTERN } from './alerts.js';
import { AGENT_ID_PATTERN, EVENT_TYPES } from './schemas.js';

/** The default topic prefix (`--topic-prefix`). */
export const DEFAULT_TOPIC_PREFIX = 'fso';

/** Topic builders for one prefix; the only place topic strings are spelled. */
export interface Topics {
  readonly prefix: string;
  event(agentId: string, type: EventType): string;
  diffs(agentId: string): string;
  /** An agent's `fso.gap/1` announcements (its watcher may have missed changes). */
  gaps(agentId: string): string;
  status(agentId: string): string;
  config(agentId: string): string;
  ack(agentId: string): string;
  defaultConfig(): string;
  /** One rule's alerts (`fso.alert/1`), published by `fso-alert`. */
  alerts(ruleId: string): string;
  /** Every rule's alerts. */
  allAlerts(): string;
  /** Everything under the prefix: what the recorder subscribes to. */
  all(): string;
  /** Every agent's status: what the controller's `agents` reads. */
  allStatus(): string;
  /** Every agent's config (retained): what `agents` reads beside status. */
  allConfigs(): string;
  /** Every agent's events, for `mosquitto_sub` style followers. */
  allEvents(): string;
}

/** Builds the topics under `prefix`. @example createTopics().event('web-01', 'modify') // 'fso/agents/web-01/events/modify' */
export function createTopics(prefix: string = DEFAULT_TOPIC_PREFIX): Topics {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix)) {
    throw new TypeError(`invalid topic prefix ${JSON.stringify(prefix)}: use letters, digits, '.', '_', '-' and '/'`);
  }
  const agent = (id: string): string => `${prefix}/agents/${id}`;
  return {
    prefix,
    event: (id, type) => `${agent(id)}/events/${type}`,
    diffs: (id) => `${agent(id)}/diffs`,
    gaps: (id) => `${agent(id)}/gaps`,
    status: (id) => `${agent(id)}/status`,
    config: (id) => `${agent(id)}/config`,
    ack: (id) => `${agent(id)}/ack`,
    defaultConfig: () => `${prefix}/config/default`,
    alerts: (ruleId) => `${prefix}/alerts/${ruleId}`,
    allAlerts: () => `${prefix}/alerts/+`,
    all: () => `${prefix}/#`,
    allStatus: () => `${prefix}/agents/+/status`,
    allConfigs: () => `${prefix}/agents/+/config`,
    allEvents: () => `${prefix}/agents/+/events/#`,
  };
}

/** What a topic under the prefix means. */
export type ParsedTopic =
  | { kind: 'event'; agentId: string; eventType: EventType }
  | { kind: 'diff'; agentId: string }
  | { kind: 'gap'; agentId: string }
  | { kind: 'status'; agentId: string }
  | { kind: 'config'; agentId: string }
  | { kind: 'ack'; agentId: string }
  | { kind: 'defaultConfig' }
  | { kind: 'alert'; ruleId: string };

/**
 * Parses a topic under `prefix`; null for anything else (including a
 * malformed agent id or event type, which a receiver must treat as rejected).
 */
export function parseTopic(topic: string, prefix: string = DEFAULT_TOPIC_PREFIX): ParsedTopic | null {
  if (!topic.startsWith(`${prefix}/`)) return null;
  const parts = topic.slice(prefix.length + 1).split('/');
  if (parts.length === 2 && parts[0] === 'config' && parts[1] === 'default') return { kind: 'defaultConfig' };
  if (parts.length === 2 && parts[0] === 'alerts') {
    const ruleId = parts[1] ?? '';
    return RULE_ID_PATTERN.test(ruleId) ? { kind: 'alert', ruleId } : null;
  }
  if (parts[0] !== 'agents' || parts.length < 3) return null;
  const agentId = parts[1] ?? '';
  if (!AGENT_ID_PATTERN.test(agentId)) return null;
  if (parts.length === 4 && parts[2] === 'events') {
    const eventType = EVENT_TYPES.find((t) => t === parts[3]);
    return eventType ? { kind: 'event', agentId, eventType } : null;
  }
  if (parts.length !== 3) return null;
  switch (parts[2]) {
    case 'diffs':
      return { kind: 'diff', agentId };
    case 'gaps':
      return { kind: 'gap', agentId };
    case 'status':
      return { kind: 'status', agentId };
    case 'config':
      return { kind: 'config', agentId };
    case 'ack':
      return { kind: 'ack', agentId };
    default:
      return null;
  }
}
