import { MAX_ALERT_SAMPLES, describeWho, isoFromMs } from '@fso/common';
import type { AgentStatus, AlertSample, AlertState, FsoAlert, FsoDiff, FsoEvent } from '@fso/common';
import type { Rule } from './rules.js';

/** One thing the engine is told about: a message from the stream, or a verify of the trail. */
export type Observation =
  | { what: 'event'; event: FsoEvent }
  | { what: 'diff'; diff: FsoDiff }
  /** A gap: an agent's watcher overflow (`fso.gap/1`) or a seq range the recorder wrote as lost. */
  | { what: 'gap'; agentId: string; at: string; reason: string; messageId: string | null }
  | { what: 'status'; status: AgentStatus; retained: boolean }
  | { what: 'verify'; ok: boolean; detail: string };

/** Options of {@link createRuleEngine}. */
export interface RuleEngineOptions {
  rules: readonly Rule[];
  /** Who evaluates: goes into every alert's `source`. */
  source: string;
  /** Called for every alert, in order; must not throw. */
  emit: (alert: FsoAlert, rule: Rule) => void;
  /** The clock (ms); tests drive it. Default Date.now. */
  now?: () => number;
}

/** The rules running on the stream. */
export interface RuleEngine {
  observe(observation: Observation): void;
  /** Resolves quiet incidents, fires agent-offline, repeats: call every second or so. */
  tick(): void;
  /** New rules (a reload): unchanged rules keep their state; removed or changed rules resolve what they had firing. */
  replaceRules(rules: readonly Rule[]): void;
  /** Incidents firing now, per rule id. */
  firing(): Map<string, number>;
}

/** Matches below a threshold, waiting for more. */
interface Pending {
  /** The matching records' own times (ms), ascending. */
  times: number[];
  samples: AlertSample[];
  agentId: string | null;
  path: string | null;
  lastArrivalMs: number;
}

interface Incident {
  n: string;
  key: string;
  agentId: string | null;
  path: string | null;
  count: number;
  firstAt: string;
  lastAt: string;
  samples: AlertSample[];
  lastMatchMs: number;
  lastSentMs: number;
  repeats: number;
  /** A state incident (offline, rejected config, failed verify) resolves when the state clears, not when quiet. */
  byState: boolean;
  detail: string;
}

interface RuleState {
  rule: Rule;
  pending: Map<string, Pending>;
  incidents: Map<string, Incident>;
  /** When each recent incident opened, for the rule's limit. */
  opened: number[];
}

interface AgentSeen {
  lastStatusMs: number;
  online: boolean;
  offlineSinceMs: number | undefined;
}

const RATE_LIMITED = '(rate-limited)';

function timeOf(iso: string, fallback: number): number {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? fallback : ms;
}

function pushSample(samples: AlertSample[], sample: AlertSample): void {
  if (samples.length < MAX_ALERT_SAMPLES) samples.push(sample);
}

/** Inserts `t` into ascending `times` (records mostly arrive in order, so the search is from the end). */
function insertSorted(times: number[], t: number): void {
  let i = times.length;
  while (i > 0 && (times[i - 1] ?? 0) > t) i--;
  times.splice(i, 0, t);
}

/** What one matching record says: its group's key, agent, path, time and sample. */
interface Match {
  agentId: string | null;
  path: string | null;
  root: string | null;
  atMs: number;
  sample: AlertSample;
}

function matchOf(rule: Rule, obs: Observation, nowMs: number): Match | undefined {
  switch (obs.what) {
    case 'event': {
      const e = obs.event;
      if (rule.when !== 'change' || !rule.agentMatches(e.agentId)) return undefined;
      if (rule.types && !rule.types.includes(e.type)) return undefined;
      if (rule.important !== undefined && e.important !== rule.important) return undefined;
      if (rule.origin !== undefined && e.origin !== rule.origin) return undefined;
      if (!rule.pathMatches(e.oldPath !== undefined ? [e.path, e.oldPath] : [e.path])) return undefined;
      if (!rule.whoMatches(e.who)) return undefined;
      const who = e.who ? describeWho(e.who).slice(0, 600) : undefined;
      return {
        agentId: e.agentId, path: e.path, root: e.root, atMs: timeOf(e.observedAt, nowMs),
        sample: { what: e.type, agentId: e.agentId, path: e.path, messageId: e.id, ...(who ? { who } : {}), at: e.observedAt },
      };
    }
    case 'diff': {
      const d = obs.diff;
      if (rule.when !== 'diff' || !rule.agentMatches(d.agentId) || !rule.pathMatches([d.path])) return undefined;
      if (rule.redacted !== undefined && ((d.redactions?.length ?? 0) > 0) !== rule.redacted) return undefined;
      if (rule.patch && !(d.patch !== null && rule.patch.test(d.patch))) return undefined;
      return { agentId: d.agentId, path: d.path, root: null, atMs: timeOf(d.observedAt, nowMs), sample: { what: 'diff', agentId: d.agentId, path: d.path, messageId: d.id, at: d.observedAt } };
    }
    case 'gap':
      if (rule.when !== 'gap' || !rule.agentMatches(obs.agentId)) return undefined;
      return { agentId: obs.agentId, path: null, root: null, atMs: timeOf(obs.at, nowMs), sample: { what: 'gap', agentId: obs.agentId, path: null, messageId: obs.messageId, at: obs.at } };
    default:
      return undefined;
  }
}

function keyOf(rule: Rule, m: { agentId: string | null; path: string | null; root: string | null }): string {
  switch (rule.groupBy) {
    case 'agent':
      return m.agentId ?? '(none)';
    case 'path':
      return `${m.agentId ?? ''}:${m.path ?? ''}`;
    case 'root':
      return `${m.agentId ?? ''}:${m.root ?? ''}`;
    case 'rule':
      return '*';
  }
}

/**
 * Creates the rule engine: it counts matches per rule and group, opens an
 * incident when a rule's threshold is reached (one alert, not one per
 * match), counts further matches into it, resolves it when quiet (or when
 * the state clears), and folds incidents beyond the rule's limit into one.
 *
 * @example
 * const engine = createRuleEngine({ rules: ruleSet.rules, source: 'fso-alert@host', emit: (alert) => publish(alert) });
 * engine.observe({ what: 'event', event });
 */
export function createRuleEngine(options: RuleEngineOptions): RuleEngine {
  const now = options.now ?? Date.now;
  const boot = now().toString(36);
  let serial = 0;
  let states = new Map<string, RuleState>();
  const agents = new Map<string, AgentSeen>();

  const label = (rule: Rule): string => rule.description ?? rule.id;

  const send = (st: RuleState, inc: Incident, state: AlertState, summary: string): void => {
    const nowMs = now();
    const suffix = state === 'firing' && inc.repeats > 0 ? `firing.${inc.repeats}` : state;
    options.emit(
      {
        schema: 'fso.alert/1',
        id: `${st.rule.id}:${inc.n}:${suffix}`,
        rule: st.rule.id,
        state,
        severity: st.rule.severity,
        key: inc.key,
        summary: summary.slice(0, 2000),
        agentId: inc.agentId,
        path: inc.path,
        count: inc.count,
        firstAt: inc.firstAt,
        lastAt: inc.lastAt,
        samples: inc.samples,
        source: options.source,
        at: isoFromMs(nowMs),
      },
      st.rule,
    );
    inc.lastSentMs = nowMs;
  };

  const firingSummary = (rule: Rule, inc: Incident): string => {
    if (inc.byState) return `${label(rule)}: ${inc.detail}`;
    const what = rule.when === 'change' ? 'matching changes' : rule.when === 'diff' ? 'matching diffs' : 'gaps';
    const within = rule.count > 1 ? ` (threshold ${rule.count} within ${rule.windowMs / 1000}s)` : '';
    return `${label(rule)}: ${inc.count} ${what} on ${inc.key}${within}`;
  };

  /** Opens an incident for `key`, or folds it into the rule's rate-limited one. */
  const open = (st: RuleState, key: string, init: Omit<Incident, 'n' | 'key' | 'lastSentMs' | 'repeats'>): void => {
    const nowMs = now();
    st.opened = st.opened.filter((t) => nowMs - t < st.rule.limit.perMs);
    if (st.opened.length >= st.rule.limit.incidents && key !== RATE_LIMITED) {
      const folded = st.incidents.get(RATE_LIMITED);
      if (folded) {
        folded.count += init.count;
        folded.lastAt = init.lastAt;
        folded.lastMatchMs = nowMs;
        for (const s of init.samples) pushSample(folded.samples, s);
        return;
      }
      const detail = `more than ${st.rule.limit.incidents} incidents within ${st.rule.limit.perMs / 1000}s; further ones are counted here`;
      open(st, RATE_LIMITED, { ...init, agentId: null, path: null, detail, byState: false });
      return;
    }
    st.opened.push(nowMs);
    const inc: Incident = { ...init, n: `${boot}-${(serial += 1)}`, key, lastSentMs: nowMs, repeats: 0 };
    st.incidents.set(key, inc);
    send(st, inc, 'firing', key === RATE_LIMITED ? `${label(st.rule)}: ${inc.detail}` : firingSummary(st.rule, inc));
  };

  const resolve = (st: RuleState, inc: Incident, why: string): void => {
    st.incidents.delete(inc.key);
    send(st, inc, 'resolved', `resolved: ${label(st.rule)} on ${inc.key}: ${why} (${inc.count} in all)`);
  };

  const counted = (st: RuleState, m: Match): void => {
    const { rule } = st;
    const nowMs = now();
    const key = keyOf(rule, m);
    const target = st.incidents.get(key) ?? (st.incidents.has(RATE_LIMITED) && st.opened.length >= rule.limit.incidents ? st.incidents.get(RATE_LIMITED) : undefined);
    if (target) {
      target.count += 1;
      target.lastAt = m.sample.at;
      target.lastMatchMs = nowMs;
      pushSample(target.samples, m.sample);
      return;
    }
    let pending = st.pending.get(key);
    if (!pending) {
      pending = { times: [], samples: [], agentId: m.agentId, path: rule.groupBy === 'path' ? m.path : rule.groupBy === 'root' ? m.root : null, lastArrivalMs: nowMs };
      st.pending.set(key, pending);
    }
    insertSorted(pending.times, m.atMs);
    pending.lastArrivalMs = nowMs;
    pushSample(pending.samples, m.sample);
    // Only what lies within one window of the newest record counts (the records' own time, so a backlog resent after an outage is not a burst).
    const newest = pending.times[pending.times.length - 1] ?? m.atMs;
    let drop = 0;
    while (drop < pending.times.length && (pending.times[drop] ?? 0) < newest - rule.windowMs) drop++;
    if (drop > 0) pending.times.splice(0, drop);
    if (pending.times.length < rule.count) return;
    st.pending.delete(key);
    open(st, key, {
      agentId: pending.agentId,
      path: pending.path,
      count: pending.times.length,
      firstAt: isoFromMs(pending.times[0] ?? m.atMs),
      lastAt: m.sample.at,
      samples: pending.samples,
      lastMatchMs: nowMs,
      byState: false,
      detail: '',
    });
  };

  /** A state incident (one per agent, or one for the trail): opened when `on`, resolved when not. */
  const stateful = (st: RuleState, key: string, on: boolean, init: { agentId: string | null; detail: string; sample: AlertSample }, why: string): void => {
    const inc = st.incidents.get(key);
    if (on) {
      if (inc) {
        if (inc.detail !== init.detail) {
          // A new fact (another rejected revision, another broken line) is a new alert, not a repeat.
          inc.count += 1;
          inc.detail = init.detail;
          inc.lastAt = init.sample.at;
          pushSample(inc.samples, init.sample);
          inc.repeats += 1;
          send(st, inc, 'firing', firingSummary(st.rule, inc));
        }
        inc.lastMatchMs = now();
        return;
      }
      open(st, key, { agentId: init.agentId, path: null, count: 1, firstAt: init.sample.at, lastAt: init.sample.at, samples: [init.sample], lastMatchMs: now(), byState: true, detail: init.detail });
    } else if (inc) {
      resolve(st, inc, why);
    }
  };

  const observeStatus = (status: AgentStatus, retained: boolean): void => {
    const nowMs = now();
    const seen = agents.get(status.agentId) ?? { lastStatusMs: nowMs, online: true, offlineSinceMs: undefined };
    // A retained status may be old: the clock of "no status for T" starts when this daemon sees it.
    seen.lastStatusMs = nowMs;
    const online = status.state === 'online';
    if (online) seen.offlineSinceMs = undefined;
    else if (seen.online || seen.offlineSinceMs === undefined) seen.offlineSinceMs = retained ? nowMs : Math.min(nowMs, timeOf(status.at, nowMs));
    seen.online = online;
    agents.set(status.agentId, seen);
    const sample: AlertSample = { what: 'status', agentId: status.agentId, path: null, messageId: null, at: status.at };
    for (const st of states.values()) {
      if (!st.rule.agentMatches(status.agentId)) continue;
      if (st.rule.when === 'agent-offline' && online) stateful(st, status.agentId, false, { agentId: status.agentId, detail: '', sample }, 'online again');
      if (st.rule.when === 'config-rejected') {
        const { config } = status;
        if (config.state === 'rejected') {
          const detail = `agent ${status.agentId} rejected config revision ${config.revision ?? '?'}: ${config.error ?? 'no reason given'}`;
          stateful(st, status.agentId, true, { agentId: status.agentId, detail, sample }, '');
        } else if (config.state === 'applied') {
          stateful(st, status.agentId, false, { agentId: status.agentId, detail: '', sample }, `config revision ${config.revision ?? '?'} applied`);
        }
      }
    }
  };

  const observeVerify = (ok: boolean, detail: string): void => {
    const at = isoFromMs(now());
    for (const st of states.values()) {
      if (st.rule.when !== 'verify-failed') continue;
      stateful(st, '*', !ok, { agentId: null, detail: `the audit trail does not verify: ${detail}`, sample: { what: 'verify', agentId: null, path: null, messageId: null, at } }, 'the audit trail verifies again');
    }
  };

  const stateOf = (rule: Rule, previous?: RuleState): RuleState => previous ?? { rule, pending: new Map(), incidents: new Map(), opened: [] };

  const replaceRules = (rules: readonly Rule[]): void => {
    const next = new Map<string, RuleState>();
    for (const rule of rules) {
      const old = states.get(rule.id);
      next.set(rule.id, old && old.rule.fingerprint === rule.fingerprint ? old : stateOf(rule));
    }
    for (const [id, old] of states) {
      if (next.get(id) === old) continue;
      for (const inc of [...old.incidents.values()]) resolve(old, inc, 'the rule was changed or removed');
    }
    states = next;
  };

  replaceRules(options.rules);

  return {
    observe(obs) {
      if (obs.what === 'status') return observeStatus(obs.status, obs.retained);
      if (obs.what === 'verify') return observeVerify(obs.ok, obs.detail);
      const nowMs = now();
      for (const st of states.values()) {
        const m = matchOf(st.rule, obs, nowMs);
        if (m) counted(st, m);
      }
    },
    tick() {
      const nowMs = now();
      for (const st of states.values()) {
        const { rule } = st;
        for (const [key, p] of st.pending) if (nowMs - p.lastArrivalMs > Math.max(rule.windowMs, 1000)) st.pending.delete(key);
        for (const inc of [...st.incidents.values()]) {
          if (!inc.byState && nowMs - inc.lastMatchMs >= rule.resolveAfterMs) {
            resolve(st, inc, `no match for ${rule.resolveAfterMs / 1000}s`);
            continue;
          }
          if (rule.repeatMs !== undefined && nowMs - inc.lastSentMs >= rule.repeatMs) {
            inc.repeats += 1;
            send(st, inc, 'firing', `${firingSummary(rule, inc)} (still firing)`);
          }
        }
        if (rule.when === 'agent-offline') {
          for (const [agentId, seen] of agents) {
            if (!rule.agentMatches(agentId) || st.incidents.has(agentId)) continue;
            const silentMs = nowMs - seen.lastStatusMs;
            const offlineMs = seen.offlineSinceMs === undefined ? 0 : nowMs - seen.offlineSinceMs;
            if (silentMs < rule.forMs && offlineMs < rule.forMs) continue;
            const detail = offlineMs >= rule.forMs ? `agent ${agentId} offline for ${Math.round(offlineMs / 1000)}s` : `no status from agent ${agentId} for ${Math.round(silentMs / 1000)}s`;
            const at = isoFromMs(nowMs);
            stateful(st, agentId, true, { agentId, detail, sample: { what: 'status', agentId, path: null, messageId: null, at } }, '');
          }
        }
      }
    },
    replaceRules,
    firing() {
      return new Map([...states].map(([id, st]) => [id, st.incidents.size]));
    },
  };
}
