/**
 * Who may publish and subscribe to what, by role (issue 4, item 2). Topics
 * come from common's builders and parser only; a topic that does not parse as
 * an FSO topic is nobody's to publish.
 */
import { parseTopic } from '@fso/common';
import type { FsoRole, Topics } from '@fso/common';

/** Who a connected client is, once authenticated. */
export interface Identity {
  /** The auth file username, or the token's `sub` (`token:<role>` without one). */
  readonly username: string;
  readonly role: FsoRole;
  /** The agent it speaks for (role `agent` only). */
  readonly agentId?: string;
  /** How it logged in. */
  readonly via: 'password' | 'token';
  /** When its token expires (ms since the epoch); the broker disconnects it then. */
  readonly expiresAt?: number;
}

/** What one identity may do. */
export interface Permissions {
  /** May it publish to this (wildcard-free) topic? */
  mayPublish(topic: string): boolean;
  /** Is every topic this filter can match one it may read? */
  maySubscribe(filter: string): boolean;
  /** May it receive a message on this topic (checked again on every delivery)? */
  mayReceive(topic: string): boolean;
  /** The filters it may subscribe to (or narrow), for messages and docs. */
  readonly readable: readonly string[];
}

/**
 * True when every topic matched by `filter` is matched by `allowed`, both
 * MQTT topic filters. A topic name is a filter without wildcards, so this is
 * also "does `allowed` match this topic". `#` also matches its parent level
 * (MQTT-4.7.1-2), so `fso/#` covers `fso`.
 */
export function filterCovers(allowed: string, filter: string): boolean {
  const a = allowed.split('/');
  const f = filter.split('/');
  for (let i = 0; i < a.length; i++) {
    const level = a[i];
    if (level === '#') return true;
    const wanted = f[i];
    if (wanted === undefined) return false;
    if (level === '+') {
      if (wanted === '#') return false;
      continue;
    }
    if (wanted !== level) return false;
  }
  return f.length === a.length;
}

/** The filters each role may subscribe to. */
function readableFilters(identity: Identity, topics: Topics): string[] {
  switch (identity.role) {
    case 'agent': {
      const id = identity.agentId ?? '';
      return [topics.config(id), topics.ack(id), topics.defaultConfig()];
    }
    case 'controller':
      return [topics.allStatus(), topics.allConfigs(), topics.defaultConfig(), topics.allAlerts()];
    case 'recorder':
      return [topics.all()];
    case 'viewer':
      // `+` as the agent id: the builders spell the levels, the wildcard stands for the id.
      return [topics.allEvents(), topics.diffs('+'), topics.gaps('+'), topics.allStatus(), topics.allAlerts()];
    case 'alerter':
      // What the rules read (issue 14): the events, diffs, watch gaps and statuses, and its own alerts.
      return [topics.allEvents(), topics.diffs('+'), topics.gaps('+'), topics.allStatus(), topics.allAlerts()];
  }
}

/**
 * The permissions of `identity` under `topics`' prefix:
 *
 * | role | publish | subscribe |
 * |---|---|---|
 * | agent ID | `P/agents/ID/events/{type}`, `P/agents/ID/diffs`, `P/agents/ID/gaps`, `P/agents/ID/status` | `P/agents/ID/config`, `P/agents/ID/ack`, `P/config/default` |
 * | controller | `P/agents/+/config`, `P/config/default` | `P/agents/+/status`, `P/agents/+/config`, `P/config/default`, `P/alerts/+` |
 * | recorder | `P/agents/+/ack` | `P/#` |
 * | viewer | nothing | `P/agents/+/events/#`, `P/agents/+/diffs`, `P/agents/+/gaps`, `P/agents/+/status`, `P/alerts/+` |
 * | alerter | `P/alerts/{ruleId}` | as viewer |
 *
 * A subscription must fit inside one of these filters (narrowing is fine:
 * a viewer may subscribe to `P/agents/web-01/events/modify`).
 */
export function permissionsOf(identity: Identity, topics: Topics): Permissions {
  const readable = readableFilters(identity, topics);
  const matchesReadable = (filter: string): boolean => readable.some((allowed) => filterCovers(allowed, filter));
  return {
    readable,
    maySubscribe: matchesReadable,
    mayReceive: matchesReadable,
    mayPublish: (topic) => {
      const parsed = parseTopic(topic, topics.prefix);
      if (!parsed) return false;
      switch (identity.role) {
        case 'agent':
          return (parsed.kind === 'event' || parsed.kind === 'diff' || parsed.kind === 'gap' || parsed.kind === 'status') && parsed.agentId === identity.agentId;
        case 'controller':
          return parsed.kind === 'config' || parsed.kind === 'defaultConfig';
        case 'recorder':
          return parsed.kind === 'ack';
        case 'viewer':
          return false;
        case 'alerter':
          return parsed.kind === 'alert';
      }
    },
  };
}
