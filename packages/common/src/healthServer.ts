import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** What a daemon says of itself: alive (the process works) and ready (it does its job now), with the reasons when not. */
export interface HealthState {
  live: boolean;
  ready: boolean;
  /** Why it is not ready (or not live): `broker not connected`, `audit write failed`… */
  reasons: string[];
}

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  /** Default 127.0.0.1: metrics name agents and paths' counts, so they are opt-in and local unless asked. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  health: () => HealthState;
  logger?: Logger;
}

/** A running metrics and health endpoint. */
export interface HealthServer {
  /** `http://host:port`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `/metrics` (Prometheus text format, from prom-client's `registry`),
 * `/healthz` (200 while live) and `/readyz` (200 when ready, else 503), the
 * last two with the state as JSON. Nothing else; GET and HEAD only.
 *
 * @example
 * const server = await startHealthServer({ port: 9464, registry, health: () => recorder.health() });
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://health.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        (err: unknown) => {
          options.logger?.warn({ err }, 'metrics could not be collected');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
        },
      );
      return;
    }
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      const state = options.health();
      const ok = url.pathname === '/healthz' ? state.live : state.ready;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(state)}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('/metrics, /healthz, /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;
  return {
    url,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
