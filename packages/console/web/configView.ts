// Configs: per agent and for the default, the config in force (live from
// the retained config topics for controllers, as recorded in the trail for
// viewers), and an editor that checks and pushes a new one.
import { ApiError, api } from './api.js';
import { h, replace } from './dom.js';
import { DEFAULT_TARGET } from './live.js';
import type { Live } from './live.js';
import { pushConfig } from './pushConfig.js';
import type { PushOutcome } from './pushConfig.js';
import type { Access, AgentConfig, ConfigCheck, Credentials, Info, TrailRecord } from './types.js';
import type { View } from './view.js';

/** The fields the recorder adds to a line; they are not part of a config. */
const RECORDER_FIELDS = ['record', 'topic', 'receivedAt', 'prevHash', 'hash'];

interface Shown {
  config: AgentConfig | null;
  /** Where it comes from, in words. */
  source: string;
}

function outcomeText(o: PushOutcome, revision: number): { text: string; tone: 'ok' | 'bad' | 'pending' } {
  switch (o.outcome) {
    case 'applied':
      return { text: `${o.agentId}: revision ${revision} applied`, tone: 'ok' };
    case 'rejected':
      return { text: `${o.agentId}: rejected: ${o.reason}`, tone: 'bad' };
    case 'timeout':
      return { text: `${o.agentId}: no answer for revision ${revision} yet (offline?); the config stays retained`, tone: 'bad' };
    case 'retained':
      return { text: `revision ${revision} accepted by the broker; no online agent runs the default now, it waits for those that start later`, tone: 'ok' };
    case 'refused':
      return { text: 'refused by the broker (your role may not push configs)', tone: 'bad' };
    case 'unreachable':
      return { text: `the broker could not be reached: ${o.reason}`, tone: 'bad' };
  }
}

/**
 * Creates the config view.
 *
 * @example
 * main.append(createConfigView(info, creds, access, live).element);
 */
export function createConfigView(info: Info, creds: Credentials, access: Access, live: Live): View {
  let selected = DEFAULT_TARGET;
  let recorded = new Map<string, TrailRecord>();
  const targetList = h('nav', { class: 'targets', testid: 'config-targets' });
  const inForce = h('div', { class: 'panel', testid: 'config-in-force' });
  const editor = h('textarea', { class: 'editor', testid: 'config-editor', spellcheck: 'false' });
  const issues = h('ul', { class: 'issues', testid: 'config-issues' });
  const verdict = h('div', { class: 'verdict', testid: 'config-verdict', hidden: true });
  const note = h('p', { class: 'hint', testid: 'config-note' });
  const checkButton = h('button', { type: 'button', testid: 'config-check', onclick: () => void check() }, 'Check');
  const pushButton = h('button', { type: 'button', class: 'primary', testid: 'config-push', onclick: () => void push() }, 'Push');
  const targetLabel = h('strong', { class: 'mono' });

  const topicOf = (target: string): string => (target === DEFAULT_TARGET ? live.topics.defaultConfig() : live.topics.config(target));
  const shown = (target: string): Shown => {
    if (access.configs) {
      return { config: live.configs.get(target) ?? null, source: `retained on ${topicOf(target)} (live)` };
    }
    const r = recorded.get(topicOf(target));
    if (!r) return { config: null, source: 'as recorded in the trail' };
    const config = r.record.cleared === true ? null : (Object.fromEntries(Object.entries(r.record).filter(([k]) => !RECORDER_FIELDS.includes(k))) as unknown as AgentConfig);
    return { config, source: `as recorded in the trail (${r.file}:${r.line}, received ${String(r.record.receivedAt)})` };
  };
  /** The highest revision known for the target's topic: the one a push must exceed. */
  const currentRevision = (target: string): number => {
    const status = target === DEFAULT_TARGET ? undefined : live.statuses.get(target);
    return Math.max(-1, shown(target).config?.revision ?? -1, status?.config.revision ?? -1, status?.config.appliedRevision ?? -1);
  };

  const drawTargets = (): void => {
    const ids = new Set<string>(live.statuses.keys());
    for (const k of live.configs.keys()) if (k !== DEFAULT_TARGET) ids.add(k);
    const button = (id: string, label: string): HTMLElement => h('button', { type: 'button', class: id === selected ? 'active' : '', testid: `config-target-${id}`, onclick: () => select(id) }, label);
    replace(targetList, button(DEFAULT_TARGET, 'default config'), ...[...ids].sort().map((id) => button(id, id)));
  };

  const drawInForce = (): void => {
    const { config, source } = shown(selected);
    const status = selected === DEFAULT_TARGET ? undefined : live.statuses.get(selected);
    const statusLine = status
      ? h('p', { testid: 'config-status' }, `${status.state} · revision ${status.config.revision ?? 'none'} ${status.config.state}`,
        status.config.source ? ` · from ${status.config.source}` : '',
        status.config.appliedRevision !== undefined && status.config.appliedRevision !== null ? ` · runs revision ${status.config.appliedRevision}` : '',
        status.config.error ? h('span', { class: 'error-text' }, ` · ${status.config.error}`) : '')
      : null;
    const readable = access.configs || access.trail;
    replace(inForce,
      h('h3', {}, selected === DEFAULT_TARGET ? 'Default config' : `Config of ${selected}`),
      statusLine,
      h('p', { class: 'source-label', testid: 'config-source' }, readable ? source : 'This login may read neither the config topics nor the trail.'),
      config ? h('pre', { class: 'json', testid: 'config-json' }, JSON.stringify(config, null, 2))
        : h('p', { class: 'hint' }, selected === DEFAULT_TARGET ? 'No default config is retained.' : 'No config of its own is retained: it runs the default, or the one it started with.'));
  };

  const template = (target: string): AgentConfig => {
    const own = shown(target).config ?? shown(DEFAULT_TARGET).config;
    if (own) return { ...own, revision: currentRevision(target) + 1 };
    const watching = target === DEFAULT_TARGET ? [] : (live.statuses.get(target)?.watching ?? []).map((w) => ({ path: w.path }));
    return { schema: 'fso.config/1', revision: currentRevision(target) + 1, watch: watching.length ? watching : [{ path: '/srv/app' }] } as unknown as AgentConfig;
  };

  function select(target: string): void {
    selected = target;
    targetLabel.textContent = target === DEFAULT_TARGET ? 'the default config' : target;
    editor.value = JSON.stringify(template(target), null, 2);
    replace(issues);
    verdict.hidden = true;
    note.textContent = '';
    drawTargets();
    drawInForce();
  }

  const parsed = (): Record<string, unknown> | undefined => {
    replace(issues);
    try {
      const value = JSON.parse(editor.value) as unknown;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
      issues.append(h('li', { testid: 'config-issue' }, 'the config must be a JSON object'));
    } catch (err) {
      issues.append(h('li', { testid: 'config-issue' }, `not JSON: ${(err as Error).message}`));
    }
    return undefined;
  };

  async function validate(config: Record<string, unknown>): Promise<AgentConfig | undefined> {
    const answer = await api<ConfigCheck>('/api/config/check', config);
    if (answer.ok) return answer.config;
    replace(issues, ...answer.issues.map((i) => h('li', { testid: 'config-issue', 'data-path': i.path }, h('code', {}, i.path || '(config)'), ' ', i.message)));
    return undefined;
  }

  const setVerdict = (text: string, tone: 'ok' | 'bad' | 'pending'): void => {
    verdict.hidden = false;
    verdict.className = `verdict ${tone}`;
    verdict.textContent = text;
  };

  async function check(): Promise<void> {
    verdict.hidden = true;
    const config = parsed();
    if (!config) return;
    try {
      if (await validate(config)) setVerdict('valid', 'ok');
    } catch (err) {
      setVerdict(err instanceof ApiError ? err.message : String(err), 'bad');
    }
  }

  async function push(): Promise<void> {
    verdict.hidden = true;
    note.textContent = '';
    const draft = parsed();
    if (!draft) return;
    const target = selected;
    const current = currentRevision(target);
    // An agent rejects a revision below the one in force from the same topic: bump one left as it was.
    if (typeof draft.revision !== 'number' || draft.revision <= current) {
      draft.revision = current + 1;
      editor.value = JSON.stringify(draft, null, 2);
      note.textContent = `revision set to ${current + 1} (the current one was ${current < 0 ? 'none' : current})`;
    }
    pushButton.disabled = true;
    try {
      const config = await validate(draft);
      if (!config) return;
      setVerdict(`pushing revision ${config.revision}…`, 'pending');
      const waitFor = target === DEFAULT_TARGET
        ? [...live.statuses.values()].filter((s) => s.state === 'online' && s.config.source !== 'agent').map((s) => s.agentId)
        : [target];
      const outcomes = await pushConfig({ info, topics: live.topics, creds, target, config, waitFor });
      const texts = outcomes.map((o) => outcomeText(o, config.revision));
      setVerdict(texts.map((t) => t.text).join('; '), texts.every((t) => t.tone === 'ok') ? 'ok' : 'bad');
      drawInForce();
    } catch (err) {
      setVerdict(err instanceof ApiError ? err.message : String(err), 'bad');
    } finally {
      pushButton.disabled = false;
    }
  }

  let reload: ReturnType<typeof setTimeout> | undefined;
  live.on('status', (s) => {
    if (!targetList.querySelector(`[data-testid="config-target-${CSS.escape(s.agentId)}"]`)) drawTargets();
    if (s.agentId === selected) drawInForce();
    // An agent publishes its status after every config it receives: the trail then has that config too.
    if (!access.configs && access.trail && reload === undefined) {
      reload = setTimeout(() => {
        reload = undefined;
        void loadRecorded().catch(() => undefined);
      }, 500);
    }
  });
  live.on('config', (target) => {
    drawTargets();
    if (target === selected) drawInForce();
  });
  const loadRecorded = async (): Promise<void> => {
    if (access.configs || !access.trail) return;
    const { configs } = await api<{ configs: TrailRecord[] }>('/api/configs');
    recorded = new Map(configs.map((r) => [String(r.record.topic), r]));
    drawTargets();
    drawInForce();
  };

  const element = h('section', { class: 'view', testid: 'view-config' },
    h('div', { class: 'columns' },
      targetList,
      h('div', {}, inForce),
      h('div', { class: 'panel' },
        h('h3', {}, 'New config for ', targetLabel),
        editor,
        h('div', { class: 'toolbar' }, checkButton, pushButton, note),
        issues, verdict)));
  select(DEFAULT_TARGET);
  return { element, shown: () => void loadRecorded().catch(() => undefined), close: () => clearTimeout(reload) };
}
