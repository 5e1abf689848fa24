import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { FSO_VERSION } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { NotifyError } from '../errors.js';
import type { Notifier } from './notifier.js';
import type { WebhookSpec } from './targets.js';

/** The signature header: `sha256=` + hex HMAC-SHA256 of the exact body bytes, GitHub's scheme. */
export const SIGNATURE_HEADER = 'x-fso-signature-256';

/** `sha256=<hex>` for `body` under `secret`: what a receiver recomputes and compares in constant time. */
export function signBody(secret: string, body: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Statuses another attempt may fix (RFC 9110: timeout, too many requests, server errors). */
const retryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/**
 * A webhook target: POSTs the alert as JSON, signed when a secret is set.
 * The body's `at` is inside the signed bytes, so a receiver can refuse a
 * replayed request by its age. 2xx is sent; 408, 429, 5xx, a network error
 * and the timeout (which also cuts a receiver that accepts and never
 * answers) are retryable; any other status is not.
 */
export function createWebhookNotifier(name: string, spec: WebhookSpec, secrets: { secret?: string; ca?: Buffer }): Notifier {
  const url = new URL(spec.url);
  const client = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? new https.Agent({ keepAlive: true, ...(secrets.ca ? { ca: secrets.ca } : {}) }) : new http.Agent({ keepAlive: true });
  let closed: Promise<void> | undefined;
  const fail = (reason: string, retryable: boolean, status?: number, cause?: unknown): NotifyError =>
    new NotifyError(name, 'webhook', reason, { retryable, ...(status === undefined ? {} : { status }) }, cause === undefined ? undefined : { cause });

  return {
    name,
    type: 'webhook',
    send(alert: FsoAlert) {
      // After close() the agent is destroyed, but a request would still open a kept-alive socket that nothing closes.
      if (closed) return Promise.reject(fail('closed', false));
      const body = Buffer.from(JSON.stringify(alert), 'utf8');
      const headers: Record<string, string> = {
        ...spec.headers,
        'content-type': 'application/json',
        'content-length': String(body.length),
        'user-agent': `fso-alert/${FSO_VERSION}`,
        'x-fso-alert-id': alert.id,
        'x-fso-timestamp': alert.at,
      };
      if (secrets.secret !== undefined) headers[SIGNATURE_HEADER] = signBody(secrets.secret, body);
      return new Promise<void>((resolve, reject) => {
        const req = client.request(url, { method: 'POST', headers, agent }, (res) => {
          res.resume(); // The answer's body is not needed; drain it so the socket is reused.
          const status = res.statusCode ?? 0;
          res.on('end', () => {
            clearTimeout(timer);
            if (status >= 200 && status < 300) resolve();
            else reject(fail(`HTTP ${status}`, retryableStatus(status), status));
          });
          res.on('error', (err) => reject(fail(err.message, true, status, err)));
        });
        // One budget for the whole exchange: connecting, sending and the answer.
        const timer = setTimeout(() => req.destroy(fail(`no answer within ${spec.timeout} ms`, true)), spec.timeout);
        req.on('error', (err) => {
          clearTimeout(timer);
          reject(err instanceof NotifyError ? err : fail((err as NodeJS.ErrnoException).code ?? err.message, true, undefined, err));
        });
        req.end(body);
      });
    },
    close() {
      closed ??= Promise.resolve().then(() => agent.destroy());
      return closed;
    },
  };
}
