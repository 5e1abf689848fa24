import { EXIT } from '@fso/common';
import type { ConfigInForce } from './getConfig.js';
import type { AgentSummary } from './listAgents.js';
import type { AgentOutcome, PushResult } from './pushConfig.js';

/** The exit code of a push: any rejection wins over any time-out. */
export function pushExitCode(result: PushResult): number {
  if (result.outcomes.some((o) => o.outcome === 'rejected')) return EXIT.failed;
  if (result.outcomes.some((o) => o.outcome === 'timeout')) return EXIT.timeout;
  return EXIT.ok;
}

const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))} s`;

function describeOutcome(o: AgentOutcome, revision: number, timeoutMs: number): string {
  switch (o.outcome) {
    case 'applied':
      return `${o.agentId}: applied revision ${revision}`;
    case 'rejected':
      return `${o.agentId}: rejected revision ${revision}: ${o.reason}`;
    case 'timeout': {
      const why = !o.lastStatus
        ? ' (it has never reported a status; the config stays retained for when it starts)'
        : o.lastStatus.state === 'offline'
          ? ` (it is offline since ${o.lastStatus.at}; the config stays retained for when it reconnects)`
          : '';
      return `${o.agentId}: no answer for revision ${revision} within ${seconds(timeoutMs)}${why}`;
    }
  }
}

/** The lines `push` prints. */
export function formatPushResult(result: PushResult, timeoutMs: number): string {
  const lines = [`published revision ${result.revision} to ${result.topic} (retained)`];
  lines.push(...result.outcomes.map((o) => describeOutcome(o, result.revision, timeoutMs)));
  lines.push(...result.unaffected.map((id) => `${id}: not affected (it runs its own config)`));
  if (result.outcomes.length === 0) {
    lines.push(`no online agent uses the default config; it is stored retained for agents that start later`);
  }
  return `${lines.join('\n')}\n`;
}

/** The lines `get` prints to stderr beside the config JSON on stdout. */
export function formatConfigSource(found: ConfigInForce): string {
  const revision = found.revision === null ? '' : `, revision ${found.revision}`;
  const where = found.topic ? ` (${found.topic})` : '';
  const lines = [`source: ${found.source ?? 'unknown'}${where}${revision}`, ...found.notes.map((n) => `note: ${n}`)];
  return `${lines.join('\n')}\n`;
}

/** `agents` as an aligned text table. */
export function formatAgentsTable(agents: readonly AgentSummary[]): string {
  if (agents.length === 0) return 'no agent has reported a status\n';
  const header = ['AGENT', 'STATE', 'HOST', 'CONFIG', 'CONFIG STATE', 'SOURCE', 'LAST SEEN'];
  const rows = agents.map((a) => [
    a.agentId,
    a.state,
    a.hostname,
    a.configRevision === null ? '-' : String(a.configRevision),
    a.configState,
    a.configSource ?? '-',
    a.lastSeen,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return `${[header, ...rows].map(line).join('\n')}\n`;
}
