import type { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import type { Aedes, AedesOptions, Client } from 'aedes';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';

/** Errors of a client going away without DISCONNECT: routine, not a warning. */
const ROUTINE_CLIENT_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** The fields that identify a client in every log line; never its password nor a payload. */
function clientFields(client: Client | null | undefined): Record<string, unknown> {
  if (!client) return { clientId: null };
  // Over WebSocket aedes gets a stream and the upgrade request; over TCP the socket itself.
  const viaWebSocket = client.req !== undefined;
  const remoteAddress = viaWebSocket
    ? client.req?.socket.remoteAddress
    : client.conn instanceof Socket
      ? client.conn.remoteAddress
      : undefined;
  return { clientId: client.id ?? null, remoteAddress, transport: viaWebSocket ? 'ws' : 'mqtt' };
}

/**
 * aedes's `authorizePublish` with a log line for each refusal. It refuses
 * what aedes refuses by default (a client publishing under `$SYS/`, which
 * would let it fake broker state, see moscajs/aedes#597) and nothing else:
 * FSO's broker carries any topic, like the third-party brokers DESIGN.md
 * allows in its place.
 */
export function createAuthorizePublish(log: Logger): NonNullable<AedesOptions['authorizePublish']> {
  return (client, packet, callback) => {
    if (packet.topic.startsWith('$SYS/')) {
      log.warn({ ...clientFields(client), topic: packet.topic }, 'publish refused: $SYS/ topics are reserved for the broker');
      callback(new Error('$SYS/ topics are reserved for the broker'));
      return;
    }
    callback(null);
  };
}

/**
 * Logs what happens on the broker: connects (client id, address, transport),
 * disconnects, client and connection errors (which is how aedes reports a
 * refused SUBSCRIBE or PUBLISH: bad topic, `$SYS/`, too many levels) and its
 * own errors (a failed storage write), which would otherwise crash the
 * process as an unhandled 'error' event.
 */
export function attachBrokerLog(aedes: Aedes, log: Logger): void {
  aedes.on('client', (client) => {
    log.info({ ...clientFields(client), clean: client.clean }, 'client connected');
  });
  aedes.on('clientDisconnect', (client) => {
    log.info(clientFields(client), 'client disconnected');
  });
  aedes.on('keepaliveTimeout', (client) => {
    log.info(clientFields(client), 'client keepalive timed out');
  });
  aedes.on('clientError', (client, err) => {
    const code = errorCode(err);
    const level = code !== undefined && ROUTINE_CLIENT_ERRORS.has(code) ? 'debug' : 'warn';
    log[level]({ ...clientFields(client), code, reason: err.message }, 'client error, connection closed');
  });
  aedes.on('connectionError', (client, err) => {
    log.warn({ ...clientFields(client), code: errorCode(err), reason: err.message }, 'connection refused');
  });
  aedes.on('subscribe', (subscriptions, client) => {
    const topics = subscriptions.map((s) => ({ topic: s.topic, qos: s.qos }));
    log.debug({ ...clientFields(client), subscriptions: topics }, 'client subscribed');
  });
  // aedes's typings list no 'error' event, yet it emits one when a storage write fails.
  (aedes as EventEmitter).on('error', (err: Error) => {
    log.error({ code: errorCode(err), reason: err.message }, 'broker error');
  });
}
