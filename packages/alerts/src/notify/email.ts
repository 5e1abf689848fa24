import net from 'node:net';
import nodemailer from 'nodemailer';
import type { FsoAlert } from '@fso/common';
import { NotifyError } from '../errors.js';
import type { Notifier } from './notifier.js';
import type { EmailSpec } from './targets.js';

/** `[FSO] FIRING critical mass-delete web-01`: state, severity, rule and key, so a mail filter can sort on them. */
export function emailSubject(alert: FsoAlert, prefix: string): string {
  return `${prefix} ${alert.state.toUpperCase()} ${alert.severity} ${alert.rule} ${alert.key}`.replace(/[\r\n]+/g, ' ').slice(0, 200);
}

/** Every field of the alert as plain text, samples last. */
export function emailBody(alert: FsoAlert): string {
  const lines = [
    alert.summary,
    '',
    `rule:      ${alert.rule}`,
    `state:     ${alert.state}`,
    `severity:  ${alert.severity}`,
    `key:       ${alert.key}`,
    `agent:     ${alert.agentId ?? '-'}`,
    `path:      ${alert.path ?? '-'}`,
    `count:     ${alert.count}`,
    `first:     ${alert.firstAt}`,
    `last:      ${alert.lastAt}`,
    `alert id:  ${alert.id}`,
    `source:    ${alert.source}`,
    `at:        ${alert.at}`,
  ];
  if (alert.samples.length > 0) {
    lines.push('', 'samples (find them in the audit trail by message id):');
    for (const s of alert.samples) lines.push(`  ${s.at} ${s.what} ${s.agentId ?? '-'} ${s.path ?? '-'} ${s.messageId ?? ''}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** SMTP errors another attempt may fix: no connection, a timeout, a 4xx reply. TLS policy refusals and 5xx are final. */
function retryable(err: { code?: string; responseCode?: number }): boolean {
  // A reply decides first: 454 (TLS or AUTH not available now, RFC 3207/4954) is worth another try; a 5xx refusal of STARTTLS is not.
  if (typeof err.responseCode === 'number') return err.responseCode < 500;
  return !['ETLS', 'EAUTH', 'ENOAUTH', 'EENVELOPE', 'EABORT'].includes(err.code ?? '');
}

/**
 * An email target through nodemailer: `starttls` (the default) upgrades with
 * STARTTLS and refuses to send when the server does not offer it; `tls` is
 * TLS from the first byte (port 465); `none` sends in clear (a local relay
 * only). The password is given to nodemailer and nowhere else.
 */
export function createEmailNotifier(name: string, spec: EmailSpec, secrets: { auth?: { user: string; pass: string }; ca?: Buffer }): Notifier {
  const transport = nodemailer.createTransport({
    host: spec.host,
    port: spec.port ?? (spec.security === 'tls' ? 465 : 587),
    secure: spec.security === 'tls',
    requireTLS: spec.security === 'starttls',
    ignoreTLS: spec.security === 'none',
    ...(secrets.auth ? { auth: secrets.auth } : {}),
    // SNI takes a host name only (RFC 6066 §3); Node warns (DEP0123) when given an IP address.
    tls: { ...(net.isIP(spec.host) === 0 ? { servername: spec.host } : {}), ...(secrets.ca ? { ca: secrets.ca } : {}) },
    connectionTimeout: spec.timeout,
    greetingTimeout: spec.timeout,
    socketTimeout: spec.timeout,
    // No logger: nodemailer's debug output can carry the AUTH exchange.
    logger: false,
    debug: false,
  });
  let closed: Promise<void> | undefined;
  // close() cuts a send in flight: a non-pooled transport's close() does not (nodemailer 10.5 takes a signal per send).
  const closing = new AbortController();
  return {
    name,
    type: 'email',
    async send(alert) {
      if (closed) throw new NotifyError(name, 'email', 'closed', { retryable: false });
      try {
        await transport.sendMail({
          from: spec.from, to: spec.to, subject: emailSubject(alert, spec.subjectPrefix), text: emailBody(alert), headers: { 'X-FSO-Alert-Id': alert.id }, signal: closing.signal,
        });
      } catch (err) {
        const e = err as Error & { code?: string; responseCode?: number };
        throw new NotifyError(name, 'email', `${e.code ?? 'error'}: ${e.message}`, { retryable: retryable(e), ...(e.responseCode ? { status: e.responseCode } : {}) }, { cause: err });
      }
    },
    close() {
      closed ??= Promise.resolve().then(() => {
        closing.abort();
        transport.close();
      });
      return closed;
    },
  };
}
