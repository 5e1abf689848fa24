import { formatIssues, statusSchema } from '@fso/common';
import type { AgentStatus, Logger } from '@fso/common';
import type { InboxMessage } from './inbox.js';

/**
 * The status in a message on an agent's status topic, or null when the
 * payload is empty (cleared), malformed, or names another agent than its
 * topic (logged as a warning).
 */
export function decodeStatus(message: InboxMessage, log: Logger): AgentStatus | null {
  if (message.parsed.kind !== 'status') return null;
  if (message.json === undefined) {
    if (message.error) log.warn({ topic: message.topic, reason: message.error }, 'ignoring malformed status');
    return null;
  }
  const result = statusSchema.safeParse(message.json);
  if (!result.success) {
    log.warn({ topic: message.topic, issues: formatIssues(result.error) }, 'ignoring invalid status');
    return null;
  }
  if (result.data.agentId !== message.parsed.agentId) {
    log.warn({ topic: message.topic, agentId: result.data.agentId }, 'ignoring status published under another agent id');
    return null;
  }
  return result.data;
}

/** The last valid status of each agent among `messages`, by agent id. */
export function latestStatuses(messages: readonly InboxMessage[], log: Logger): Map<string, AgentStatus> {
  const latest = new Map<string, AgentStatus>();
  for (const message of messages) {
    const status = decodeStatus(message, log);
    if (status) latest.set(status.agentId, status);
  }
  return latest;
}

/** How long `listAgents`, `getConfig` and `push --default` wait for retained messages. */
export const RETAINED_SETTLE = { quietMs: 300, maxMs: 3_000 } as const;
