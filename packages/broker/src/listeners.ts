import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '@fso/common';
import type { ConnectionGate } from './connectionGate.js';
import { BrokerListenError } from './errors.js';
import type { Transport } from './errors.js';
import { GuardedConnection } from './packetGuard.js';
import type { PacketLimits } from './packetGuard.js';

/** One open listener of the broker (TCP or WebSocket, plain or TLS). */
export interface Listener {
  /** The port it really listens on (the ephemeral one when asked for 0). */
  readonly port: number;
  /** Stops accepting connections; resolves once every connection it accepted has ended. Idempotent: a second call returns the same promise. */
  close(): Promise<void>;
  /** Destroys the connections still open (those aedes never registered: no CONNECT yet). */
  destroyConnections(): void;
  /** Replaces the TLS certificate and key for new connections (TLS listeners only). */
  setSecureContext?(options: TlsOptions): void;
}

/** What every listener shares. */
export interface ListenerContext {
  aedes: Aedes;
  host: string;
  /** TLS server options; plain TCP/WebSocket when absent. */
  tls?: TlsOptions;
  limits: PacketLimits;
  gate: ConnectionGate;
  /** Also bounds the TLS handshake and the WebSocket upgrade request. */
  connectTimeoutMs: number;
  log: Logger;
}

/** Hands a connection to aedes behind the packet guard, logging what the guard refuses. */
function handle(context: ListenerContext, inner: Duplex, request: IncomingMessage | undefined, info: { remoteAddress?: string; transport: Transport }): void {
  const { log } = context;
  const connection = new GuardedConnection(
    inner,
    context.limits,
    {
      onViolation: (violation, conn) => {
        const clientId = (conn as { client?: { id?: string | null } }).client?.id ?? null;
        log.warn({ ...info, clientId, ...violation }, `connection closed before parsing: ${violation.reason}`);
      },
      onThrottle: (conn) => {
        const clientId = (conn as { client?: { id?: string | null } }).client?.id ?? null;
        log.warn({ ...info, clientId, maxPublishRate: context.limits.maxPublishRate }, 'publish rate limit reached: reading from the client slowed down');
      },
    },
    info,
  );
  context.aedes.handle(connection, request);
}

/** Listens with MQTT over TCP (`mqtt`) or, with `context.tls`, over TLS (`mqtts`). */
export async function listenMqtt(context: ListenerContext, port: number): Promise<Listener> {
  const transport: Transport = context.tls ? 'mqtts' : 'mqtt';
  if (!context.tls) {
    const server = createNetServer({ noDelay: true });
    server.on('connection', (socket) => {
      if (context.gate.admit(socket, transport)) handle(context, socket, undefined, { remoteAddress: socket.remoteAddress, transport });
    });
    return listen(server, transport, context, port);
  }
  const server = createTlsServer({ ...context.tls, handshakeTimeout: context.connectTimeoutMs });
  // 'connection' is the raw TCP socket, before any handshake work: the place to bound connections.
  server.on('connection', (socket: Socket) => context.gate.admit(socket, transport));
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    handle(context, socket, undefined, { remoteAddress: socket.remoteAddress, transport });
  });
  server.on('tlsClientError', (err, socket) => {
    context.log.info({ transport, remoteAddress: socket.remoteAddress, reason: err.message }, 'TLS handshake failed');
  });
  const listener = await listen(server, transport, context, port);
  return { ...listener, setSecureContext: (options) => server.setSecureContext(options) };
}

/**
 * Listens with MQTT over WebSocket (`ws`, or `wss` with `context.tls`) on any
 * path, so MQTT.js's default `/mqtt` and a bare `ws://host:port` both work.
 */
export async function listenWebSocket(context: ListenerContext, port: number): Promise<Listener> {
  const transport: Transport = context.tls ? 'wss' : 'ws';
  const answer = (_request: IncomingMessage, response: ServerResponse): void => {
    // A plain HTTP request would otherwise hang: nothing else answers it here.
    response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
    response.end('this port speaks MQTT over WebSocket only\n');
  };
  const server = context.tls ? createHttpsServer({ ...context.tls, handshakeTimeout: context.connectTimeoutMs }, answer) : createHttpServer(answer);
  server.headersTimeout = context.connectTimeoutMs;
  server.requestTimeout = context.connectTimeoutMs;
  server.on('connection', (socket: Socket) => context.gate.admit(socket, transport));
  // One WebSocket message never needs to be more than one whole MQTT packet (fixed header: at most 5 bytes).
  const wss = new WebSocketServer({ server, maxPayload: context.limits.maxPacketBytes + 5 });
  wss.on('connection', (socket, request) => {
    handle(context, createWebSocketStream(socket), request, { remoteAddress: request.socket.remoteAddress, transport });
  });
  wss.on('wsClientError', (err, socket) => {
    const remoteAddress = (socket as Partial<Socket>).remoteAddress;
    context.log.warn({ transport, remoteAddress, reason: err.message }, 'WebSocket handshake refused');
  });
  // ws re-emits the http server's errors here; listen() already reports them (and an
  // EventEmitter 'error' without a listener would crash the broker).
  wss.on('error', () => undefined);
  const listener = await listen(server, transport, context, port);
  let closed: Promise<void> | undefined;
  return {
    ...listener,
    close: () => {
      if (!closed) {
        wss.close();
        closed = listener.close();
      }
      return closed;
    },
    setSecureContext: context.tls ? (options) => (server as ReturnType<typeof createHttpsServer>).setSecureContext(options) : undefined,
  };
}

/** Starts `server` on `host:port`; rejects with {@link BrokerListenError}. */
async function listen(server: Server, transport: Transport, context: ListenerContext, port: number): Promise<Listener> {
  const { host, log } = context;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const realPort = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening);
      reject(new BrokerListenError(transport, host, port, err));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
  // After start, an error (EMFILE on accept…) is logged; it must never crash the broker.
  server.on('error', (err) => log.error({ transport, reason: err.message }, 'listener error'));

  let closed: Promise<void> | undefined;
  return {
    port: realPort,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
      });
      return closed;
    },
    destroyConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
  };
}
