import type { AgentStatus, ConfigState } from '@fso/common';
import type { ConnectionOptions } from './connection.js';
import { inboxOptions, withConnection } from './connection.js';
import type { ConfigSource } from './getConfig.js';
import { openInbox } from './inbox.js';
import { RETAINED_SETTLE, latestStatuses } from './statuses.js';

/** One line of {@link listAgents}. */
export interface AgentSummary {
  agentId: string;
  state: AgentStatus['state'];
  hostname: string;
  /** The revision of the last config the agent answered (applied or rejected). */
  configRevision: number | null;
  configState: ConfigState;
  /** The revision in force, when the agent reports it. */
  appliedRevision: number | null;
  configSource: ConfigSource | null;
  /** `at` of the agent's last status. */
  lastSeen: string;
}

/**
 * Every agent that has a retained status under the prefix, sorted by id.
 * Reads retained statuses until the broker has been quiet for ~300 ms
 * (at most ~3 s).
 *
 * @example
 * for (const agent of await listAgents({ brokerUrl: 'mqtt://broker:1883' })) {
 *   console.log(agent.agentId, agent.state);
 * }
 */
export async function listAgents(options: ConnectionOptions = {}): Promise<AgentSummary[]> {
  return withConnection(options, async (client, topics, log) => {
    const inbox = await openInbox(client, [topics.allStatus()], topics.prefix, inboxOptions(options));
    try {
      await inbox.settle(RETAINED_SETTLE);
      return [...latestStatuses(inbox.messages, log).values()]
        .sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0))
        .map((s) => ({
          agentId: s.agentId,
          state: s.state,
          hostname: s.hostname,
          configRevision: s.config.revision,
          configState: s.config.state,
          appliedRevision: s.config.appliedRevision ?? null,
          configSource: s.config.source ?? null,
          lastSeen: s.at,
        }));
    } finally {
      await inbox.close();
    }
  });
}
