/**
 * @fso/alerts: rules evaluated centrally on the event stream (`fso-alert`),
 * alerts published on `fso/alerts/{ruleId}` and recorded in the audit trail,
 * and notifications (webhook, syslog, email).
 */
export { startAlertDaemon } from './alertDaemon.js';
export type { AlertDaemon, AlertDaemonOptions } from './alertDaemon.js';
export { createRuleEngine } from './engine.js';
export type { Observation, RuleEngine, RuleEngineOptions } from './engine.js';
export { GROUP_BYS, RULE_KINDS, loadRulesFile, parseRules } from './rules.js';
export type { GroupBy, Rule, RuleKind, RuleSet } from './rules.js';
export { createAlertMetrics } from './alertMetrics.js';
export type { AlertMetrics } from './alertMetrics.js';
export { RulesFileError } from './errors.js';
export { NOTIFIER_TYPES } from './notify/notifier.js';
export type { Notifier, NotifierType, NotifyOutcome } from './notify/notifier.js';
export { NotifyError, TargetConfigError } from './errors.js';
export { createDispatcher } from './notify/dispatcher.js';
export type { Dispatcher, DispatcherOptions } from './notify/dispatcher.js';
export { createNotifier, targetSchema } from './notify/targets.js';
export type { EmailSpec, SyslogSpec, TargetContext, TargetSpec, WebhookSpec } from './notify/targets.js';
export { SIGNATURE_HEADER, createWebhookNotifier, signBody } from './notify/webhook.js';
export { SD_ID, createSyslogNotifier, formatCef, formatSyslog } from './notify/syslog.js';
export { createEmailNotifier } from './notify/email.js';
