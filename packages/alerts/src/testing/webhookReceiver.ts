// Test support for this package's tests (kept out of the build by tsconfig.json).
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a receiver got. */
export interface ReceivedHook {
  alertId: string;
  body: Buffer;
  /** The status it was answered with, or `hang` while it is held. */
  answer: number | 'hang';
}

/** A real HTTP receiver of webhook notifications on 127.0.0.1. */
export interface WebhookReceiver {
  readonly port: number;
  readonly requests: ReceivedHook[];
  /** Requests answered 2xx, in arrival order: what the receiver took. */
  accepted(): string[];
  /** Answers every held request with `status` (and what comes next, unless `answer` says otherwise). */
  release(status?: number): void;
  close(): Promise<void>;
}

/**
 * Starts a receiver on `port` (0: a free one). `answer` decides each
 * request's fate from the count so far: a status, or `hang` (accepted and
 * held, never answered until `release()`). Default: 204.
 */
export async function startWebhookReceiver(
  options: { port?: number; answer?: (n: number) => number | 'hang'; onRequest?: (hook: ReceivedHook) => void } = {},
): Promise<WebhookReceiver> {
  const requests: ReceivedHook[] = [];
  const held: Array<{ res: ServerResponse; hook: ReceivedHook }> = [];
  let released: number | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const decided = released ?? options.answer?.(requests.length + 1) ?? 204;
      const hook: ReceivedHook = { alertId: String(req.headers['x-fso-alert-id']), body: Buffer.concat(chunks), answer: decided };
      requests.push(hook);
      options.onRequest?.(hook);
      if (decided === 'hang') held.push({ res, hook });
      else res.writeHead(decided).end();
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    accepted: () => requests.filter((r) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300).map((r) => r.alertId),
    release(status = 204) {
      released = status;
      for (const { res, hook } of held.splice(0)) {
        // The client may have given up on it (its timeout): then there is no one to answer, and it stays `hang`.
        if (res.destroyed || !res.socket || res.socket.destroyed) continue;
        hook.answer = status;
        res.writeHead(status).end();
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on (connections are refused), until someone starts a receiver there. */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
