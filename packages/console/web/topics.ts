// The topics the web app reads, under the prefix from /api/info (the same
// layout as common's topics.ts, which is Node code the browser cannot load).

/** What a topic is about; null for anything the app does not read. */
export type TopicKind =
  | { kind: 'status' | 'diff' | 'gap' | 'config'; agentId: string }
  | { kind: 'event'; agentId: string; eventType: string }
  | { kind: 'defaultConfig' };

/** Topic builders and the parser for one prefix. */
export interface WebTopics {
  status(agentId: string): string;
  config(agentId: string): string;
  defaultConfig(): string;
  allStatus(): string;
  /** Events, diffs and gaps of every agent: what the trail role may read. */
  trail(): string[];
  /** The retained configs (agents' own and the default). */
  configs(): string[];
  parse(topic: string): TopicKind | null;
}

/** The topics under `prefix` (`fso` by default). */
export function createWebTopics(prefix: string): WebTopics {
  return {
    status: (id) => `${prefix}/agents/${id}/status`,
    config: (id) => `${prefix}/agents/${id}/config`,
    defaultConfig: () => `${prefix}/config/default`,
    allStatus: () => `${prefix}/agents/+/status`,
    trail: () => [`${prefix}/agents/+/events/#`, `${prefix}/agents/+/diffs`, `${prefix}/agents/+/gaps`],
    configs: () => [`${prefix}/agents/+/config`, `${prefix}/config/default`],
    parse: (topic) => {
      if (!topic.startsWith(`${prefix}/`)) return null;
      const parts = topic.slice(prefix.length + 1).split('/');
      if (parts.length === 2 && parts[0] === 'config' && parts[1] === 'default') return { kind: 'defaultConfig' };
      if (parts[0] !== 'agents' || !parts[1]) return null;
      const agentId = parts[1];
      if (parts.length === 4 && parts[2] === 'events' && parts[3]) return { kind: 'event', agentId, eventType: parts[3] };
      if (parts.length !== 3) return null;
      const kind = ({ status: 'status', diffs: 'diff', gaps: 'gap', config: 'config' } as const)[parts[2] as 'status'];
      return kind ? { kind, agentId } : null;
    },
  };
}
