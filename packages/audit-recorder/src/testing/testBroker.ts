import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { pathToFileURL } from 'node:url';

/** A real MQTT broker on a free port, for tests. */
export interface TestBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface AedesLike {
  handle: (conn: Socket) => void;
  close(callback?: () => void): void;
}

/**
 * Starts a plain Aedes 1.x broker on 127.0.0.1, port 0 (or `port`, to restart
 * on the same one). Stand-in until @fso/broker's `startBroker` exists; aedes is
 * the broker package's dependency, so it is resolved from there.
 */
export async function startTestBroker(port = 0): Promise<TestBroker> {
  const require = createRequire(new URL('../../../broker/package.json', import.meta.url));
  const { Aedes } = (await import(pathToFileURL(require.resolve('aedes')).href)) as {
    Aedes: { createBroker(): Promise<AedesLike> };
  };
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => aedes.close(() => resolve()));
      })),
  };
}
