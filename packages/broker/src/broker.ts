import { randomUUID } from 'node:crypto';
import { Aedes } from 'aedes';
import { createSilentLogger } from '@fso/common';
import type { Logger } from '@fso/common';
import { attachBrokerLog, createAuthorizePublish } from './brokerLog.js';
import { listenTcp, listenWebSocket } from './listeners.js';
import type { Listener } from './listeners.js';
import { openStorage } from './storage.js';
import type { Storage } from './storage.js';

/** Default address: loopback only; pass `0.0.0.0` (or `::`) to serve other hosts. */
export const DEFAULT_BROKER_HOST = '127.0.0.1';
/** Default MQTT port (IANA's for MQTT without TLS). */
export const DEFAULT_BROKER_PORT = 1883;

/** Options of {@link startBroker}. */
export interface BrokerOptions {
  /** Address to listen on (TCP and WebSocket); default {@link DEFAULT_BROKER_HOST}. */
  host?: string;
  /** MQTT over TCP port; default {@link DEFAULT_BROKER_PORT}; 0 picks a free one. */
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
  const port = checkPort(options.port ?? DEFAULT_BROKER_PORT, 'port');
  const wsPort = options.wsPort === undefined ? undefined : checkPort(options.wsPort, 'wsPort');
  const log = (options.logger ?? createSilentLogger()).child({ component: 'broker' });

  const storage = options.dataDir === undefined ? undefined : await openStorage(options.dataDir, log);
  let aedes: Aedes;
  try {
    aedes = await Aedes.createBroker({
      id: createBrokerId(),
      // undefined: aedes's in-memory persistence.
      persistence: storage?.persistence,
      authorizePublish: createAuthorizePublish(log),
    });
  } catch (err) {
    await storage?.close();
    throw err;
  }
  attachBrokerLog(aedes, log);

  const listeners: Listener[] = [];
  try {
    listeners.push(await listenTcp(aedes, host, port, log));
    if (wsPort !== undefined) listeners.push(await listenWebSocket(aedes, host, wsPort, log));
  } catch (err) {
    await shutdown(aedes, listeners, storage);
    throw err;
  }
  const tcp = listeners[0] as Listener;
  const ws = listeners[1];

  let closing: Promise<void> | undefined;
  const broker: Broker = {
    url: formatUrl('mqtt', host, tcp.port),
    port: tcp.port,
    wsUrl: ws ? formatUrl('ws', host, ws.port) : undefined,
    wsPort: ws?.port,
    dataDir: storage?.dataDir,
    aedes,
    close: () => {
      closing ??= (async () => {
        log.info('broker closing');
        await shutdown(aedes, listeners, storage);
        log.info('broker closed');
      })();
      return closing;
    },
  };
  const urls = [broker.url, broker.wsUrl].filter((u) => u !== undefined);
  log.info(
    { url: broker.url, wsUrl: broker.wsUrl, storage: storage?.dataDir ?? 'memory' },
    `listening on ${urls.join(' and ')}`,
  );
  return broker;
}

/** Closes in the order that loses nothing: stop accepting, close clients (wills), drop leftovers, close storage. */
async function shutdown(aedes: Aedes, listeners: readonly Listener[], storage: Storage | undefined): Promise<void> {
  const stopped = listeners.map((listener) => listener.close());
  await new Promise<void>((resolve) => aedes.close(() => resolve()));
  for (const listener of listeners) listener.destroyConnections();
  await Promise.all(stopped);
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
function formatUrl(scheme: 'mqtt' | 'ws', host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
