import type { EventEmitter } from 'node:events';
import type { Aedes, Client } from 'aedes';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import type { Identity } from './acl.js';
import { GuardedConnection } from './packetGuard.js';

/** Errors of a client going away without DISCONNECT: routine, not a warning. */
const ROUTINE_CLIENT_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * The fields that identify a client in every log line: client id, address,
 * transport and, once logged in, username and role. Never its password nor a payload.
 */
export function clientFields(client: Client | null | undefined, identity?: Identity): Record<string, unknown> {
  if (!client) return { clientId: null };
  const conn = client.conn instanceof GuardedConnection ? client.conn : undefined;
  return {
    clientId: client.id ?? null,
    remoteAddress: conn?.remoteAddress,
    transport: conn?.transport,
    ...(identity ? { username: identity.username, role: identity.role } : {}),
  };
}

/**
 * Logs what happens on the broker: connects (client id, address, transport,
 * identity), disconnects, client and connection errors (which is how aedes
 * reports a refused PUBLISH, a bad topic or too many levels) and its own
 * errors (a failed storage write), which would otherwise crash the process
 * as an unhandled 'error' event.
 */
export function attachBrokerLog(aedes: Aedes, log: Logger, identityOf: (client: Client) => Identity | undefined): void {
  const fields = (client: Client | null | undefined): Record<string, unknown> =>
    clientFields(client, client ? identityOf(client) : undefined);
  aedes.on('client', (client) => {
    log.info({ ...fields(client), clean: client.clean }, 'client connected');
  });
  aedes.on('clientDisconnect', (client) => {
    log.info(fields(client), 'client disconnected');
  });
  aedes.on('keepaliveTimeout', (client) => {
    log.info(fields(client), 'client keepalive timed out');
  });
  aedes.on('clientError', (client, err) => {
    const code = errorCode(err);
    const level = code !== undefined && ROUTINE_CLIENT_ERRORS.has(code) ? 'debug' : 'warn';
    log[level]({ ...fields(client), code, reason: err.message }, 'client error, connection closed');
  });
  aedes.on('connectionError', (client, err) => {
    log.warn({ ...fields(client), code: errorCode(err), reason: err.message }, 'connection refused');
  });
  aedes.on('subscribe', (subscriptions, client) => {
    const topics = subscriptions.map((s) => ({ topic: s.topic, qos: s.qos }));
    log.debug({ ...fields(client), subscriptions: topics }, 'client subscribed');
  });
  // aedes's typings list no 'error' event, yet it emits one when a storage write fails.
  (aedes as EventEmitter).on('error', (err: Error) => {
    log.error({ code: errorCode(err), reason: err.message }, 'broker error');
  });
}
