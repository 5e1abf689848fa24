import { createServer as createHttpServer } from 'node:http';
import { Socket, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import type { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '@fso/common';
import { BrokerListenError } from './errors.js';

/** One open listener of the broker (TCP or WebSocket). */
export interface Listener {
  /** The port it really listens on (the ephemeral one when asked for 0). */
  readonly port: number;
  /** Stops accepting connections; resolves once every connection it accepted has ended. */
  close(): Promise<void>;
  /** Destroys the connections still open (those aedes never registered: no CONNECT yet). */
  destroyConnections(): void;
}

/** Listens with MQTT over TCP on `host:port`, handing each connection to aedes. */
export async function listenTcp(aedes: Aedes, host: string, port: number, log: Logger): Promise<Listener> {
  const server = createNetServer({ noDelay: true }, (socket) => {
    aedes.handle(socket);
  });
  return listen(server, 'mqtt', host, port, log);
}

/**
 * Listens with MQTT over WebSocket on `host:port` (any path, so MQTT.js's
 * default `/mqtt` and a bare `ws://host:port` both work); each WebSocket
 * becomes a stream for aedes, with the upgrade request so aedes sees the
 * client's address.
 */
export async function listenWebSocket(aedes: Aedes, host: string, port: number, log: Logger): Promise<Listener> {
  const server = createHttpServer((_request, response) => {
    // A plain HTTP request would otherwise hang: nothing else answers it here.
    response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
    response.end('this port speaks MQTT over WebSocket only\n');
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (socket, request) => {
    aedes.handle(createWebSocketStream(socket), request);
  });
  wss.on('wsClientError', (err, socket) => {
    log.warn({ transport: 'ws', remoteAddress: socket instanceof Socket ? socket.remoteAddress : undefined, reason: err.message }, 'WebSocket handshake refused');
  });
  // ws re-emits the http server's errors here; listen() already reports them (and an
  // EventEmitter 'error' without a listener would crash the broker).
  wss.on('error', () => undefined);
  const listener = await listen(server, 'ws', host, port, log);
  return {
    ...listener,
    close: () => {
      wss.close();
      return listener.close();
    },
  };
}

/** Starts `server` on `host:port`; rejects with {@link BrokerListenError}. */
async function listen(server: Server, transport: 'mqtt' | 'ws', host: string, port: number, log: Logger): Promise<Listener> {
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
