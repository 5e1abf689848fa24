import path from 'node:path';
import { z } from 'zod';

/**
 * The zod schemas of every FSO message and of the agent config: the one
 * source of truth for the wire format (../../../docs/protocol.md). Types are
 * derived with `z.infer`, never written twice.
 */

/** `agentId` as DESIGN.md fixes it: also safe as one MQTT topic level and one file name. */
export const AGENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const agentIdSchema = z
  .string()
  .regex(AGENT_ID_PATTERN, 'agent id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

/** ISO 8601 UTC with milliseconds, e.g. `2026-11-22T10:00:00.123Z`. */
export const timestampSchema = z.iso.datetime({ precision: 3 });

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits');
const seqSchema = z.number().int().min(1);
const epochSchema = z.string().min(1).max(64);

export const EVENT_TYPES = ['create', 'modify', 'delete', 'rename'] as const;
export const eventTypeSchema = z.enum(EVENT_TYPES);

export const ENTRY_KINDS = ['file', 'directory', 'symlink'] as const;
export const entryKindSchema = z.enum(ENTRY_KINDS);

/**
 * Where an event comes from: `live`, the watcher saw it happen; `scan`, a
 * walk compared the tree with the baseline (a start, a rescan after an
 * overflow) and reports the net change.
 */
export const ORIGINS = ['live', 'scan'] as const;
export const originSchema = z.enum(ORIGINS);
export type Origin = z.infer<typeof originSchema>;

/** Why an event carries no `sha256` (an FSO addition to DESIGN.md, see docs/protocol.md). */
export const HASH_SKIP_REASONS = ['not-regular', 'too-large', 'unreadable', 'vanished'] as const;

/**
 * The fields every sequenced agent message (event, diff, gap) carries after
 * `schema`: its id and where it stands in its agent's epoch.
 */
const sequencedFields = {
  id: z.string().min(1).max(200),
  agentId: agentIdSchema,
  epoch: epochSchema,
  seq: seqSchema,
};

/**
 * Where an event's `who` came from: `fanotify`, the kernel named the process
 * (a filesystem mark), and the agent read its ids from /proc at once;
 * `audit`, Linux audit's record of the syscall (auditd's log, a watch rule
 * per root).
 */
export const WHO_SOURCES = ['fanotify', 'audit'] as const;

/**
 * Why an event has `who: null` (an FSO addition, issue 16): the host gives no
 * source (`not-root`, `unsupported`: no fanotify or no addon), the change was
 * found by a walk (`scan`), no record of it came from the kernel (`no-record`:
 * a change made before the mark, a directory gone before its name was read),
 * or the process had exited before its ids were read (`process-gone`).
 */
export const WHO_MISSING_REASONS = ['not-root', 'unsupported', 'scan', 'no-record', 'process-gone'] as const;

const idSchema = z.number().int().min(0).nullable();

/** The user and process behind a change, as the host told it. */
export const whoSchema = z.object({
  /** Real user id and its name (null where neither /etc/passwd nor NSS has one). */
  uid: idSchema,
  user: z.string().nullable(),
  gid: idSchema,
  /** Effective user id (differs from `uid` in a setuid program) and its name. */
  euid: idSchema.optional(),
  euser: z.string().nullable().optional(),
  /** The login user id (the audit uid: who logged in, through su or sudo), null when unset. */
  auid: idSchema.optional(),
  auser: z.string().nullable().optional(),
  pid: z.number().int().min(0),
  ppid: idSchema.optional(),
  /** The executable (null when the process was exiting: its exe link is gone) and its command name. */
  exe: z.string().nullable(),
  comm: z.string().nullable(),
  source: z.enum(WHO_SOURCES),
});
export type Who = z.infer<typeof whoSchema>;

/**
 * Who made a change, on one line: `alice(1000) vim[4242] /usr/bin/vim.basic`,
 * with the login user when it is another (`root(0) login alice(1000) vim[77] …`);
 * a uid without a name is `uid(1234)`, an unknown executable is left out.
 */
export function describeWho(who: Who): string {
  const named = (name: string | null | undefined, id: number | null | undefined): string => `${name ?? 'uid'}(${id ?? '?'})`;
  const login = who.auid !== undefined && who.auid !== null && who.auid !== who.uid ? ` login ${named(who.auser, who.auid)}` : '';
  return `${named(who.user, who.uid)}${login} ${who.comm ?? '?'}[${who.pid}]${who.exe ? ` ${who.exe}` : ''}`;
}
export type WhoMissingReason = (typeof WHO_MISSING_REASONS)[number];

/** One observed change of one path. */
export const eventSchema = z.object({
  schema: z.literal('fso.event/1'),
  ...sequencedFields,
  type: eventTypeSchema,
  path: z.string().min(1),
  oldPath: z.string().min(1).optional(),
  root: z.string().min(1),
  kind: entryKindSchema,
  size: z.number().int().min(0).nullable(),
  mtime: timestampSchema.nullable(),
  sha256: sha256Schema.nullable(),
  hashSkipped: z.enum(HASH_SKIP_REASONS).nullable().optional(),
  important: z.boolean(),
  origin: originSchema,
  /** Who made the change (an FSO addition, issue 16): absent with `--who off`, null with `whoMissing` saying why. */
  who: whoSchema.nullable().optional(),
  whoMissing: z.enum(WHO_MISSING_REASONS).optional(),
  observedAt: timestampSchema,
  emittedAt: timestampSchema,
});
export type FsoEvent = z.infer<typeof eventSchema>;
export type EventType = z.infer<typeof eventTypeSchema>;
export type EntryKind = z.infer<typeof entryKindSchema>;
export type HashSkipReason = (typeof HASH_SKIP_REASONS)[number];

export const DIFF_SKIP_REASONS = ['binary', 'too-large', 'timeout', 'unreadable', 'nodiff'] as const;
export const diffSkipReasonSchema = z.enum(DIFF_SKIP_REASONS);
export type DiffSkipReason = z.infer<typeof diffSkipReasonSchema>;

/**
 * The kind named in a redaction marker `[REDACTED:<kind>:<hash>]`: a built-in
 * kind (`private-key`, `password`…) or the name of a configured pattern.
 */
export const REDACTION_KIND_PATTERN = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const redactionKindSchema = z.string().regex(REDACTION_KIND_PATTERN, 'kind must match ^[a-z0-9][a-z0-9_-]{0,39}$');

/** How many secrets of one kind a diff's patch had replaced. */
export const redactionSchema = z.object({ kind: redactionKindSchema, count: z.number().int().min(1) });
export type Redaction = z.infer<typeof redactionSchema>;

/** The unified diff of an important file, published after its event. */
export const diffSchema = z.object({
  schema: z.literal('fso.diff/1'),
  ...sequencedFields,
  eventId: z.string().min(1).max(200),
  path: z.string().min(1),
  format: z.literal('unified'),
  patch: z.string().nullable(),
  added: z.number().int().min(0),
  removed: z.number().int().min(0),
  skipped: diffSkipReasonSchema.nullable(),
  /** Secrets the agent replaced in `patch` by `[REDACTED:<kind>:<hash>]` markers (an FSO addition, see docs/protocol.md). */
  redactions: z.array(redactionSchema).max(256).optional(),
  observedAt: timestampSchema,
  emittedAt: timestampSchema,
});
export type FsoDiff = z.infer<typeof diffSchema>;

/**
 * Why an agent announces a `gap` message: `watcher-overflow` when the
 * kernel's inotify queue overflowed (fs.inotify.max_queued_events), so
 * changes between `since` and `until` may be missing individually.
 */
export const WATCH_GAP_REASONS = ['watcher-overflow'] as const;

/**
 * An agent's announcement that its watcher may have missed changes (an FSO
 * addition to DESIGN.md, see docs/protocol.md). Sequenced like events and
 * diffs, so it goes through the outbox and is never lost. The agent rescans
 * `roots` right after: what changed in the window is then reported as events
 * with `origin: "scan"` (the net change per path, not every step).
 */
export const gapMessageSchema = z.object({
  schema: z.literal('fso.gap/1'),
  ...sequencedFields,
  reason: z.enum(WATCH_GAP_REASONS),
  /** The watched roots a rescan covers (every root: the kernel queue is shared). */
  roots: z.array(z.string().min(1)).max(256),
  /** Changes from here … */
  since: timestampSchema,
  /** … to here may be missing as events; the rescan that follows reports the net difference. */
  until: timestampSchema,
  /** Watch notifications the agent received at once (the kernel queue's worth). */
  notifications: z.number().int().min(0),
  observedAt: timestampSchema,
  emittedAt: timestampSchema,
});
export type FsoGap = z.infer<typeof gapMessageSchema>;
export type WatchGapReason = (typeof WATCH_GAP_REASONS)[number];

const absolutePathSchema = z
  .string()
  .min(1)
  .refine((p) => path.isAbsolute(p), { message: 'path must be absolute' });

const globListSchema = z.array(z.string().min(1).max(1024)).max(1000);

/** One watched directory in an agent config. */
export const watchSpecSchema = z.strictObject({
  path: absolutePathSchema,
  recursive: z.boolean().default(true),
  include: globListSchema.default(['**/*']),
  exclude: globListSchema.default([]),
  events: z.array(eventTypeSchema).min(1).default([...EVENT_TYPES]),
  important: globListSchema.default([]),
});
export type WatchSpec = z.infer<typeof watchSpecSchema>;

/**
 * Content of files matching these globs never leaves the host, whatever
 * `diff.nodiff` says (it adds to them): the diff is `skipped: "nodiff"`, the
 * event still carries the hash. Matched against the absolute path (dotfiles
 * included); a glob without a slash matches the base name.
 */
export const DEFAULT_NODIFF = [
  '**/*.key', '**/*.pem', '**/*.p12', '**/*.pfx', '**/*.jks', '**/*.keystore', '**/*.kdbx', '**/*.keytab',
  '**/.env', '**/.env.*', '**/id_rsa*', '**/id_dsa*', '**/id_ecdsa*', '**/id_ed25519*',
  '**/shadow', '**/shadow-', '**/gshadow', '**/gshadow-', '**/.netrc', '**/.pgpass', '**/.git-credentials',
  '**/.htpasswd', '**/.aws/credentials', '**/.docker/config.json',
] as const;

const nodiffGlobSchema = z
  .string()
  .min(1)
  .max(1024)
  .refine((glob) => !glob.includes('/') || glob.startsWith('/') || glob.startsWith('**/'), {
    message: 'a nodiff glob with a slash is matched against the absolute path: start it with / or **/',
  });

/**
 * True when a regex source has a quantified group that itself repeats or
 * alternates (`(a+)+`, `(a|ab)*`) or a backreference: the shapes that
 * backtrack exponentially. A heuristic, not a proof of linear time.
 */
function backtracksBadly(source: string): boolean {
  const groups: boolean[] = [];
  let repeats = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      if (/[1-9k]/.test(source[i + 1] ?? '')) return true;
      i++;
    } else if (c === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) if (source[i] === '\\') i++;
    } else if (c === '(') {
      groups.push(repeats);
      repeats = false;
    } else if (c === ')') {
      const inner: boolean = repeats;
      repeats = groups.pop() ?? false;
      if (inner && /^(?:[*+]|\{\d*,)/.test(source.slice(i + 1, i + 12))) return true;
      repeats ||= inner;
    } else if (c === '|' || c === '*' || c === '+' || (c === '{' && /^\{\d*,/.test(source.slice(i, i + 12)))) {
      repeats = true;
    }
  }
  return false;
}

/** An extra secret pattern for the agent's redactor: every match (or its `secret` named group) is replaced. */
export const redactPatternSchema = z
  .strictObject({
    name: redactionKindSchema,
    /** JavaScript regex source; the redactor adds the `g` and `d` flags. */
    pattern: z.string().min(1).max(1024),
    flags: z.string().regex(/^[imsuv]{0,4}$/, 'flags may only use i, m, s, u, v').optional(),
  })
  .superRefine(({ pattern, flags }, ctx) => {
    let regex: RegExp;
    try {
      regex = new RegExp(pattern, flags);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: `not a valid regex: ${(err as Error).message}` });
      return;
    }
    if (regex.test('')) ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'pattern must not match the empty string' });
    if (backtracksBadly(pattern)) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: 'pattern may backtrack exponentially (a repeated group that repeats or alternates inside, or a backreference)' });
    }
  });
export type RedactPattern = z.infer<typeof redactPatternSchema>;

/**
 * The largest patch a diff message carries (UTF-8 bytes, once redacted and
 * JSON-escaped), and the most `diff.maxPatchBytes` may be: a quarter of
 * MAX_PAYLOAD_BYTES. A larger patch is `skipped: "too-large"` with its line counts.
 */
export const DEFAULT_MAX_PATCH_BYTES = 4 * 1024 * 1024;

export const diffOptionsSchema = z.strictObject({
  maxFileBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Larger patches are skipped as too-large, with their line counts (an FSO addition); absent: DEFAULT_MAX_PATCH_BYTES. */
  maxPatchBytes: z.number().int().min(1024).max(DEFAULT_MAX_PATCH_BYTES).optional(),
  timeoutMs: z.number().int().min(1).max(60_000).default(1000),
  context: z.number().int().min(0).max(100).default(3),
  /** More globs whose content never leaves the host (DEFAULT_NODIFF always applies). */
  nodiff: z.array(nodiffGlobSchema).max(1000).default([]),
  /** More secret patterns, redacted like the built-in ones. */
  redact: z.array(redactPatternSchema).max(64).default([]),
});
export type DiffOptions = z.infer<typeof diffOptionsSchema>;

/** Hashing bounds (an FSO addition to DESIGN.md's config, see docs/protocol.md). */
export const hashOptionsSchema = z.strictObject({
  maxFileBytes: z.number().int().min(0).default(256 * 1024 * 1024),
});
export type HashOptions = z.infer<typeof hashOptionsSchema>;

/** Agent config: strict, an unknown key is an error. */
export const agentConfigSchema = z
  .strictObject({
    schema: z.literal('fso.config/1'),
    revision: z.number().int().min(0),
    watch: z.array(watchSpecSchema).max(256),
    diff: diffOptionsSchema.default(() => diffOptionsSchema.parse({})),
    hashing: hashOptionsSchema.default(() => hashOptionsSchema.parse({})),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.watch.forEach((spec, i) => {
      const normalized = path.resolve(spec.path);
      if (seen.has(normalized)) {
        ctx.addIssue({ code: 'custom', path: ['watch', i, 'path'], message: `duplicate watch path ${spec.path}` });
      }
      seen.add(normalized);
    });
  });
export type AgentConfig = z.infer<typeof agentConfigSchema>;
/** What a config file may say before defaults are filled in. */
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

export const WATCH_STATE_SCHEMA = z.object({
  path: z.string(),
  ready: z.boolean(),
  entries: z.number().int().min(0),
  error: z.string().nullable().optional(),
});

export const configStateSchema = z.enum(['none', 'applied', 'rejected']);

/** Retained agent status; the last will publishes the same with `state: "offline"`. */
export const statusSchema = z.object({
  schema: z.literal('fso.status/1'),
  agentId: agentIdSchema,
  state: z.enum(['online', 'offline']),
  hostname: z.string(),
  version: z.string(),
  epoch: epochSchema,
  lastSeq: z.number().int().min(0),
  config: z.object({
    revision: z.number().int().min(0).nullable(),
    state: configStateSchema,
    error: z.string().nullable(),
    /** Where the config came from: its own topic, the default topic, the state dir at start, or CLI flags. */
    source: z.enum(['agent', 'default', 'saved', 'cli']).optional(),
    /** The revision in force (differs from `revision` when the last one was rejected). */
    appliedRevision: z.number().int().min(0).nullable().optional(),
  }),
  watching: z.array(WATCH_STATE_SCHEMA),
  /** The durable outbox: messages not yet acknowledged by the recorder (an FSO addition). */
  outbox: z
    .object({
      pending: z.number().int().min(0),
      ackedSeq: z.number().int().min(0),
      bytes: z.number().int().min(0).optional(),
      full: z.boolean().optional(),
      /** Seq ranges given up because the outbox was full: the recorder writes them as gap records. */
      lost: z.array(z.object({ fromSeq: seqSchema, toSeq: seqSchema })).optional(),
    })
    .optional(),
  /** The kernel's watch queue (an FSO addition): its size, and the overflows the agent noticed (each one a gap message). */
  inotify: z
    .object({
      maxQueuedEvents: z.number().int().min(1),
      overflows: z.number().int().min(0),
      lastOverflowAt: timestampSchema.nullable(),
    })
    .optional(),
  /** Who-data (an FSO addition, issue 16): the mode asked, the source in use (null: none) and why none. */
  who: z
    .object({
      mode: z.enum(['auto', 'fanotify', 'audit', 'off']),
      source: z.enum(WHO_SOURCES).nullable(),
      reason: z.string().nullable(),
    })
    .optional(),
  at: timestampSchema,
});
export type AgentStatus = z.infer<typeof statusSchema>;
export type WatchState = z.infer<typeof WATCH_STATE_SCHEMA>;
export type ConfigState = z.infer<typeof configStateSchema>;

/** Published retained by the recorder: every message of `epoch` up to `seq` is fsync'd. */
export const ackSchema = z.object({
  schema: z.literal('fso.ack/1'),
  epoch: epochSchema,
  seq: z.number().int().min(0),
  at: timestampSchema,
});
export type Ack = z.infer<typeof ackSchema>;

export const RECORD_KINDS = ['event', 'diff', 'status', 'config', 'gap', 'alert'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** A `gap` audit record written by the recorder: a seq range of an agent that can never arrive. */
export const seqGapRecordSchema = z.object({
  record: z.literal('gap'),
  agentId: agentIdSchema,
  epoch: epochSchema,
  fromSeq: seqSchema,
  toSeq: seqSchema,
  reason: z.string(),
  topic: z.string(),
  receivedAt: timestampSchema,
});

/** A `gap` audit record of an agent's own `fso.gap/1` message: a time window its watcher may have missed. */
export const watchGapRecordSchema = gapMessageSchema.extend({
  record: z.literal('gap'),
  topic: z.string(),
  receivedAt: timestampSchema,
});

/** A `gap` audit line: either what can never arrive (seq range) or what the watcher may have missed (time window). */
export const gapRecordSchema = z.union([seqGapRecordSchema, watchGapRecordSchema]);
export type GapRecord = z.infer<typeof gapRecordSchema>;
