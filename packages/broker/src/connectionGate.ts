/** A bound on open connections across every listener of a broker. */
import type { Socket } from 'node:net';
import type { Logger } from '@fso/common';
import { createLogThrottle } from './brokerLog.js';

/** How often refusals are reported while a flood lasts. */
const REPORT_EVERY_MS = 5_000;

/** Admits sockets while fewer than the limit are open. */
export interface ConnectionGate {
  /** Counts `socket` in (until it closes) and returns true, or destroys it and returns false. */
  admit(socket: Socket, transport: string): boolean;
  /** Connections open now. */
  readonly open: number;
}

/**
 * A gate for `maxConnections` sockets (TCP level, before TLS or a WebSocket
 * upgrade, so a flood costs no handshake). Refusals are logged at most every
 * 5 s, with how many there were, so a flood cannot flood the log too.
 */
export function createConnectionGate(maxConnections: number, log: Logger): ConnectionGate {
  let open = 0;
  const due = createLogThrottle(REPORT_EVERY_MS);
  return {
    get open() {
      return open;
    },
    admit: (socket, transport) => {
      if (open >= maxConnections) {
        const dropped = due('refused');
        if (dropped !== undefined) {
          log.warn(
            { transport, remoteAddress: socket.remoteAddress, maxConnections, refused: dropped + 1 },
            `connection refused: ${maxConnections} connections already open`,
          );
        }
        socket.destroy();
        return false;
      }
      open += 1;
      socket.once('close', () => {
        open -= 1;
      });
      return true;
    },
  };
}
