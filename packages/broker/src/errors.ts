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

/** A TCP or WebSocket listener that could not be opened (port taken, bad address, no permission). */
export class BrokerListenError extends Error {
  override readonly name = 'BrokerListenError';
  /** The address the listener was asked for. */
  readonly host: string;
  readonly port: number;
  /** `mqtt` for the TCP listener, `ws` for MQTT over WebSocket. */
  readonly transport: 'mqtt' | 'ws';
  /** The system error code (`EADDRINUSE`, `EACCES`…), when there is one. */
  readonly code: string | undefined;
  constructor(transport: 'mqtt' | 'ws', host: string, port: number, cause: unknown) {
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
