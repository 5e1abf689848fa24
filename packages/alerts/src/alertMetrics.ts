import { ALERT_STATES } from '@fso/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NotifyOutcome } from './notify/notifier.js';

/** fso-alert's Prometheus metrics (issue 14 §3), in a registry of their own. */
export interface AlertMetrics {
  readonly registry: Registry;
  /** A message or trail record the rules looked at. */
  evaluated(kind: string): void;
  /** A message that did not parse or validate (the recorder keeps it aside; here it is only counted). */
  invalid(): void;
  alert(rule: string, state: string): void;
  /** Rules now running: their alert series start at 0, so a rate() sees the first alert. */
  rulesLoaded(ids: readonly string[]): void;
  notified(target: string, outcome: NotifyOutcome, seconds: number): void;
  reloaded(outcome: 'applied' | 'refused'): void;
  /** The last verify of the trail: true, false, or undefined when none ran. */
  verified(ok: boolean): void;
}

/**
 * Creates fso-alert's metrics: what was evaluated, alerts by rule and state,
 * notifications by target and outcome with their durations, reloads, rules
 * and incidents firing, the broker connection and the trail's last verify.
 * Process metrics come with them, prefixed `fso_alert_`.
 */
export function createAlertMetrics(probe: { rules: () => number; firing: () => Map<string, number>; connected: () => boolean }): AlertMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fso_alert_' });
  const evaluated = new Counter({ name: 'fso_alert_events_evaluated_total', help: 'Messages and trail records the rules looked at, by kind', labelNames: ['kind'], registers: [registry] });
  const invalid = new Counter({ name: 'fso_alert_invalid_messages_total', help: 'Messages that did not parse or validate (not evaluated)', registers: [registry] });
  const alerts = new Counter({ name: 'fso_alert_alerts_total', help: 'Alerts published, by rule and state (firing, resolved)', labelNames: ['rule', 'state'], registers: [registry] });
  const notifications = new Counter({ name: 'fso_alert_notifications_total', help: 'Notification attempts, by target and outcome (sent, retried, failed, dropped)', labelNames: ['target', 'outcome'], registers: [registry] });
  const notifySeconds = new Histogram({
    name: 'fso_alert_notification_seconds', help: 'One notification attempt, by target', labelNames: ['target'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
  });
  const reloads = new Counter({ name: 'fso_alert_rules_reloads_total', help: 'Rules file reloads (SIGHUP), by outcome (applied, refused)', labelNames: ['outcome'], registers: [registry] });
  for (const outcome of ['applied', 'refused']) reloads.inc({ outcome }, 0);
  new Gauge({ name: 'fso_alert_rules', help: 'Rules running', registers: [registry], collect() { this.set(probe.rules()); } });
  new Gauge({
    name: 'fso_alert_incidents_firing', help: 'Incidents firing now, by rule', labelNames: ['rule'], registers: [registry],
    collect() {
      this.reset();
      for (const [rule, n] of probe.firing()) this.set({ rule }, n);
    },
  });
  new Gauge({ name: 'fso_alert_connected', help: '1 when connected to the broker and subscribed', registers: [registry], collect() { this.set(probe.connected() ? 1 : 0); } });
  const verified = new Gauge({ name: 'fso_alert_trail_verified', help: 'The last verify of the audit trail: 1 intact, 0 broken (absent without --audit-dir)', registers: [registry] });
  return {
    registry,
    evaluated: (kind) => evaluated.inc({ kind }),
    invalid: () => invalid.inc(),
    alert: (rule, state) => alerts.inc({ rule, state }),
    rulesLoaded: (ids) => {
      for (const rule of ids) for (const state of ALERT_STATES) alerts.inc({ rule, state }, 0);
    },
    notified: (target, outcome, seconds) => {
      notifications.inc({ target, outcome });
      if (outcome === 'sent' || outcome === 'retried' || outcome === 'failed') notifySeconds.observe({ target }, seconds);
    },
    reloaded: (outcome) => reloads.inc({ outcome }),
    verified: (ok) => verified.set(ok ? 1 : 0),
  };
}
