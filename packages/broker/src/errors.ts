/** Errors of @fso/broker; each carries what it is about and passes its cause. */
import { errorCode } from '@fso/common';

/** Why a listen failed, in words a user can act on. */
function listenReason(cause: unknown): string {
  switch (errorCode(cause)) {
    case 'EADDRINUSE':
      return 'the port is already in use (is another broker running?)';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return 'the address is not available on this host';
    default:
      return cause instanceof Error ? cause.message : String(cause);
  }
}

/** How a listener speaks MQTT: over TCP, TCP + TLS, WebSocket, WebSocket + TLS. */
export type Transport = 'mqtt' | 'mqtts' | 'ws' | 'wss';

/** A TCP or WebSocket listener that could not be opened (port taken, bad address, no permission). */
export class BrokerListenError extends Error {
  override readonly name = 'BrokerListenError';
  /** The address the listener was asked for. */
  readonly host: string;
  readonly port: number;
  /** `mqtt`/`mqtts` for the TCP listener, `ws`/`wss` for MQTT over WebSocket. */
  readonly transport: Transport;
  /** The system error code (`EADDRINUSE`, `EACCES`…), when there is one. */
  readonly code: string | undefined;
  constructor(transport: Transport, host: string, port: number, cause: unknown) {
    super(`cannot listen for ${transport} on ${host}:${port}: ${listenReason(cause)}`, { cause });
    this.transport = transport;
    this.host = host;
    this.port = port;
    this.code = errorCode(cause);
  }
}

/** Why a data dir cannot be used, in words a user can act on. */
function storageReason(cause: unknown): string {
  // classic-level wraps the real failure: LEVEL_DATABASE_NOT_OPEN with cause LEVEL_LOCKED or LEVEL_IO_ERROR.
  const inner = cause instanceof Error && cause.cause !== undefined ? cause.cause : cause;
  switch (errorCode(inner) ?? errorCode(cause)) {
    case 'LEVEL_LOCKED':
      return 'it is locked by another process (is another broker using it?)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
    case 'EEXIST':
      return 'it is not a directory';
    default:
      return inner instanceof Error ? inner.message : String(inner);
  }
}

/** The `--data-dir` could not be created or its database opened or closed. */
export class BrokerStorageError extends Error {
  override readonly name = 'BrokerStorageError';
  readonly dataDir: string;
  constructor(dataDir: string, cause: unknown) {
    super(`cannot use broker data dir ${dataDir}: ${storageReason(cause)}`, { cause });
    this.dataDir = dataDir;
  }
}

/** The cluster's Redis (`--redis`) cannot be reached, or the options conflict. */
export class BrokerClusterError extends Error {
  override readonly name = 'BrokerClusterError';
  readonly redisUrl: string;
  constructor(redisUrl: string, cause: unknown) {
    super(`cannot join the cluster at ${redisUrl}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.redisUrl = redisUrl;
  }
}

/** An auth file (`--auth`) that cannot be read, parsed or written. */
export class AuthFileError extends Error {
  override readonly name = 'AuthFileError';
  readonly file: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`auth file ${file}: ${reason}`, options);
    this.file = file;
  }
}

/** A secret, key or certificate file that cannot be used (JWT secret, public key, TLS files). */
export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
  readonly file: string;
  /** What the file was meant to be: `jwt secret`, `tls cert`… */
  readonly purpose: string;
  constructor(purpose: string, file: string, reason: string, options?: ErrorOptions) {
    super(`${purpose} file ${file}: ${reason}`, options);
    this.purpose = purpose;
    this.file = file;
  }
}

/** The broker would listen beyond loopback with no authentication, and `insecure` was not given. */
export class BrokerInsecureError extends Error {
  override readonly name = 'BrokerInsecureError';
  readonly host: string;
  constructor(host: string) {
    super(
      `refusing to listen on ${host} without authentication: anyone who can reach it could forge the audit trail. ` +
        'Give --auth FILE and/or --jwt-secret-file/--jwt-public-key-file, listen on 127.0.0.1, or pass --insecure',
    );
    this.host = host;
  }
}

/**
 * A login refused at CONNECT; `returnCode` is the CONNACK code (2 client id
 * not allowed, 3 busy or backing off: retry later, 4 bad credentials, 5 not authorized).
 */
export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
  readonly returnCode: 2 | 3 | 4 | 5;
  readonly clientId: string;
  constructor(returnCode: 2 | 3 | 4 | 5, clientId: string, reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.returnCode = returnCode;
    this.clientId = clientId;
  }
}

/** The queue is full: refuse the login (CONNACK 3) instead of waiting. */
export class CheckQueueFullError extends Error {
  override readonly name = 'CheckQueueFullError';
  readonly running: number;
  readonly waiting: number;
  constructor(running: number, waiting: number) {
    super(`server busy: ${running} password checks running and ${waiting} waiting`);
    this.running = running;
    this.waiting = waiting;
  }
}

/** A problem with the arguments or the password of a `user` or `session` command, or with the flags: exit 2. */
export class UserCommandError extends Error {
  override readonly name = 'UserCommandError';
}
