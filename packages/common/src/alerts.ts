import { z } from 'zod';
import { AGENT_ID_PATTERN, agentIdSchema, timestampSchema } from './schemas.js';

/**
 * A rule id: one topic level (`fso/alerts/{ruleId}`), so the same characters
 * as an agent id.
 */
export const RULE_ID_PATTERN = AGENT_ID_PATTERN;
export const ruleIdSchema = z.string().regex(RULE_ID_PATTERN, 'a rule id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

export const ALERT_SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export const alertSeveritySchema = z.enum(ALERT_SEVERITIES);
export type AlertSeverity = z.infer<typeof alertSeveritySchema>;

/** `firing` when a rule's condition starts to hold for a key, `resolved` when it stops. */
export const ALERT_STATES = ['firing', 'resolved'] as const;
export const alertStateSchema = z.enum(ALERT_STATES);
export type AlertState = z.infer<typeof alertStateSchema>;

/** One record that made an alert fire, as a pointer an auditor can follow into the trail. */
export const alertSampleSchema = z.object({
  /** What it was: an event type, `diff`, `gap`, `status` or `verify`. */
  what: z.string().max(32),
  agentId: agentIdSchema.nullable(),
  path: z.string().max(4096).nullable(),
  /** The event's or diff's `id`, when it had one. */
  messageId: z.string().max(200).nullable(),
  /** Who made an event's change, when the agent knew (issue 16): `alice(1000) vim[4242] /usr/bin/vim.basic`. */
  who: z.string().max(600).optional(),
  at: timestampSchema,
});
export type AlertSample = z.infer<typeof alertSampleSchema>;

/** Most samples one alert carries: enough to start an investigation, bounded whatever the count. */
export const MAX_ALERT_SAMPLES = 10;

/**
 * An alert (`fso/alerts/{ruleId}`, QoS 1, not retained), published by
 * `fso-alert` and recorded by the recorder like any other message.
 */
export const alertSchema = z.object({
  schema: z.literal('fso.alert/1'),
  /** Unique: `{ruleId}:{incident}:{state}`; the recorder writes an id once. */
  id: z.string().min(1).max(300),
  rule: ruleIdSchema,
  state: alertStateSchema,
  severity: alertSeveritySchema,
  /** What the alert is about within its rule (an agent, a path, `web-01:/srv/app`); one incident per key at a time. */
  key: z.string().max(4200),
  /** One line for a human: the rule's description and what was counted. */
  summary: z.string().max(2000),
  agentId: agentIdSchema.nullable(),
  path: z.string().max(4096).nullable(),
  /** Matching records in this incident so far (firing) or in all of it (resolved). */
  count: z.number().int().min(0),
  /** The first and last matching record's time. */
  firstAt: timestampSchema,
  lastAt: timestampSchema,
  samples: z.array(alertSampleSchema).max(MAX_ALERT_SAMPLES),
  /** Who evaluated the rule: the `fso-alert` instance. */
  source: z.string().max(200),
  at: timestampSchema,
});
export type FsoAlert = z.infer<typeof alertSchema>;
