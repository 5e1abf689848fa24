import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The console's Prometheus metrics (issue 14 §3), in a registry of their own. */
export interface ConsoleMetrics {
  readonly registry: Registry;
  /** One answered request: its route (`GET /api/records`, `static`, `not found`), status and duration. */
  answered(route: string, status: number, seconds: number): void;
  login(accepted: boolean): void;
}

/**
 * Creates the console's metrics: requests by route and status, their
 * durations, logins by outcome, open sessions and the trail's last verify
 * result (1 intact, 0 broken, -1 not known yet); process metrics prefixed
 * `fso_console_`.
 */
export function createConsoleMetrics(probe: { sessions: () => number; verified: () => boolean | undefined }): ConsoleMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fso_console_' });
  const requests = new Counter({ name: 'fso_console_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['route', 'status'], registers: [registry] });
  const seconds = new Histogram({
    name: 'fso_console_http_request_seconds', help: 'Time to answer an HTTP request, by route', labelNames: ['route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry],
  });
  const logins = new Counter({ name: 'fso_console_logins_total', help: 'Console logins, by outcome (the broker decides)', labelNames: ['outcome'], registers: [registry] });
  new Gauge({ name: 'fso_console_sessions', help: 'Open console sessions', registers: [registry], collect() { this.set(probe.sessions()); } });
  new Gauge({
    name: 'fso_console_trail_verified', help: "The trail's last verify: 1 intact, 0 broken, -1 not known yet", registers: [registry],
    collect() {
      const ok = probe.verified();
      this.set(ok === undefined ? -1 : ok ? 1 : 0);
    },
  });
  return {
    registry,
    answered: (route, status, duration) => {
      requests.inc({ route, status: String(status) });
      seconds.observe({ route }, duration);
    },
    login: (accepted) => logins.inc({ outcome: accepted ? 'accepted' : 'refused' }),
  };
}
