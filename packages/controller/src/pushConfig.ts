import { agentConfigSchema, assertAgentId, parseAgentConfig } from '@fso/common';
import type { AgentConfig, AgentStatus } from '@fso/common';
import type { ConnectionOptions } from './connection.js';
import { acknowledged, inboxOptions, withConnection } from './connection.js';
import { openInbox } from './inbox.js';
import type { InboxMessage } from './inbox.js';
import { RETAINED_SETTLE, decodeStatus, latestStatuses } from './statuses.js';

/** Whom a config is for: one agent's own topic, or the default topic. */
export type PushTarget = { agentId: string } | { default: true };

/** Options of {@link pushConfig}. */
export interface PushConfigOptions extends ConnectionOptions {
  target: PushTarget;
  /** The config as read (JSON value); validated before anything is published. */
  config: unknown;
  /** Names the config in validation errors, e.g. the file path; default `config`. */
  source?: string;
  /** How long to wait for the agents' status after publishing; default 10 s. */
  timeoutMs?: number;
}

/** What one agent made of the pushed revision. */
export type AgentOutcome =
  | { agentId: string; outcome: 'applied'; status: AgentStatus }
  | { agentId: string; outcome: 'rejected'; reason: string; status: AgentStatus }
  /** No status for the revision in time; `lastStatus` is the last one seen (it may say offline). */
  | { agentId: string; outcome: 'timeout'; lastStatus: AgentStatus | null };

/** Result of {@link pushConfig}. */
export interface PushResult {
  /** Where the config is now retained. */
  topic: string;
  revision: number;
  /** The validated config as published (defaults filled in). */
  config: AgentConfig;
  /** One per target agent; empty when a default config had no online agent to wait for. */
  outcomes: AgentOutcome[];
  /** `--default` only: online agents that run their own config, so the default does not touch them. */
  unaffected: string[];
  /** Every target applied the revision (true when there was none to wait for). */
  ok: boolean;
}

/** Agents whose own config topic retains a valid config (the last message there wins; empty = cleared). */
function agentsWithOwnConfig(messages: readonly InboxMessage[]): Set<string> {
  const owns = new Map<string, boolean>();
  for (const m of messages) {
    if (m.parsed.kind === 'config') owns.set(m.parsed.agentId, agentConfigSchema.safeParse(m.json).success);
  }
  return new Set([...owns].filter(([, valid]) => valid).map(([id]) => id));
}

/** Default of {@link PushConfigOptions.timeoutMs}. */
export const DEFAULT_PUSH_TIMEOUT_MS = 10_000;

/**
 * Validates a config, publishes it retained (QoS 1) on the target's config
 * topic, and waits for each target agent's status to report that revision
 * as applied or rejected.
 *
 * For one agent, only a status published after the push counts (a retained
 * status of an earlier push of the same revision does not). For the default
 * topic, the targets are the agents online now that have no valid config
 * retained on their own topic (so they run the default); with none the
 * config stays retained for agents that start later, and the push succeeds.
 *
 * Throws common's `ConfigValidationError` (nothing published) for an invalid
 * config, `InvalidAgentIdError`, `BrokerConnectError`.
 *
 * @example
 * const result = await pushConfig({
 *   brokerUrl: 'mqtt://127.0.0.1:1883',
 *   target: { agentId: 'web-01' },
 *   config: JSON.parse(await readFile('cfg.json', 'utf8')),
 * });
 * if (!result.ok) console.error(result.outcomes);
 */
export async function pushConfig(options: PushConfigOptions): Promise<PushResult> {
  const config = parseAgentConfig(options.config, options.source ?? 'config');
  const agentId = 'agentId' in options.target ? assertAgentId(options.target.agentId) : null;
  const timeoutMs = options.timeoutMs ?? DEFAULT_PUSH_TIMEOUT_MS;

  return withConnection(options, async (client, topics, log) => {
    const topic = agentId ? topics.config(agentId) : topics.defaultConfig();
    // Subscribe before publishing, so a quick answer cannot slip past.
    const filters = agentId ? [topics.status(agentId)] : [topics.allStatus(), topics.allConfigs()];
    const inbox = await openInbox(client, filters, topics.prefix, inboxOptions(options));
    try {
      let targets: string[];
      let unaffected: string[] = [];
      if (agentId) {
        targets = [agentId];
      } else {
        await inbox.settle(RETAINED_SETTLE);
        const online = [...latestStatuses(inbox.messages, log).values()].filter((s) => s.state === 'online');
        // DESIGN.md: an agent uses its own config when a valid one is retained on its topic, else the default.
        // This is what status `source: "agent"` reports, except after its own config was cleared or was
        // never valid: `source` names the topic of the last offer, but such an agent does take the default.
        const owners = agentsWithOwnConfig(inbox.messages);
        targets = online.filter((s) => !owners.has(s.agentId)).map((s) => s.agentId);
        unaffected = online.filter((s) => owners.has(s.agentId)).map((s) => s.agentId);
      }

      // Everything before this index predates the push (the answer can beat our PUBACK).
      let cursor = inbox.messages.length;
      await acknowledged(
        client.publishAsync(topic, JSON.stringify(config), { qos: 1, retain: true }),
        inboxOptions(options).ackTimeoutMs,
        'PUBLISH',
        topic,
      );

      const answers = new Map<string, AgentStatus>();
      const absorb = (): true | undefined => {
        for (; cursor < inbox.messages.length; cursor++) {
          const message = inbox.messages[cursor];
          // A retained status is what the agent said before this push (MQTT-3.3.1-9 clears the flag on live ones).
          if (!message || message.retain) continue;
          const status = decodeStatus(message, log);
          if (
            status &&
            targets.includes(status.agentId) &&
            !answers.has(status.agentId) &&
            status.config.revision === config.revision &&
            (status.config.state === 'applied' || status.config.state === 'rejected')
          ) {
            answers.set(status.agentId, status);
          }
        }
        return targets.every((id) => answers.has(id)) ? true : undefined;
      };
      if (targets.length > 0) await inbox.waitFor(absorb, timeoutMs);

      const last = latestStatuses(inbox.messages, log);
      const outcomes = targets.map((id): AgentOutcome => {
        const status = answers.get(id);
        if (!status) return { agentId: id, outcome: 'timeout', lastStatus: last.get(id) ?? null };
        if (status.config.state === 'applied') return { agentId: id, outcome: 'applied', status };
        return { agentId: id, outcome: 'rejected', reason: status.config.error ?? 'no reason given', status };
      });
      return {
        topic,
        revision: config.revision,
        config,
        outcomes,
        unaffected,
        ok: outcomes.every((o) => o.outcome === 'applied'),
      };
    } finally {
      await inbox.close();
    }
  });
}
