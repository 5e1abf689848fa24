import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { ConfigValidationError, agentConfigSchema, formatIssues, parseJson } from '@fso/common';
import type { AgentConfig, ConfigState, Logger } from '@fso/common';

/** Where a config came from. */
export type ConfigSource = 'agent' | 'default' | 'saved' | 'cli';

/** The outcome of the last config the agent received, as its status reports it. */
export interface ConfigOutcome {
  revision: number | null;
  state: ConfigState;
  error: string | null;
  source: ConfigSource;
  appliedRevision: number | null;
}

/** Options of {@link ConfigManager}. */
export interface ConfigManagerOptions {
  log: Logger;
  /** Applies a config live; throws (with a reason) to reject it. */
  apply: (config: AgentConfig, source: ConfigSource) => Promise<void>;
  /** Called after every outcome that the status must show. */
  onOutcome: (outcome: ConfigOutcome) => void;
}

/** Refuses configs the schema allows but an agent cannot honour (overlapping roots). */
export function checkConfigForAgent(config: AgentConfig): string[] {
  const roots = config.watch.map((w) => path.resolve(w.path));
  const problems: string[] = [];
  roots.forEach((a, i) =>
    roots.forEach((b, j) => {
      if (i !== j && b.startsWith(`${a}${path.sep}`)) problems.push(`watch.${j}.path: ${b} is inside watch.${i}.path ${a}; watched trees must not overlap`);
    }),
  );
  return problems;
}

/**
 * Decides which config is in force: the agent's own retained config when
 * one exists, else the default one; a lower revision than the one in force
 * (from the same topic) is rejected; offers are applied one at a time.
 */
export class ConfigManager {
  readonly #o: ConfigManagerOptions;
  #current: { config: AgentConfig; source: ConfigSource } | null = null;
  #own: AgentConfig | null | undefined;
  #default: AgentConfig | null | undefined;
  #chain: Promise<void> = Promise.resolve();
  #outcome: ConfigOutcome = { revision: null, state: 'none', error: null, source: 'cli', appliedRevision: null };

  constructor(options: ConfigManagerOptions) {
    this.#o = options;
  }

  get current(): { config: AgentConfig; source: ConfigSource } | null {
    return this.#current;
  }

  get outcome(): ConfigOutcome {
    return this.#outcome;
  }

  /** Starts with a local config (saved in the state dir, or from flags/file). */
  start(config: AgentConfig, source: ConfigSource): Promise<void> {
    return this.#serial(() => this.#apply(config, source));
  }

  /** A payload arrived on the agent's own config topic or on the default one. */
  offer(topicKind: 'agent' | 'default', payload: Buffer): Promise<void> {
    return this.#serial(() => this.#offer(topicKind, payload));
  }

  #serial(task: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(task).catch((err: unknown) => this.#o.log.error({ err }, 'config handling failed'));
    this.#chain = next;
    return next;
  }

  async #offer(topicKind: 'agent' | 'default', payload: Buffer): Promise<void> {
    const log = this.#o.log.child({ configTopic: topicKind });
    if (payload.length === 0) {
      log.info('config cleared');
      if (topicKind === 'agent') this.#own = null;
      else this.#default = null;
      if (topicKind === 'agent' && this.#current?.source === 'agent' && this.#default) await this.#apply(this.#default, 'default');
      return;
    }
    const json = parseJson(payload);
    const parsed = json.ok ? agentConfigSchema.safeParse(json.value) : undefined;
    if (!parsed?.success) {
      const reason = json.ok ? formatIssues(parsed!.error!).join('; ') : json.error;
      const revision = json.ok && typeof (json.value as { revision?: unknown })?.revision === 'number' ? (json.value as { revision: number }).revision : null;
      log.warn({ reason, revision }, 'config rejected');
      this.#report({ revision, state: 'rejected', error: `invalid config: ${reason}`, source: topicKind });
      return;
    }
    const config = parsed.data;
    if (topicKind === 'agent') this.#own = config;
    else this.#default = config;
    if (topicKind === 'default' && this.#own) {
      log.debug({ revision: config.revision }, 'default config stored; this agent has its own');
      return;
    }
    const current = this.#current;
    if (current && isDeepStrictEqual(current.config, config)) {
      this.#report({ revision: config.revision, state: 'applied', error: null, source: current.source });
      return;
    }
    if (current && current.source === topicKind && config.revision < current.config.revision) {
      const error = `revision ${config.revision} is lower than revision ${current.config.revision} in force`;
      log.warn({ revision: config.revision }, error);
      this.#report({ revision: config.revision, state: 'rejected', error, source: topicKind });
      return;
    }
    await this.#apply(config, topicKind);
  }

  async #apply(config: AgentConfig, source: ConfigSource): Promise<void> {
    const problems = checkConfigForAgent(config);
    try {
      if (problems.length > 0) throw new ConfigValidationError(source, problems);
      await this.#o.apply(config, source);
    } catch (err) {
      const error = err instanceof ConfigValidationError ? err.issues.join('; ') : (err as Error).message;
      this.#o.log.warn({ revision: config.revision, source, error }, 'config rejected');
      this.#report({ revision: config.revision, state: 'rejected', error, source });
      return;
    }
    this.#current = { config, source };
    this.#o.log.info({ revision: config.revision, source, watches: config.watch.length }, 'config applied');
    this.#report({ revision: config.revision, state: 'applied', error: null, source });
  }

  #report(outcome: Omit<ConfigOutcome, 'appliedRevision'>): void {
    this.#outcome = { ...outcome, appliedRevision: this.#current?.config.revision ?? null };
    this.#o.onOutcome(this.#outcome);
  }
}
