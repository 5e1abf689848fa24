import os from 'node:os';
import path from 'node:path';
import { followAuditRecords, verifyAuditDir } from '@fso/audit-trail';
import {
  DEFAULT_TOPIC_PREFIX,
  alertSchema,
  createMqttClient,
  createSilentLogger,
  createTopics,
  diffSchema,
  endMqtt,
  eventSchema,
  gapMessageSchema,
  parseJson,
  parseTopic,
  statusSchema,
} from '@fso/common';
import type { FsoAlert, HealthState, Logger } from '@fso/common';
import type { MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import { createAlertMetrics } from './alertMetrics.js';
import { createRuleEngine } from './engine.js';
import type { Observation } from './engine.js';
import { createDispatcher } from './notify/dispatcher.js';
import type { Dispatcher } from './notify/dispatcher.js';
import type { Notifier } from './notify/notifier.js';
import { createNotifier } from './notify/targets.js';
import { loadRulesFile } from './rules.js';
import type { RuleSet } from './rules.js';

/** Options of {@link startAlertDaemon}. */
export interface AlertDaemonOptions {
  /** The rules file (YAML or JSON); reloaded by {@link AlertDaemon.reload} (SIGHUP in the CLI). */
  rulesFile: string;
  brokerUrl: string;
  /** Default `fso-alert-<hostname>`: a fixed id keeps its session, so the broker queues what arrives while it restarts. */
  clientId?: string;
  username?: string;
  passwordFile?: string;
  caFile?: string;
  topicPrefix?: string;
  /**
   * The recorder's audit directory, read only: with it, gap records the
   * recorder writes (seq ranges that can never arrive) reach `gap` rules, and
   * the trail is verified every `verifyIntervalMs` for `verify-failed` rules.
   */
  auditDir?: string;
  /** Default 10 minutes. */
  verifyIntervalMs?: number;
  /** How often quiet incidents are resolved and offline agents noticed; default 1 s. */
  tickMs?: number;
  /** Where secret files and env names of targets are read: default the rules file's directory and process.env. */
  env?: NodeJS.ProcessEnv;
  /** Retries of a notification; tests shorten them. */
  retry?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  log?: Logger;
}

/** A running fso-alert. */
export interface AlertDaemon {
  /** Reads the rules file again; an invalid one is refused (the running rules stay) and the error returned. */
  reload(): Promise<{ ok: true; rules: number } | { ok: false; error: Error }>;
  readonly metrics: Registry;
  health(): HealthState;
  /** Stops intake, resolves nothing, drains notifications for up to `drainMs` (default 5 s); a second call returns the same promise. */
  close(options?: { drainMs?: number }): Promise<void>;
}

interface Targets {
  fingerprint: string;
  notifiers: Notifier[];
  dispatcher: Dispatcher;
}

/**
 * Starts fso-alert: subscribes to the agents' events, diffs, gaps and
 * statuses, runs the rules on them, publishes every alert on
 * `fso/alerts/{ruleId}` (QoS 1; the recorder writes it into the trail) and
 * sends it to the rule's notification targets. Throws a RulesFileError for
 * an invalid rules file.
 *
 * @example
 * const daemon = await startAlertDaemon({ rulesFile: '/etc/fso/rules.yml', brokerUrl: 'mqtt://127.0.0.1:1883', auditDir: '/var/lib/fso/audit' });
 * process.on('SIGHUP', () => void daemon.reload());
 */
export async function startAlertDaemon(options: AlertDaemonOptions): Promise<AlertDaemon> {
  const log = options.log ?? createSilentLogger();
  const topics = createTopics(options.topicPrefix ?? DEFAULT_TOPIC_PREFIX);
  const source = `fso-alert@${os.hostname()}`;
  const env = options.env ?? process.env;
  let ruleSet: RuleSet = await loadRulesFile(options.rulesFile);
  let connected = false;
  let closing: Promise<void> | undefined;
  let lastVerify: { ok: boolean; detail: string } | undefined;

  const engineRef: { current?: ReturnType<typeof createRuleEngine> } = {};
  const metrics = createAlertMetrics({
    rules: () => ruleSet.rules.length,
    firing: () => engineRef.current?.firing() ?? new Map(),
    connected: () => connected,
  });

  const buildTargets = async (set: RuleSet): Promise<Targets> => {
    const notifiers: Notifier[] = [];
    try {
      for (const [name, spec] of Object.entries(set.targets)) {
        notifiers.push(await createNotifier(name, spec, { baseDir: path.dirname(set.file), env, log: log.child({ target: name }) }));
      }
    } catch (err) {
      await Promise.allSettled(notifiers.map((n) => n.close()));
      throw err;
    }
    const dispatcher = createDispatcher({
      notifiers,
      log,
      ...(options.retry ? { retry: options.retry } : {}),
      onOutcome: (target, outcome, seconds) => metrics.notified(target, outcome, seconds),
    });
    return { fingerprint: JSON.stringify(set.targets), notifiers, dispatcher };
  };
  let targets = await buildTargets(ruleSet);

  let client: MqttClient | undefined;
  const publish = (alert: FsoAlert): void => {
    const payload = JSON.stringify(alert);
    // QoS 1 queues in MQTT.js while the broker is away and is sent on reconnect.
    client?.publish(topics.alerts(alert.rule), payload, { qos: 1 }, (err) => {
      if (err && !closing) log.warn({ err, alert: alert.id }, 'alert publish failed');
    });
  };

  const engine = createRuleEngine({
    rules: ruleSet.rules,
    source,
    emit: (alert, rule) => {
      // An alert the schema refuses is a bug here, not bad input: say so, keep the stream flowing.
      const checked = alertSchema.safeParse(alert);
      if (!checked.success) {
        log.error({ rule: alert.rule, key: alert.key.slice(0, 200), issues: checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'an alert failed its own schema and was not sent');
        return;
      }
      metrics.alert(alert.rule, alert.state);
      log.info({ alert: alert.id, rule: alert.rule, state: alert.state, severity: alert.severity, key: alert.key, count: alert.count }, alert.summary);
      publish(checked.data);
      targets.dispatcher.dispatch(rule.notify, checked.data);
    },
  });
  engineRef.current = engine;
  metrics.rulesLoaded(ruleSet.rules.map((r) => r.id));

  const observe = (observation: Observation, kind: string): void => {
    metrics.evaluated(kind);
    engine.observe(observation);
  };

  const onMessage = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => {
    const parsed = parseTopic(topic, topics.prefix);
    if (!parsed) return;
    const json = parseJson(payload);
    if (!json.ok) {
      metrics.invalid();
      return;
    }
    switch (parsed.kind) {
      case 'event': {
        const r = eventSchema.safeParse(json.value);
        if (r.success) observe({ what: 'event', event: r.data }, 'event');
        else metrics.invalid();
        return;
      }
      case 'diff': {
        const r = diffSchema.safeParse(json.value);
        if (r.success) observe({ what: 'diff', diff: r.data }, 'diff');
        else metrics.invalid();
        return;
      }
      case 'gap': {
        const r = gapMessageSchema.safeParse(json.value);
        if (r.success) observe({ what: 'gap', agentId: r.data.agentId, at: r.data.observedAt, reason: r.data.reason, messageId: r.data.id }, 'gap');
        else metrics.invalid();
        return;
      }
      case 'status': {
        const r = statusSchema.safeParse(json.value);
        if (r.success) observe({ what: 'status', status: r.data, retained: packet.retain === true }, 'status');
        else metrics.invalid();
        return;
      }
      default:
        return;
    }
  };

  const filters = [topics.allEvents(), topics.diffs('+'), topics.gaps('+'), topics.allStatus()];
  client = createMqttClient({
    url: options.brokerUrl,
    clientId: options.clientId ?? `fso-alert-${os.hostname()}`.slice(0, 64),
    username: options.username,
    passwordFile: options.passwordFile,
    caFile: options.caFile,
    // The broker keeps the subscription and queues QoS 1 messages while this daemon restarts.
    clean: false,
  });
  client.on('message', (topic, payload, packet) => onMessage(topic, payload, packet));
  client.on('connect', (connack) => {
    // A session the broker kept already has the subscriptions; subscribing again is harmless and covers a lost one.
    client?.subscribe(filters, { qos: 1 }, (err, granted) => {
      const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (err || refused.length > 0) {
        connected = false;
        log.error({ err, refused, sessionPresent: connack.sessionPresent }, 'the broker refused the subscriptions fso-alert needs (role alerter)');
        return;
      }
      connected = true;
      log.info({ broker: options.brokerUrl }, 'connected and subscribed');
    });
  });
  client.on('offline', () => {
    connected = false;
    if (!closing) log.warn('broker connection lost; reconnecting');
  });
  client.on('error', (err) => {
    if (!closing) log.warn({ err }, 'mqtt error');
  });

  const ticker = setInterval(() => engine.tick(), options.tickMs ?? 1000);
  ticker.unref();

  const stopTrail = new AbortController();
  let trailTasks: Promise<unknown>[] = [];
  if (options.auditDir) {
    const auditDir = options.auditDir;
    const followGaps = (async () => {
      // Only seq gaps come from the trail: an agent's watch gap arrived on MQTT already.
      for await (const { record } of followAuditRecords(auditDir, { type: 'gap', since: new Date() }, { signal: stopTrail.signal })) {
        if (record.fromSeq === undefined) continue;
        const agentId = typeof record.agentId === 'string' ? record.agentId : '';
        if (!agentId) continue;
        const at = typeof record.receivedAt === 'string' ? record.receivedAt : new Date().toISOString();
        observe({ what: 'gap', agentId, at, reason: String(record.reason ?? 'gap'), messageId: null }, 'trail-gap');
      }
    })().catch((err: unknown) => {
      if (!stopTrail.signal.aborted) log.error({ err, auditDir }, 'following the audit trail for gap records stopped');
    });
    const verifyOnce = async (): Promise<void> => {
      try {
        const result = await verifyAuditDir(auditDir);
        const first = result.failure;
        const detail = result.ok ? 'intact' : first ? `${first.file}:${first.line} ${first.reason}` : 'broken';
        lastVerify = { ok: result.ok, detail };
        metrics.verified(result.ok);
        observe({ what: 'verify', ok: result.ok, detail }, 'verify');
      } catch (err) {
        log.warn({ err, auditDir }, 'could not verify the audit trail');
      }
    };
    const verifyLoop = (async () => {
      while (!stopTrail.signal.aborted) {
        await verifyOnce();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.verifyIntervalMs ?? 600_000);
          stopTrail.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
      }
    })();
    trailTasks = [followGaps, verifyLoop];
  }

  const reload: AlertDaemon['reload'] = async () => {
    try {
      const next = await loadRulesFile(options.rulesFile);
      if (JSON.stringify(next.targets) !== targets.fingerprint) {
        const old = targets;
        targets = await buildTargets(next);
        // What the old targets still had queued keeps its retries until the drain ends.
        void old.dispatcher.close({ drainMs: 30_000 });
      }
      ruleSet = next;
      engine.replaceRules(next.rules);
      metrics.rulesLoaded(next.rules.map((r) => r.id));
      metrics.reloaded('applied');
      log.info({ file: next.file, rules: next.rules.length }, 'rules reloaded');
      return { ok: true, rules: next.rules.length };
    } catch (err) {
      metrics.reloaded('refused');
      log.error({ err }, `rules reload refused, the running rules stay: ${(err as Error).message}`);
      return { ok: false, error: err as Error };
    }
  };

  return {
    reload,
    metrics: metrics.registry,
    health: () => {
      const reasons: string[] = [];
      if (!connected) reasons.push('broker not connected');
      if (lastVerify && !lastVerify.ok) reasons.push(`audit trail does not verify: ${lastVerify.detail}`);
      // A broken trail is an alert, not unreadiness: the daemon still does its job.
      return { live: !closing, ready: !closing && connected, reasons };
    },
    close: (closeOptions) => {
      closing ??= (async () => {
        clearInterval(ticker);
        stopTrail.abort();
        await Promise.allSettled(trailTasks);
        if (client) await endMqtt(client);
        await targets.dispatcher.close({ drainMs: closeOptions?.drainMs ?? 5000 });
      })();
      return closing;
    },
  };
}
