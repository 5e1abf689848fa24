import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { positiveDurationSchema } from '@fso/common';
import type { Logger } from '@fso/common';
import { z } from 'zod';
import { TargetConfigError } from '../errors.js';
import { createEmailNotifier } from './email.js';
import type { Notifier } from './notifier.js';
import { createSyslogNotifier } from './syslog.js';
import { createWebhookNotifier } from './webhook.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = z.string().regex(ENV_NAME, 'an environment variable name');

/** Keys that would put a secret in the rules file itself: refused, with what to use instead. */
const PLAIN_SECRETS: Readonly<Record<string, string>> = { secret: 'secretFile or secretEnv', password: 'passwordFile or passwordEnv', token: 'secretFile or secretEnv' };

/** Refuses a secret written into the file, naming the field to use instead. */
function noPlainSecrets(value: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const [key, instead] of Object.entries(PLAIN_SECRETS)) {
    if (Object.hasOwn(value, key)) ctx.addIssue({ code: 'custom', path: [key], message: `a secret never sits in the rules file: use ${instead}` });
  }
}

const RESERVED_HEADERS = ['content-type', 'content-length', 'host', 'x-fso-signature-256', 'x-fso-timestamp', 'x-fso-alert-id'];

const webhookSchema = z.strictObject({
  type: z.literal('webhook'),
  url: z.url({ protocol: /^https?$/, error: 'an http:// or https:// URL' }),
  /** The HMAC-SHA256 key, read from this file (relative to the rules file). */
  secretFile: z.string().min(1).optional(),
  /** … or from this environment variable. */
  secretEnv: envName.optional(),
  headers: z
    // A line break in a value would make node:http throw at every attempt: refused here, once.
    .record(z.string().regex(/^[A-Za-z0-9-]+$/, 'a header name'), z.string().max(4096).regex(/^[^\r\n\0]*$/, 'a header value without line breaks'))
    .refine((h) => !Object.keys(h).some((k) => RESERVED_HEADERS.includes(k.toLowerCase())), { message: `may not set ${RESERVED_HEADERS.join(', ')}` })
    .default({}),
  timeout: positiveDurationSchema.default(5000),
  caFile: z.string().min(1).optional(),
}).refine((w) => w.caFile === undefined || w.url.startsWith('https:'), { path: ['caFile'], message: 'caFile is for an https:// URL' });

const SYSLOG_FACILITIES = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
/** Facility codes (RFC 5424 §6.2.1); ftp is 11, local0 16. */
export const FACILITY_CODES: Readonly<Record<(typeof SYSLOG_FACILITIES)[number], number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

const syslogSchema = z
  .strictObject({
    type: z.literal('syslog'),
    transport: z.enum(['udp', 'tcp', 'tls', 'unix']).default('udp'),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** A unix stream socket (transport unix). */
    path: z.string().min(1).optional(),
    format: z.enum(['rfc5424', 'cef']).default('rfc5424'),
    facility: z.enum(SYSLOG_FACILITIES).default('local0'),
    appName: z.string().regex(/^[!-~]{1,48}$/, 'printable ASCII without spaces, at most 48 characters').default('fso-alert'),
    timeout: positiveDurationSchema.default(5000),
    caFile: z.string().min(1).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.transport === 'unix' && !s.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'transport unix needs the socket path' });
    if (s.transport !== 'unix' && !s.host) ctx.addIssue({ code: 'custom', path: ['host'], message: `transport ${s.transport} needs a host` });
  });

const emailSchema = z.strictObject({
  type: z.literal('email'),
  host: z.string().min(1),
  /** Default 465 with `security: tls`, else 587. */
  port: z.number().int().min(1).max(65535).optional(),
  /** `starttls` refuses to send in clear when the server offers no STARTTLS; `tls` is TLS from the first byte (465). */
  security: z.enum(['starttls', 'tls', 'none']).default('starttls'),
  caFile: z.string().min(1).optional(),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
  username: z.string().min(1).optional(),
  usernameEnv: envName.optional(),
  passwordFile: z.string().min(1).optional(),
  passwordEnv: envName.optional(),
  timeout: positiveDurationSchema.default(10_000),
  subjectPrefix: z.string().max(64).default('[FSO]'),
});

/**
 * A notification target of the rules file (`targets: { name: … }`), by
 * `type`: webhook, syslog or email. Secrets come from `*File` or `*Env`,
 * never from the file itself.
 */
export const targetSchema = z
  .looseObject({ type: z.string() })
  .superRefine((value, ctx) => noPlainSecrets(value, ctx))
  .pipe(z.discriminatedUnion('type', [webhookSchema, syslogSchema, emailSchema]));
export type TargetSpec = z.output<typeof targetSchema>;
export type WebhookSpec = z.output<typeof webhookSchema>;
export type SyslogSpec = z.output<typeof syslogSchema>;
export type EmailSpec = z.output<typeof emailSchema>;

/** Where a target's files and environment are read. */
export interface TargetContext {
  /** Relative `*File` paths are resolved here (the rules file's directory). */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
}

/** Reads one secret from `fileField` or `envField` of `spec`; undefined when neither is set. */
export async function readSecret(target: string, spec: Record<string, unknown>, fileField: string, envField: string, context: TargetContext): Promise<string | undefined> {
  const file = spec[fileField];
  const envVar = spec[envField];
  if (typeof file === 'string' && typeof envVar === 'string') throw new TargetConfigError(target, fileField, `give ${fileField} or ${envField}, not both`);
  if (typeof file === 'string') {
    const absolute = path.resolve(context.baseDir, file);
    let text: string;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (err) {
      throw new TargetConfigError(target, fileField, `cannot read ${absolute}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    const secret = text.replace(/\r?\n$/, '');
    if (secret === '') throw new TargetConfigError(target, fileField, `${absolute} is empty`);
    return secret;
  }
  if (typeof envVar === 'string') {
    const secret = context.env[envVar];
    if (!secret) throw new TargetConfigError(target, envField, `environment variable ${envVar} is unset or empty`);
    return secret;
  }
  return undefined;
}

/** Reads a CA file for a target that trusts a private CA. */
export async function readCa(target: string, caFile: string | undefined, context: TargetContext): Promise<Buffer | undefined> {
  if (caFile === undefined) return undefined;
  const absolute = path.resolve(context.baseDir, caFile);
  try {
    return await readFile(absolute);
  } catch (err) {
    throw new TargetConfigError(target, 'caFile', `cannot read ${absolute}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Builds the notifier of one target, reading its secrets now (so a missing
 * secret file is an error at start or reload, not at the first alert).
 * Throws a TargetConfigError naming the target and field.
 *
 * @example
 * const hook = await createNotifier('ops', targetSchema.parse({ type: 'webhook', url: 'https://hooks.example/fso', secretEnv: 'FSO_HOOK_KEY' }), { baseDir: '/etc/fso', env: process.env, log });
 */
export async function createNotifier(name: string, spec: TargetSpec, context: TargetContext): Promise<Notifier> {
  switch (spec.type) {
    case 'webhook':
      return createWebhookNotifier(name, spec, {
        secret: await readSecret(name, spec, 'secretFile', 'secretEnv', context),
        ca: await readCa(name, spec.caFile, context),
      });
    case 'syslog':
      return createSyslogNotifier(name, spec, { ca: await readCa(name, spec.caFile, context), log: context.log });
    case 'email': {
      const username = spec.username ?? (spec.usernameEnv ? context.env[spec.usernameEnv] : undefined);
      if (spec.usernameEnv && !username) throw new TargetConfigError(name, 'usernameEnv', `environment variable ${spec.usernameEnv} is unset or empty`);
      const password = await readSecret(name, spec, 'passwordFile', 'passwordEnv', context);
      if ((username === undefined) !== (password === undefined)) throw new TargetConfigError(name, username ? 'passwordFile' : 'username', 'a login needs both a username and a password');
      return createEmailNotifier(name, spec, { auth: username && password ? { user: username, pass: password } : undefined, ca: await readCa(name, spec.caFile, context) });
    }
  }
}
