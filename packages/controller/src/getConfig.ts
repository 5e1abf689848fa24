import { assertAgentId } from '@fso/common';
import type { AgentStatus } from '@fso/common';
import type { ConnectionOptions } from './connection.js';
import { inboxOptions, withConnection } from './connection.js';
import { AgentNotFoundError } from './errors.js';
import type { InboxMessage } from './inbox.js';
import { openInbox } from './inbox.js';
import { RETAINED_SETTLE, latestStatuses } from './statuses.js';

/** Where an agent's config comes from, as its status reports it (see docs/protocol.md). */
export type ConfigSource = NonNullable<AgentStatus['config']['source']>;

/** Options of {@link getConfig}. */
export interface GetConfigOptions extends ConnectionOptions {
  agentId: string;
}

/** Result of {@link getConfig}. */
export interface ConfigInForce {
  agentId: string;
  /** The agent's retained status; null when it never reported one. */
  status: AgentStatus | null;
  /** The source the agent reports; without one, the topic the resolution rule picks. */
  source: ConfigSource | null;
  /** The retained topic `config` was read from; null when none holds the config in force. */
  topic: string | null;
  /** The retained config as published; null when there is none. */
  config: unknown;
  /** `config.revision`, when it has one. */
  revision: number | null;
  /** Why `config` may differ from what the agent runs (rejected revision, offline, no status). */
  notes: string[];
}

/**
 * The config in force for an agent: reads its retained status and the
 * retained configs on its own topic and the default topic. Its own config
 * when its status says source `agent`, else the default one; an agent that
 * never reported follows the resolution rule (own topic if retained, else
 * default). Throws {@link AgentNotFoundError} when nothing at all is known.
 *
 * @example
 * const { source, config } = await getConfig({ agentId: 'web-01' });
 */
export async function getConfig(options: GetConfigOptions): Promise<ConfigInForce> {
  const agentId = assertAgentId(options.agentId);
  return withConnection(options, async (client, topics, log) => {
    const statusTopic = topics.status(agentId);
    const ownTopic = topics.config(agentId);
    const defaultTopic = topics.defaultConfig();
    const inbox = await openInbox(client, [statusTopic, ownTopic, defaultTopic], topics.prefix, inboxOptions(options));
    try {
      // Each topic holds at most one retained message: stop as soon as all three came.
      const seen = (): Set<string> => new Set(inbox.messages.map((m) => m.topic));
      await inbox.settle({ ...RETAINED_SETTLE, complete: () => seen().size === 3 });
      const lastOn = (topic: string): InboxMessage | undefined => inbox.messages.filter((m) => m.topic === topic).at(-1);
      const own = lastOn(ownTopic)?.json;
      const fallback = lastOn(defaultTopic)?.json;
      const status = latestStatuses(inbox.messages, log).get(agentId) ?? null;
      const reported = status?.config.source ?? null;

      let source: ConfigSource | null = reported;
      let topic: string | null;
      if (reported === 'agent') topic = ownTopic;
      else if (reported) topic = defaultTopic;
      else topic = own !== undefined ? ownTopic : fallback !== undefined ? defaultTopic : null;
      if (!reported && topic) source = topic === ownTopic ? 'agent' : 'default';
      const config = topic === ownTopic ? own : topic === defaultTopic ? fallback : undefined;

      if (!status && config === undefined) throw new AgentNotFoundError(agentId, statusTopic);
      const revision = revisionOf(config);
      return {
        agentId,
        status,
        source,
        topic: config === undefined ? null : topic,
        config: config ?? null,
        revision,
        notes: explain(status, revision, topic, config !== undefined),
      };
    } finally {
      await inbox.close();
    }
  });
}

function revisionOf(config: unknown): number | null {
  if (typeof config !== 'object' || config === null || !('revision' in config)) return null;
  return typeof config.revision === 'number' ? config.revision : null;
}

/** The caveats a reader of `get` must see beside the config. */
function explain(status: AgentStatus | null, revision: number | null, topic: string | null, found: boolean): string[] {
  if (!status) return ['the agent has never reported a status: this is the config it would use'];
  const notes: string[] = [];
  if (status.state === 'offline') notes.push(`the agent is offline (last seen ${status.at})`);
  const { source, appliedRevision, state, error } = status.config;
  if (source === 'saved' || source === 'cli') {
    notes.push(`the agent reports source ${source}: it runs a config from its ${source === 'saved' ? 'state directory' : 'command line'}`);
  }
  if (!found && topic) notes.push(`no config is retained on ${topic}`);
  const inForce = appliedRevision ?? (state === 'applied' ? status.config.revision : null);
  if (found && inForce !== null && inForce !== revision) {
    const why = state === 'rejected' && status.config.revision === revision ? `: revision ${revision} was rejected (${error ?? 'no reason given'})` : '';
    notes.push(`the agent reports revision ${inForce} in force${why}`);
  }
  return notes;
}
