// The console's HTTP API, as the web app calls it (JSON both ways, the
// session in an HttpOnly cookie the browser sends by itself).

/** An API answer other than 2xx: `status`, the server's `error`, and the parameter it names (400). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(message: string, readonly status: number, readonly field?: string) {
    super(message);
  }
}

let onUnauthorized: (() => void) | undefined;

/** Called when the session is gone (a 401 on anything but the login itself). */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/**
 * GETs (or POSTs `body` as JSON to) an API path and returns its JSON.
 *
 * @throws {ApiError} on any answer but 2xx.
 * @example
 * const page = await api<RecordsPage>('/api/records?limit=50');
 */
export async function api<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit = body === undefined
    ? { credentials: 'same-origin' }
    : { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/login' && path !== '/api/session') onUnauthorized?.();
    throw new ApiError(typeof json.error === 'string' ? json.error : `HTTP ${res.status}`, res.status, typeof json.field === 'string' ? json.field : undefined);
  }
  return json as T;
}

/** A query string of the non-empty values. */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
