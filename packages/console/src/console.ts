import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TailFilterError } from '@fso/audit-trail';
import type { AuditRecordLine } from '@fso/audit-trail';
import { FSO_VERSION, agentConfigSchema, createSilentLogger, createTopics, isLoopback } from '@fso/common';
import type { HealthState, Logger } from '@fso/common';
import type { Registry } from 'prom-client';
import { createBrokerLogins } from './brokerLogins.js';
import { createConsoleMetrics } from './consoleMetrics.js';
import type { Access, BrokerLogins } from './brokerLogins.js';
import { BadRequestError, ConsoleStartError } from './errors.js';
import { cookieOf, readJsonBody, securityHeaders, sendJson } from './http.js';
import { historyQuery, searchQuery, treeQuery } from './queryParams.js';
import { createSessions } from './sessions.js';
import type { Session, SessionLimits } from './sessions.js';
import { createStaticFiles } from './staticFiles.js';
import { indexedTrailReader, linearTrailReader, watchIntegrity } from './trail.js';
import type { TrailReader } from './trail.js';

/** Default of {@link ConsoleOptions.port}. */
export const DEFAULT_CONSOLE_PORT = 8080;
const COOKIE = 'fso_console';

/** What {@link startConsole} serves, and where from. */
export interface ConsoleOptions {
  /** The audit directory (read only; the console never writes there). */
  auditDir: string;
  /** The broker that checks logins (`mqtt://` or `mqtts://`). */
  brokerUrl: string;
  /** The broker's MQTT-over-WebSocket URL the browser connects to (`ws://host:port`, `wss://…`). */
  wsUrl: string;
  /** Default 127.0.0.1; anything but loopback needs a broker that checks logins, or `insecure`. */
  host?: string;
  /** Default {@link DEFAULT_CONSOLE_PORT}; 0 picks a free one. */
  port?: number;
  topicPrefix?: string;
  /** CA of an mqtts:// broker. */
  caFile?: string;
  /** Serve a non-loopback address in front of an open broker. */
  insecure?: boolean;
  /**
   * Where the console keeps its index of the trail (created if missing; never
   * the audit directory). Without it, and without `trail`, every search reads the JSONL.
   */
  indexDir?: string;
  /** A reader of the trail; by default the index in `indexDir`, or the linear reader of `auditDir`. */
  trail?: TrailReader;
  /** How often the trail is verified again when it changed; default 30 s. */
  verifyIntervalMs?: number;
  sessions?: SessionLimits;
  logger?: Logger;
  /** The built web app; default this package's dist/web. */
  webRoot?: string;
}

/** A running console, from {@link startConsole}. */
export interface Console {
  /** `http://host:port` with the real port. */
  readonly url: string;
  readonly port: number;
  /** Its Prometheus metrics (serve them with `startHealthServer`). */
  readonly metrics: Registry;
  /** Live while serving; ready when the trail could be read (its last check ran without error). */
  health(): HealthState;
  /** Stops listening, ends every request, closes the trail reader. Safe to call twice. */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, session: Session | undefined) => Promise<void>;

/** A record as the API sends it: where it is in the trail, and what it says. */
function recordOut(line: AuditRecordLine): { file: string; line: number; record: Record<string, unknown> } {
  return { file: line.file, line: line.line, record: line.record };
}

/**
 * Starts the console: the web app, and an HTTP API over the audit trail
 * behind the broker's own logins (see docs/protocol.md "Console HTTP API").
 * The browser speaks MQTT over WebSocket to the broker for everything live,
 * with the same login, so the broker's ACL is the one access control.
 *
 * @throws {ConsoleStartError} for a non-loopback `host` in front of an open (or unreachable) broker, or a port in use.
 * @example
 * const console = await startConsole({ auditDir: './audit', brokerUrl: 'mqtt://127.0.0.1:1883', wsUrl: 'ws://127.0.0.1:8883' });
 * // open console.url in a browser
 */
export async function startConsole(options: ConsoleOptions): Promise<Console> {
  const log = (options.logger ?? createSilentLogger()).child({ component: 'console' });
  const host = options.host ?? '127.0.0.1';
  const topics = createTopics(options.topicPrefix);
  const logins: BrokerLogins = createBrokerLogins({ brokerUrl: options.brokerUrl, topics, ...(options.caFile === undefined ? {} : { caFile: options.caFile }) });
  if (!isLoopback(host) && !options.insecure) {
    const broker = await logins.probe();
    if (broker !== 'closed') {
      throw new ConsoleStartError(broker === 'open'
        ? `${host} is not loopback and the broker at ${options.brokerUrl} lets anyone in: give the broker logins (--auth or --jwt-*), or pass --insecure`
        : `${host} is not loopback and the broker at ${options.brokerUrl} cannot be reached to check that it requires logins`);
    }
  }
  const trail = options.trail ?? (options.indexDir === undefined ? linearTrailReader(options.auditDir) : await indexedTrailReader(options.auditDir, options.indexDir, log));
  const integrity = watchIntegrity(options.auditDir, log, options.verifyIntervalMs);
  const sessions = createSessions(options.sessions);
  const metrics = createConsoleMetrics({ sessions: () => sessions.size, verified: () => integrity.report().result?.ok });
  const here = path.dirname(fileURLToPath(import.meta.url));
  // From dist/ the app is beside this file; from src/ (tests run the sources) it is in the build.
  const webRoot = options.webRoot ?? (path.basename(here) === 'src' ? path.join(here, '..', 'dist', 'web') : path.join(here, 'web'));
  const staticFile = createStaticFiles(webRoot);
  const wsOrigin = new URL(options.wsUrl).origin.replace(/^http/, 'ws');
  const headers = securityHeaders([wsOrigin]);
  const secureCookie = options.wsUrl.startsWith('wss:') ? '; Secure' : '';

  const needs = (session: Session | undefined, what: keyof Access | 'login', res: ServerResponse): session is Session => {
    if (!session) {
      sendJson(res, 401, { error: 'log in first' }, headers);
      return false;
    }
    if (what !== 'login' && !session.access[what]) {
      sendJson(res, 403, { error: `the broker does not let ${session.username || 'this login'} read the ${what === 'trail' ? "agents' events" : what}` }, headers);
      return false;
    }
    return true;
  };

  const routes: Record<string, Handler> = {
    'GET /api/info': async (_req, res) => {
      sendJson(res, 200, { version: FSO_VERSION, wsUrl: options.wsUrl, topicPrefix: topics.prefix }, headers);
    },
    'POST /api/login': async (req, res) => {
      const body = await readJsonBody(req, 16 * 1024);
      const creds = body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
      const username = typeof creds.username === 'string' ? creds.username : '';
      const password = typeof creds.password === 'string' ? creds.password : '';
      if (username.length > 256 || password.length > 8192) throw new BadRequestError('too long', 'username');
      const verdict = await logins.check(username, password);
      metrics.login(verdict.ok);
      if (!verdict.ok) {
        log.info({ username }, `console login refused: ${verdict.reason}`);
        sendJson(res, 401, { error: verdict.reason }, headers);
        return;
      }
      const token = sessions.create(username, verdict.access);
      log.info({ username, access: verdict.access }, 'console login');
      sendJson(res, 200, { username, access: verdict.access }, {
        ...headers, 'set-cookie': `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/${secureCookie}`,
      });
    },
    'POST /api/logout': async (req, res) => {
      sessions.delete(cookieOf(req, COOKIE));
      sendJson(res, 200, { ok: true }, { ...headers, 'set-cookie': `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secureCookie}` });
    },
    'GET /api/session': async (_req, res, _url, session) => {
      if (needs(session, 'login', res)) sendJson(res, 200, { username: session.username, access: session.access }, headers);
    },
    'GET /api/records': async (_req, res, url, session) => {
      if (!needs(session, 'trail', res)) return;
      const q = searchQuery(url.searchParams);
      const { total, records } = await trail.query(q);
      sendJson(res, 200, { total, offset: q.offset, limit: q.limit, records: records.map(recordOut) }, headers);
    },
    'GET /api/history': async (_req, res, url, session) => {
      if (!needs(session, 'trail', res)) return;
      const q = historyQuery(url.searchParams);
      const records = await trail.history(q.path, q.agent === undefined ? {} : { agent: q.agent });
      sendJson(res, 200, { path: q.path, records: records.map(recordOut) }, headers);
    },
    'GET /api/tree': async (_req, res, url, session) => {
      if (!needs(session, 'trail', res)) return;
      const q = treeQuery(url.searchParams);
      const tree = await trail.tree(q);
      const entries = [...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, e]) => ({ path: p, ...e }));
      sendJson(res, 200, { agent: q.agent, under: q.under ?? null, entries }, headers);
    },
    'GET /api/configs': async (_req, res, _url, session) => {
      if (!needs(session, 'trail', res)) return;
      // The config records of the trail, newest per topic: what was pushed, for logins that may not read the config topics live.
      const { total } = await trail.query({ type: 'config', limit: 0 });
      const { records } = await trail.query({ type: 'config', offset: Math.max(0, total - 1_000), limit: 1_000 });
      const byTopic = new Map<string, ReturnType<typeof recordOut>>();
      for (const r of records) if (typeof r.record.topic === 'string') byTopic.set(r.record.topic, recordOut(r));
      sendJson(res, 200, { configs: [...byTopic.values()] }, headers);
    },
    'GET /api/verify': async (_req, res, _url, session) => {
      if (needs(session, 'trail', res)) sendJson(res, 200, integrity.report(), headers);
    },
    'POST /api/config/check': async (req, res, _url, session) => {
      if (!needs(session, 'login', res)) return;
      const body = await readJsonBody(req);
      const result = agentConfigSchema.safeParse(body);
      if (result.success) sendJson(res, 200, { ok: true, config: result.data, issues: [] }, headers);
      else sendJson(res, 200, { ok: false, issues: result.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })) }, headers);
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const key = `${req.method ?? 'GET'} ${url.pathname}`;
    const route = routes[key];
    const started = performance.now();
    // Routes are a fixed set: an unknown path never becomes a label of its own.
    res.once('finish', () => metrics.answered(route ? key : url.pathname.startsWith('/api/') ? 'unknown api' : 'static', res.statusCode, (performance.now() - started) / 1000));
    if (route) {
      if (req.method === 'POST' && req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host}` && req.headers.origin !== `https://${req.headers.host}`) {
        sendJson(res, 403, { error: 'cross-origin request refused' }, headers);
        return;
      }
      await route(req, res, url, sessions.get(cookieOf(req, COOKIE)));
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      sendJson(res, 404, { error: `no such API: ${req.method ?? 'GET'} ${url.pathname}` }, headers);
      return;
    }
    const file = req.method === 'GET' || req.method === 'HEAD' ? await staticFile(url.pathname) : undefined;
    if (!file) {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': file.type, 'content-length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof BadRequestError || err instanceof TailFilterError) {
        sendJson(res, 400, { error: err.message, ...(err instanceof BadRequestError && err.field !== undefined ? { field: err.field } : {}) }, headers);
        return;
      }
      log.error({ err, url: req.url }, 'console request failed');
      sendJson(res, 500, { error: 'the console could not answer; see its log' }, headers);
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ConsoleStartError(`cannot listen on ${host}:${options.port ?? DEFAULT_CONSOLE_PORT}: ${err.message}`, { cause: err })));
    server.listen(options.port ?? DEFAULT_CONSOLE_PORT, host, () => resolve());
  }).catch(async (err: unknown) => {
    await Promise.all([integrity.close(), trail.close()]);
    throw err;
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, auditDir: options.auditDir, wsUrl: options.wsUrl }, `console serving ${url}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    metrics: metrics.registry,
    health: () => {
      const error = integrity.report().error;
      const reasons = closing ? ['stopping'] : error === undefined ? [] : [`the trail cannot be read: ${error}`];
      return { live: closing === undefined, ready: reasons.length === 0, reasons };
    },
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await Promise.all([integrity.close(), trail.close()]);
      })();
      return closing;
    },
  };
}
