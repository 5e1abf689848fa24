import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { globMatcher } from '@fso/audit-trail';
import { alertSeveritySchema, eventTypeSchema, originSchema, positiveDurationSchema, ruleIdSchema } from '@fso/common';
import type { AlertSeverity, EventType, Origin, Who } from '@fso/common';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { RulesFileError } from './errors.js';
import { targetSchema } from './notify/targets.js';
import type { TargetSpec } from './notify/targets.js';

/**
 * What a rule watches:
 * - `change`: file events (create, modify, delete, rename);
 * - `diff`: diffs of important files (a patch regex, redactions);
 * - `gap`: any gap (a watcher overflow, a seq range that can never arrive);
 * - `config-rejected`: an agent reports its config rejected;
 * - `agent-offline`: no status from an agent for `for`, or offline that long;
 * - `verify-failed`: the audit trail's hash chain does not verify.
 */
export const RULE_KINDS = ['change', 'diff', 'gap', 'config-rejected', 'agent-offline', 'verify-failed'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** What one incident of a rule is about; the default is `path` for change and diff, `agent` otherwise, `rule` for verify. */
export const GROUP_BYS = ['agent', 'path', 'root', 'rule'] as const;
export type GroupBy = (typeof GROUP_BYS)[number];

const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

const matchSchema = z.strictObject({
  /** Agent id globs (`web-*`). */
  agent: oneOrMany(z.string().min(1)).optional(),
  /** Path globs (picomatch, dot files included): `/etc/**`, `**\/*.conf`. */
  path: oneOrMany(z.string().min(1)).optional(),
  /** Event types (`change` only). */
  type: oneOrMany(eventTypeSchema).optional(),
  /** Only events of files matching an `important` pattern (`change` only). */
  important: z.boolean().optional(),
  /** `scan`: changed while the agent was down; `live`: seen by the watcher (`change` only). */
  origin: originSchema.optional(),
  /** A regular expression (JavaScript syntax) the diff's patch must match (`diff` only). */
  patch: z.string().min(1).max(1000).optional(),
  /** Flags of `patch`: any of `imsu`. */
  patchFlags: z.string().regex(/^[imsu]*$/, 'use any of i, m, s, u').optional(),
  /** Only diffs where the agent replaced secrets (`diff` only). */
  redacted: z.boolean().optional(),
  /**
   * Who made the change (`change` only; the agent's who-data, issue 16):
   * user name or uid globs (`root`, `deploy-*`, `1000`) the real user must
   * match, or the login user (`auser`, through su and sudo) must; `notUser`:
   * none of them. An event whose `who` is unknown matches neither.
   */
  user: oneOrMany(z.string().min(1)).optional(),
  notUser: oneOrMany(z.string().min(1)).optional(),
  /** Executable path globs (`/usr/bin/*`); `notExe`: none of them (an allowlist: `[/usr/bin/dpkg, /usr/bin/apt*]`). */
  exe: oneOrMany(z.string().min(1)).optional(),
  notExe: oneOrMany(z.string().min(1)).optional(),
});

const ruleSchema = z.strictObject({
  id: ruleIdSchema,
  description: z.string().max(500).optional(),
  severity: alertSeveritySchema.default('medium'),
  when: z.enum(RULE_KINDS),
  match: matchSchema.default({}),
  /** At least `count` matches within `window` (by the records' own time) for one group, else no alert. */
  threshold: z.strictObject({ count: z.number().int().min(1), window: positiveDurationSchema }).optional(),
  groupBy: z.enum(GROUP_BYS).optional(),
  /** `agent-offline`: how long without a status (or offline) before it fires. */
  for: positiveDurationSchema.optional(),
  /** A firing incident resolves after this long without a new match; default: the threshold's window, else 5m. */
  resolveAfter: positiveDurationSchema.optional(),
  /** While an incident keeps firing, say so again (with the count) this often; default: never. */
  repeat: positiveDurationSchema.optional(),
  /** At most `incidents` new incidents per `per`; the rest fold into one `(rate-limited)` incident. Default 20 per 1h. */
  limit: z.strictObject({ incidents: z.number().int().min(1), per: positiveDurationSchema }).optional(),
  /** Target names from `targets`. */
  notify: z.array(z.string().min(1)).default([]),
  enabled: z.boolean().default(true),
});

type RuleInput = z.output<typeof ruleSchema>;

/** Match fields each kind of rule may use. */
const MATCH_FIELDS: Record<RuleKind, readonly (keyof z.output<typeof matchSchema>)[]> = {
  change: ['agent', 'path', 'type', 'important', 'origin', 'user', 'notUser', 'exe', 'notExe'],
  diff: ['agent', 'path', 'patch', 'patchFlags', 'redacted'],
  gap: ['agent'],
  'config-rejected': ['agent'],
  'agent-offline': ['agent'],
  'verify-failed': [],
};

const TARGET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The checks across a rule's fields, once each field is valid. */
const checkedRuleSchema = ruleSchema.superRefine((rule, ctx) => {
  for (const key of Object.keys(rule.match) as (keyof typeof rule.match)[]) {
    if (rule.match[key] !== undefined && !MATCH_FIELDS[rule.when].includes(key)) {
      ctx.addIssue({ code: 'custom', path: ['match', key], message: `not a match field of a ${rule.when} rule (use ${MATCH_FIELDS[rule.when].join(', ') || 'none'})` });
    }
  }
  if (rule.match.patch !== undefined) {
    try {
      new RegExp(rule.match.patch, rule.match.patchFlags);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['match', 'patch'], message: `not a regular expression: ${(err as Error).message}` });
    }
  }
  const counted = rule.when === 'change' || rule.when === 'diff' || rule.when === 'gap';
  if (rule.threshold && !counted) ctx.addIssue({ code: 'custom', path: ['threshold'], message: `a ${rule.when} rule has no threshold (it fires on a state)` });
  if (rule.when === 'agent-offline' && rule.for === undefined) ctx.addIssue({ code: 'custom', path: ['for'], message: 'an agent-offline rule needs `for` (e.g. 5m; agents send a status every 30s)' });
  if (rule.when !== 'agent-offline' && rule.for !== undefined) ctx.addIssue({ code: 'custom', path: ['for'], message: 'only an agent-offline rule takes `for`' });
  if (rule.groupBy === 'path' && !(rule.when === 'change' || rule.when === 'diff')) ctx.addIssue({ code: 'custom', path: ['groupBy'], message: `a ${rule.when} rule has no path to group by` });
  if (rule.groupBy === 'root' && rule.when !== 'change') ctx.addIssue({ code: 'custom', path: ['groupBy'], message: 'only a change rule can group by root' });
});

// Rules are parsed one by one (not as one array), so a file with several broken rules gets every problem at once.
const rulesFileSchema = z.strictObject({
  targets: z.record(z.string().regex(TARGET_NAME, 'a target name must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'), targetSchema).default({}),
  rules: z.array(z.unknown()),
});

/** A rule ready to run: its matchers compiled, its defaults filled in. */
export interface Rule {
  readonly id: string;
  readonly description: string | undefined;
  readonly severity: AlertSeverity;
  readonly when: RuleKind;
  readonly groupBy: GroupBy;
  /** How many matches within `windowMs` open an incident (1 without a threshold). */
  readonly count: number;
  readonly windowMs: number;
  readonly forMs: number;
  readonly resolveAfterMs: number;
  readonly repeatMs: number | undefined;
  readonly limit: { incidents: number; perMs: number };
  readonly notify: readonly string[];
  /** The rule as written (defaults filled in), to tell a changed rule from an unchanged one on reload. */
  readonly fingerprint: string;
  agentMatches(agentId: string | null): boolean;
  pathMatches(paths: readonly string[]): boolean;
  readonly types: readonly EventType[] | undefined;
  readonly important: boolean | undefined;
  readonly origin: Origin | undefined;
  readonly patch: RegExp | undefined;
  readonly redacted: boolean | undefined;
  /** The who-data conditions of a change rule; true without any. */
  whoMatches(who: Who | null | undefined): boolean;
}

/** A rules file, parsed and compiled. */
export interface RuleSet {
  readonly file: string;
  readonly rules: readonly Rule[];
  readonly targets: Readonly<Record<string, TargetSpec>>;
}

const DEFAULT_RESOLVE_MS = 5 * 60_000;
const DEFAULT_LIMIT = { incidents: 20, perMs: 3_600_000 };

function anyGlob(globs: readonly string[] | undefined): (values: readonly string[]) => boolean {
  if (!globs) return () => true;
  const matchers = globs.map((g) => globMatcher(g));
  return (values) => values.some((v) => matchers.some((m) => m(v)));
}

/** Who-data conditions: each given one must hold, on a known `who` only. */
function whoMatcher(match: RuleInput['match']): (who: Who | null | undefined) => boolean {
  const { user, notUser, exe, notExe } = match;
  if (!user && !notUser && !exe && !notExe) return () => true;
  const users = anyGlob(user);
  const notUsers = anyGlob(notUser);
  const exes = anyGlob(exe);
  const notExes = anyGlob(notExe);
  const namesOf = (w: Who): string[] =>
    [w.user, w.uid === null ? null : String(w.uid), w.auser ?? null, w.auid === null || w.auid === undefined ? null : String(w.auid)].filter((n): n is string => n !== null);
  return (who) => {
    if (!who) return false;
    const names = namesOf(who);
    if (user && !users(names)) return false;
    if (notUser && notUsers(names)) return false;
    if (exe && (who.exe === null || !exes([who.exe]))) return false;
    if (notExe && (who.exe === null || notExes([who.exe]))) return false;
    return true;
  };
}

function compile(rule: RuleInput): Rule {
  const agentGlob = anyGlob(rule.match.agent);
  const defaultGroup: GroupBy = rule.when === 'change' || rule.when === 'diff' ? (rule.threshold ? 'agent' : 'path') : rule.when === 'verify-failed' ? 'rule' : 'agent';
  return {
    id: rule.id,
    description: rule.description,
    severity: rule.severity,
    when: rule.when,
    groupBy: rule.groupBy ?? defaultGroup,
    count: rule.threshold?.count ?? 1,
    windowMs: rule.threshold?.window ?? 0,
    forMs: rule.for ?? 0,
    resolveAfterMs: rule.resolveAfter ?? rule.threshold?.window ?? DEFAULT_RESOLVE_MS,
    repeatMs: rule.repeat,
    limit: rule.limit ? { incidents: rule.limit.incidents, perMs: rule.limit.per } : DEFAULT_LIMIT,
    notify: rule.notify,
    fingerprint: JSON.stringify(rule),
    // A rule with an agent glob never matches what has no agent (the default config, the trail's verify).
    agentMatches: (agentId) => (rule.match.agent ? agentId !== null && agentGlob([agentId]) : true),
    pathMatches: anyGlob(rule.match.path),
    types: rule.match.type,
    important: rule.match.important,
    origin: rule.match.origin,
    patch: rule.match.patch === undefined ? undefined : new RegExp(rule.match.patch, rule.match.patchFlags),
    redacted: rule.match.redacted,
    whoMatches: whoMatcher(rule.match),
  };
}

/** `rules[2] (mass-delete).threshold.window: …`: the rule's index and id, then the field. */
function describeIssue(raw: unknown, at: readonly PropertyKey[], message: string): string {
  let where = at.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') || '(file)';
  const [top, index] = at;
  if (top === 'rules' && typeof index === 'number') {
    const id = (raw as { rules?: Array<{ id?: unknown }> } | null)?.rules?.[index]?.id;
    if (typeof id === 'string') where = where.replace(`rules[${index}]`, `rules[${index}] (${id})`);
  }
  return `${where}: ${message}`;
}

/**
 * Parses and compiles a rules file's content (already read from YAML or
 * JSON). Throws {@link RulesFileError} listing every problem, each naming the
 * rule and the field.
 */
export function parseRules(raw: unknown, file: string): RuleSet {
  const problems: string[] = [];
  const shape = rulesFileSchema.safeParse(raw);
  if (!shape.success) problems.push(...shape.error.issues.map((issue) => describeIssue(raw, issue.path, issue.message)));
  const targets = shape.success ? shape.data.targets : {};
  const rules: RuleInput[] = [];
  const seen = new Set<string>();
  (shape.success ? shape.data.rules : []).forEach((value, i) => {
    const id = (value as { id?: unknown } | null)?.id;
    if (typeof id === 'string') {
      if (seen.has(id)) problems.push(describeIssue(raw, ['rules', i, 'id'], `duplicate rule id ${JSON.stringify(id)}`));
      seen.add(id);
    }
    const result = checkedRuleSchema.safeParse(value);
    if (!result.success) {
      problems.push(...result.error.issues.map((issue) => describeIssue(raw, ['rules', i, ...issue.path], issue.message)));
      return;
    }
    result.data.notify.forEach((name, j) => {
      if (shape.success && !Object.hasOwn(targets, name)) problems.push(describeIssue(raw, ['rules', i, 'notify', j], `no target named ${JSON.stringify(name)} in targets`));
    });
    rules.push(result.data);
  });
  if (problems.length > 0) throw new RulesFileError(file, problems);
  return { file, rules: rules.filter((r) => r.enabled).map(compile), targets };
}

/**
 * Reads a rules file (YAML, of which JSON is a subset) and compiles it.
 *
 * @example
 * const ruleSet = await loadRulesFile('/etc/fso/rules.yml');
 */
export async function loadRulesFile(file: string): Promise<RuleSet> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    throw new RulesFileError(absolute, [`cannot read: ${(err as Error).message}`], { cause: err });
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    throw new RulesFileError(absolute, [`not YAML: ${(err as Error).message.split('\n')[0] ?? ''}`], { cause: err });
  }
  return parseRules(raw, absolute);
}
