import { randomUUID } from 'node:crypto';
import { Aedes } from 'aedes';
import { createSilentLogger, createTopics, isLoopback } from '@fso/common';
import type { HealthState, Logger } from '@fso/common';
import type { Registry } from 'prom-client';
import { createAccessControl } from './access.js';
import { deliverAfterConnack } from './connackFirst.js';
import type { AccessControl } from './access.js';
import { loadAuthenticator } from './authenticator.js';
import type { AuthOptions } from './authenticator.js';
import { attachBrokerLog } from './brokerLog.js';
import { createBrokerMetrics } from './brokerMetrics.js';
import { openClientIdRegistry } from './clientIds.js';
import type { ClientIdRegistry } from './clientIds.js';
import { createConnectionGate } from './connectionGate.js';
import { createDeliveryWindows } from './deliveryWindow.js';
import { BrokerClusterError, BrokerInsecureError } from './errors.js';
import { CLUSTER_MAX_INFLIGHT, resolveLimits } from './limits.js';
import type { BrokerLimits } from './limits.js';
import { listenMqtt, listenWebSocket } from './listeners.js';
import type { Listener, ListenerContext } from './listeners.js';
import { createLoginGuard } from './loginGuard.js';
import { openStorage } from './storage.js';
import { createMemoryPersistence } from './outgoingQueues.js';
import { openCluster } from './cluster.js';
import type { Storage } from './storage.js';
import { loadTlsOptions } from './tls.js';
import type { TlsFiles } from './tls.js';

/** Default address: loopback only; pass `0.0.0.0` (or `::`) to serve other hosts. */
export const DEFAULT_BROKER_HOST = '127.0.0.1';
/** Default MQTT port (IANA's for MQTT without TLS). */
export const DEFAULT_BROKER_PORT = 1883;
/** Default port with TLS (IANA's for MQTT over TLS). */
export const DEFAULT_BROKER_TLS_PORT = 8883;

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /**
   * Address to listen on (TCP and WebSocket); default {@link DEFAULT_BROKER_HOST}.
   * Anything but loopback needs `auth` (or `insecure`).
   */
  host?: string;
  /** MQTT over TCP port; default {@link DEFAULT_BROKER_PORT} ({@link DEFAULT_BROKER_TLS_PORT} with `tls`); 0 picks a free one. */
  port?: number;
  /** MQTT over WebSocket port (0 picks a free one); no WebSocket listener when absent. */
  wsPort?: number;
  /**
   * Keep retained messages, persistent sessions, their subscriptions and
   * their queued QoS 1/2 messages in a LevelDB database in this dir (created
   * 0700 if missing), so a restart keeps them. In memory when absent.
   */
  dataDir?: string;
  /** Where to log (child `{ component: 'broker' }`); silent when absent. */
  logger?: Logger;
  /** The FSO topic prefix the access rules are written for; default `fso`. */
  topicPrefix?: string;
  /** Logins: an auth file and/or JWT. Without, the broker is open (every client may do anything but write `$SYS`). */
  auth?: AuthOptions;
  /** Serve mqtts and wss instead of mqtt and ws. */
  tls?: TlsFiles;
  /** Allow a non-loopback `host` without `auth`. */
  insecure?: boolean;
  /** Resource limits; each defaults to {@link DEFAULT_LIMITS}. */
  limits?: Partial<BrokerLimits>;
  /**
   * Join a cluster of broker nodes through this Redis (`redis://host:6379`):
   * every node shares the message bus, retained messages and sessions
   * (issue 15 §2). Not with `dataDir`: the state is Redis's.
   */
  redisUrl?: string;
}

/** A running broker, from {@link startBroker}. */
export interface Broker {
  /** `mqtt://host:port` with the real port. */
  readonly url: string;
  readonly port: number;
  /** `ws://host:port` with the real port, when a WebSocket listener was asked for. */
  readonly wsUrl?: string;
  readonly wsPort?: number;
  /** The data dir in use, or undefined when state is kept in memory. */
  readonly dataDir?: string;
  /** The Aedes instance, for in-process publishing and events. */
  readonly aedes: Aedes;
  /** True when logins are checked (auth file or JWT). */
  readonly authenticated: boolean;
  /** The limits in force. */
  readonly limits: BrokerLimits;
  /**
   * Re-reads the auth file, the JWT key and the TLS files (what SIGHUP does):
   * new logins use them, clients whose auth file entry went away or changed
   * are disconnected. On error nothing changes and the error is thrown.
   */
  reload(): Promise<void>;
  /** Its Prometheus metrics (serve them with `startHealthServer`). */
  readonly metrics: Registry;
  /** Live and ready while it listens; neither once it is closing. */
  health(): HealthState;
  /**
   * Stops accepting connections, closes every client connection (publishing
   * their last wills as MQTT-3.1.2-8 requires), aedes and the database, so
   * the data dir can be reopened at once. Safe to call twice: returns the same promise.
   */
  close(): Promise<void>;
}

/**
 * Starts the embedded Aedes MQTT broker.
 *
 * @throws {BrokerListenError} when a port is taken or the address is unusable.
 * @throws {BrokerStorageError} when `dataDir` cannot be created or opened.
 * @example
 * const broker = await startBroker({ port: 0, wsPort: 0, dataDir: './broker-data', logger });
 * console.log(broker.url, broker.wsUrl); // mqtt://127.0.0.1:40123 ws://127.0.0.1:40125
 * await broker.close();
 */
export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  const host = options.host ?? DEFAULT_BROKER_HOST;
  const port = checkPort(options.port ?? (options.tls ? DEFAULT_BROKER_TLS_PORT : DEFAULT_BROKER_PORT), 'port');
  const wsPort = options.wsPort === undefined ? undefined : checkPort(options.wsPort, 'wsPort');
  const log = (options.logger ?? createSilentLogger()).child({ component: 'broker' });
  const topics = createTopics(options.topicPrefix);
  const limits = resolveLimits(options.limits, topics.prefix);
  const authOptions = options.auth ?? {};
  const wantsAuth = authOptions.authFile !== undefined || authOptions.jwt !== undefined;
  if (!wantsAuth && !options.insecure && !isLoopback(host)) throw new BrokerInsecureError(host);

  const loginGuard = createLoginGuard();
  const authenticator = await loadAuthenticator(authOptions, loginGuard.checks);
  for (const warning of authenticator?.warnings ?? []) log.warn(warning);
  const tls = options.tls ? await loadTlsOptions(options.tls) : undefined;
  if (authenticator && !tls && !isLoopback(host)) {
    log.warn({ host }, 'passwords and tokens cross the network in clear text: add --tls-cert and --tls-key');
  }

  if (options.redisUrl !== undefined && options.dataDir !== undefined) {
    throw new BrokerClusterError(options.redisUrl, new Error('--data-dir and --redis exclude each other: a cluster node keeps its state in redis'));
  }
  const cluster = options.redisUrl === undefined ? undefined : await openCluster(options.redisUrl, log);
  const storage = options.dataDir === undefined ? undefined : await openStorage(options.dataDir, log);
  const clientIds = await openClientIdRegistry(storage?.dataDir, log).catch(async (err: unknown) => {
    await storage?.close();
    throw err;
  });
  const access = createAccessControl({ topics, log, authenticator, clientIds, loginGuard, limits });
  // A cluster node always (its PUBACKs take Redis round trips: packet ids ran out), one broker when asked.
  const inflight = limits.maxInflight > 0 ? limits.maxInflight : cluster ? CLUSTER_MAX_INFLIGHT : 0;
  const windows = inflight > 0 ? createDeliveryWindows(inflight) : undefined;
  const persistence = cluster?.persistence ?? storage?.persistence ?? createMemoryPersistence();
  let aedes: Aedes;
  try {
    aedes = await Aedes.createBroker({
      id: createBrokerId(),
      // Retained messages and sessions in LevelDB with --data-dir, else aedes's memory; the outgoing queues indexed in memory either way (outgoingQueues.ts).
      // On a cluster node, each persistent session's deliveries behind a window of unacknowledged messages (deliveryWindow.ts).
      persistence: windows ? windows.wrap(persistence) : persistence,
      ...(cluster ? { mq: cluster.mq } : {}),
      connectTimeout: limits.connectTimeoutMs,
      maxTopicLevels: limits.maxTopicLevels,
      ...access.hooks,
      // The CONNACK first (MQTT-3.2.0-1), the in-flight window, then who may connect: all before aedes restores a session.
      preConnect: (client, packet, callback) => {
        deliverAfterConnack(client);
        windows?.attach(client);
        access.hooks.preConnect(client, packet, callback);
      },
    });
  } catch (err) {
    await clientIds.close();
    await storage?.close();
    await cluster?.close();
    throw err;
  }
  attachBrokerLog(aedes, log, access.identityOf);
  const metrics = createBrokerMetrics(aedes, topics, windows);
  access.attach(aedes);

  const context: ListenerContext = {
    aedes,
    host,
    tls,
    limits,
    gate: createConnectionGate(limits.maxConnections, log),
    connectTimeoutMs: limits.connectTimeoutMs,
    log,
  };
  const listeners: Listener[] = [];
  try {
    listeners.push(await listenMqtt(context, port));
    if (wsPort !== undefined) listeners.push(await listenWebSocket(context, wsPort));
  } catch (err) {
    await shutdown(aedes, listeners, storage, access, clientIds);
    await cluster?.close();
    throw err;
  }
  const tcp = listeners[0] as Listener;
  const ws = listeners[1];

  let closing: Promise<void> | undefined;
  const broker: Broker = {
    url: formatUrl(tls ? 'mqtts' : 'mqtt', host, tcp.port),
    port: tcp.port,
    wsUrl: ws ? formatUrl(tls ? 'wss' : 'ws', host, ws.port) : undefined,
    wsPort: ws?.port,
    dataDir: storage?.dataDir,
    aedes,
    authenticated: authenticator !== undefined,
    limits,
    metrics,
    health: () => (closing ? { live: false, ready: false, reasons: ['stopping'] } : { live: true, ready: true, reasons: [] }),
    reload: async () => {
      const next = await loadAuthenticator(authOptions, loginGuard.checks);
      const nextTls = options.tls ? await loadTlsOptions(options.tls) : undefined;
      if (next) access.replaceAuthenticator(next);
      for (const warning of next?.warnings ?? []) log.warn(warning);
      if (nextTls) for (const listener of listeners) listener.setSecureContext?.(nextTls);
      log.info({ auth: next?.summary, tls: nextTls !== undefined }, 'reloaded auth and TLS files');
    },
    close: () => {
      closing ??= (async () => {
        log.info('broker closing');
        await shutdown(aedes, listeners, storage, access, clientIds);
        await cluster?.close();
        log.info('broker closed');
      })();
      return closing;
    },
  };
  const urls = [broker.url, broker.wsUrl].filter((u) => u !== undefined);
  log.info(
    { url: broker.url, wsUrl: broker.wsUrl, storage: storage?.dataDir ?? 'memory', auth: authenticator?.summary ?? 'open', limits },
    `listening on ${urls.join(' and ')}`,
  );
  return broker;
}

/** Closes in the order that loses nothing: stop accepting, close clients (wills), drop leftovers, close storage. */
async function shutdown(
  aedes: Aedes,
  listeners: readonly Listener[],
  storage: Storage | undefined,
  access: AccessControl,
  clientIds: ClientIdRegistry,
): Promise<void> {
  access.close();
  const stopped = listeners.map((listener) => listener.close());
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
  for (const listener of listeners) listener.destroyConnections();
  await Promise.all(stopped);
  await clientIds.close();
  await storage?.close();
}

/**
 * A broker id that sorts after the ids of earlier runs. aedes-persistence-level
 * keys a session's queued messages by `brokerId:counter` and the counter starts
 * at 0 on each run, so with aedes's default random id a session that was
 * offline across a restart would get its queue in a scrambled order (and a
 * fixed id would overwrite old entries with new ones). Time first keeps it in
 * publish order, as long as the clock does not go back between runs.
 */
function createBrokerId(): string {
  return `fso-${Date.now().toString().padStart(15, '0')}-${randomUUID().slice(0, 8)}`;
}

function checkPort(port: number, name: string): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`invalid ${name} ${String(port)}: use an integer from 0 to 65535 (0 picks a free port)`);
  }
  return port;
}

/** `scheme://host:port`, with an IPv6 address in brackets. */
function formatUrl(scheme: 'mqtt' | 'mqtts' | 'ws' | 'wss', host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
