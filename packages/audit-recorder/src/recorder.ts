import { chmod, mkdir, stat } from 'node:fs/promises';
import os from 'node:os';
import { DEFAULT_TOPIC_PREFIX, ackSchema, createSilentLogger, createTopics, endMqtt, isoFromMs } from '@fso/common';
import type { HealthState, Logger } from '@fso/common';
import type { MqttClient } from 'mqtt';
import type { Registry } from 'prom-client';
import { AuditWriter } from './auditWriter.js';
import type { CommitStats } from './auditWriter.js';
import { classifyMessage } from './classify.js';
import { AuditDirError } from '@fso/audit-trail';
import { SubscribeError } from './errors.js';
import type { AuditWriteError } from './errors.js';
import type { AckMark } from './ledger.js';
import { loadLedger } from './loadLedger.js';
import { RecentIds } from './recentIds.js';
import { createRecorderMetrics } from './recorderMetrics.js';
import { connectSubscriber } from './subscriber.js';

/** Options of {@link startRecorder}. */
export interface RecorderOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`. */
  brokerUrl: string;
  /** Audit directory; created 0700 when missing. */
  dir: string;
  /** Topic prefix; default `fso`. */
  topicPrefix?: string;
  /** MQTT client id, stable across restarts so the broker keeps the session; default `fso-audit-<hostname>`. */
  clientId?: string;
  logger?: Logger;
  /** How long a message waits for others to share its fsync; default 20 ms. */
  commitIntervalMs?: number;
  /** Most messages in one commit; default 5000. */
  maxBatch?: number;
  username?: string;
  /** A file holding the broker password (re-read on reconnect). */
  passwordFile?: string;
  /** CA certificate (PEM file) for mqtts:// and wss:// brokers. */
  caFile?: string;
  /** How long the first connection may take; default 10 s. */
  connectTimeoutMs?: number;
}

/** A running recorder. */
export interface Recorder {
  /** The audit directory. */
  readonly dir: string;
  /** The MQTT client id. */
  readonly clientId: string;
  /**
   * Settles only if the recorder fails (a write or fsync error): it then has
   * stopped acknowledging, logged a fatal line and closed itself, and this
   * promise resolves with the {@link AuditWriteError}. It never rejects and
   * stays pending while all is well. A daemon exits non-zero on it.
   */
  readonly failed: Promise<AuditWriteError>;
  /** Its Prometheus metrics (serve them with `startHealthServer`). */
  readonly metrics: Registry;
  /** Live unless a write failed; ready when also connected and subscribed. */
  health(): HealthState;
  /** Commits what is queued, disconnects, closes every file. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the audit recorder: repairs and reads its audit directory, connects
 * with a persistent session, subscribes to everything under the prefix, and
 * appends every message to the day's JSONL files in group commits, acking
 * each agent's contiguous seq once it is fsync'd.
 *
 * @example
 * const recorder = await startRecorder({ brokerUrl: 'mqtt://127.0.0.1:1883', dir: './audit' });
 * recorder.failed.then((err) => { log.fatal({ err }); process.exitCode = 1; });
 * await recorder.close();
 */
export async function startRecorder(options: RecorderOptions): Promise<Recorder> {
  const topics = createTopics(options.topicPrefix ?? DEFAULT_TOPIC_PREFIX);
  const clientId = options.clientId ?? `fso-audit-${os.hostname()}`;
  const log = (options.logger ?? createSilentLogger()).child({ component: 'recorder', dir: options.dir });
  await mkdir(options.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw new AuditDirError(options.dir, 'cannot create the audit directory', { cause: err });
  });
  // An existing directory keeps whatever mode it had: the trail is for its owner's eyes only.
  const mode = (await stat(options.dir)).mode & 0o777;
  if (mode !== 0o700) {
    await chmod(options.dir, 0o700).catch((err: unknown) => {
      throw new AuditDirError(options.dir, 'cannot restrict the audit directory to its owner (0700)', { cause: err });
    });
    log.warn({ was: mode.toString(8) }, 'audit directory mode set to 0700');
  }
  const ledger = await loadLedger(options.dir, log);

  let client: MqttClient | undefined;
  let reportFailure: (error: AuditWriteError) => void = () => {};
  const failed = new Promise<AuditWriteError>((resolve) => (reportFailure = resolve));
  let closing: Promise<void> | undefined;

  let subscribed = false;
  const connected = (): boolean => subscribed && client !== undefined && client.connected && !client.disconnecting;
  const metrics = createRecorderMetrics({ queued: () => writer.queued, connected });
  const publishAcks = (acks: AckMark[], commit: CommitStats): void => {
    metrics.committed(commit);
    // After close began the client is ending; unacked records are resent by their agents and acked then.
    if (!client || client.disconnecting) return;
    for (const mark of acks) {
      metrics.acked(mark.agentId, mark.seq);
      const ack = ackSchema.parse({ schema: 'fso.ack/1', epoch: mark.epoch, seq: mark.seq, at: isoFromMs(Date.now()) });
      client.publish(topics.ack(mark.agentId), JSON.stringify(ack), { qos: 1, retain: true }, (err) => {
        if (err) log.warn({ err, agentId: mark.agentId }, 'ack publish failed; the next commit or duplicate resends it');
      });
    }
  };
  const writer = new AuditWriter({
    dir: options.dir,
    ledger,
    log,
    commitIntervalMs: options.commitIntervalMs ?? 20,
    maxBatch: options.maxBatch ?? 5000,
    onCommit: publishAcks,
    onFail: (error) => {
      log.fatal({ err: error, file: error.path }, 'audit write failed: no more acks, stopping');
      void close().finally(() => reportFailure(error));
    },
  });

  // receivedAt never goes backwards (not even when the wall clock does), so a
  // chain's lines stay in day order and tail can merge files by receivedAt.
  let lastMs = ledger.lastReceivedAt ? Date.parse(ledger.lastReceivedAt) : 0;
  const receivedAt = (): string => isoFromMs((lastMs = Math.max(lastMs, Date.now())));

  const alertIds = new RecentIds(10_000);
  const onMessage = (topic: string, payload: Buffer, retained: boolean): void => {
    const entry = classifyMessage({ topic, payload, retained, receivedAt: receivedAt() }, topics.prefix);
    if (!entry) return;
    if (entry.type === 'record' && entry.alertId !== undefined && !alertIds.add(entry.alertId)) return;
    if (entry.type === 'rejected') log.warn({ topic, reason: entry.reason, payloadBytes: entry.payloadBytes }, 'rejected message');
    writer.enqueue(entry);
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Commit (and ack) what is queued while still connected, then stop intake and commit the rest.
      await writer.flush();
      if (client) await endMqtt(client);
      await writer.close();
      log.info('recorder stopped');
    })();
    return closing;
  };

  // Seq ranges of older epochs that can never arrive, left unwritten by a crash between two writes.
  for (const { agentId, epoch } of ledger.closedEpochs()) {
    writer.closeEpoch(agentId, epoch, topics.status(agentId), receivedAt());
  }
  await writer.flush();
  if (writer.failed) {
    await close();
    throw writer.failed;
  }

  try {
    client = await connectSubscriber({
      url: options.brokerUrl,
      clientId,
      username: options.username,
      passwordFile: options.passwordFile,
      caFile: options.caFile,
      connectTimeoutMs: options.connectTimeoutMs,
      onMessage,
    });
    client.on('offline', () => log.warn('broker connection lost; reconnecting'));
    client.on('reconnect', () => log.debug('reconnecting'));
    client.on('error', (err) => {
      if (!closing) log.warn({ err }, 'mqtt error');
    });
    const [grant] = await client.subscribeAsync(topics.all(), { qos: 1 });
    if (!grant || grant.qos === 128) throw new SubscribeError(topics.all(), clientId);
    subscribed = true;
  } catch (err) {
    await close();
    throw err;
  }
  log.info({ clientId, topic: topics.all(), broker: options.brokerUrl }, 'recording');
  const health = (): HealthState => {
    const reasons: string[] = [];
    if (writer.failed) reasons.push(`audit write failed: ${writer.failed.message}`);
    else if (closing) reasons.push('stopping');
    if (!connected()) reasons.push('not connected to the broker');
    return { live: !writer.failed, ready: reasons.length === 0, reasons };
  };
  return { dir: options.dir, clientId, failed, metrics: metrics.registry, health, close };
}
