import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Aedes, Client } from 'aedes';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import type { Identity } from './acl.js';
import { USERNAME_PATTERN } from './authFile.js';
import { GuardedConnection } from './packetGuard.js';

/** Errors of a client going away without DISCONNECT: routine, not a warning. */
const ROUTINE_CLIENT_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/** Longest username logged as given; a longer one is more likely a pasted secret than a name. */
const MAX_LOGGED_USERNAME = 64;
/** A JWS compact serialization (a token): base64url of `{"…` , a dot, more, a dot. */
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;

/**
 * A CONNECT's username as a log line may show it: as given when it looks
 * like a username (the auth file's pattern, at most 64 characters, not a
 * token), else redacted to its first 4 characters, its length and a sha256
 * prefix, so a token or password typed into the username field (credentials
 * swapped) never reaches the log, yet repeated attempts can still be matched.
 *
 * @example
 * loggableUsername('web-01'); // 'web-01'
 * loggableUsername('eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJvcHMifQ.c2ln'); // 'eyJh…(44 chars, sha256 1f0e…)'
 */
export function loggableUsername(username: string | undefined): string | null {
  if (username === undefined) return null;
  if (username.length <= MAX_LOGGED_USERNAME && USERNAME_PATTERN.test(username) && !JWT_SHAPE.test(username)) return username;
  const digest = createHash('sha256').update(username, 'utf8').digest('hex').slice(0, 8);
  return `${[...username].slice(0, 4).join('')}…(${username.length} chars, sha256 ${digest})`;
}

/** The address a client connected from (aedes sees the guarded stream, which keeps it). */
export function remoteAddressOf(client: Client | null | undefined): string | undefined {
  const conn = client?.conn;
  return conn instanceof GuardedConnection ? conn.remoteAddress : undefined;
}

/**
 * Lets one log line per key through every `intervalMs` and counts the ones
 * it held back, so a flood cannot flood the log. Returns undefined for a line
 * to drop, else how many were dropped since the last one let through.
 * Remembers at most `maxKeys` keys (the oldest are forgotten first).
 */
export function createLogThrottle(intervalMs: number, maxKeys = 1000): (key: string) => number | undefined {
  const seen = new Map<string, { at: number; dropped: number }>();
  return (key) => {
    const now = Date.now();
    const entry = seen.get(key);
    if (entry && now - entry.at < intervalMs) {
      entry.dropped += 1;
      return undefined;
    }
    const dropped = entry?.dropped ?? 0;
    seen.delete(key);
    seen.set(key, { at: now, dropped: 0 });
    if (seen.size > maxKeys) seen.delete(seen.keys().next().value as string);
    return dropped;
  };
}

/**
 * The fields that identify a client in every log line: client id, address,
 * transport and, once logged in, username and role. Never its password nor a payload.
 */
export function clientFields(client: Client | null | undefined, identity?: Identity): Record<string, unknown> {
  if (!client) return { clientId: null };
  const conn = client.conn instanceof GuardedConnection ? client.conn : undefined;
  return {
    clientId: client.id ?? null,
    remoteAddress: remoteAddressOf(client),
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
    // aedes reports a login our authenticate hook refused (the error carries its returnCode) here
    // too; `login refused` said it already, and a flood of them should cost one line each.
    const refusedLogin = typeof (err as { returnCode?: unknown }).returnCode === 'number';
    const level = refusedLogin || (code !== undefined && ROUTINE_CLIENT_ERRORS.has(code)) ? 'debug' : 'warn';
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
