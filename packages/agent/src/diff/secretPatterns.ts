import type { RedactPattern } from '@fso/common';
import { RedactPatternError } from '../errors.js';

/**
 * Where the secrets are in one line of text. Every regex here runs in time
 * linear in the line: each can start only at a delimiter or a fixed prefix,
 * its repetitions are over disjoint classes or bounded, and values are cut
 * by code (a sticky regex or indexOf), never by a lazy `.*?` scan.
 */

/** A secret found in a line: `line.slice(start, end)`, of `kind`. */
export interface SecretSpan {
  start: number;
  end: number;
  kind: string;
}

/** A configured extra pattern, compiled (`g` and `d` added). */
export interface CompiledPattern {
  kind: string;
  regex: RegExp;
}

const compiled = new WeakMap<RedactPattern, CompiledPattern>();

/** Compiles extra patterns once per config object (a config lives for many diffs). */
export function compilePatterns(patterns: readonly RedactPattern[]): CompiledPattern[] {
  return patterns.map((p) => {
    let entry = compiled.get(p);
    if (!entry) {
      try {
        entry = { kind: p.name, regex: new RegExp(p.pattern, `${p.flags ?? ''}gd`) };
      } catch (err) {
        throw new RedactPatternError(p.name, { cause: err });
      }
      compiled.set(p, entry);
    }
    return entry;
  });
}

/** A fixed-format token: every match (or its `secret` group) is a secret of `kind`. */
interface TokenRule {
  kind: string | ((match: RegExpExecArray) => string);
  /** Cheap substring test before the regex runs; most lines have none of these. */
  hint?: string;
  regex: RegExp;
  /** A last look at the secret found, when the regex alone would take too much. */
  accept?: (secret: string, kind: string) => boolean;
}

// Not secrets: empty, a variable or template reference, a YAML alias, a mask, a literal.
const PLACEHOLDER = /^(?:\$\{[^}]*\}|\$\(?[A-Za-z_]\w*\)?|\{\{[^}]*\}\}|<[^>]*>|%\([\w.]*\)s|[*&][\w-]+|\*+|x{3,}|\.\.\.|true|false|null|nil|none|~|yes|no|\||>|[|>][+-])$/i;

const AUTH_SCHEMES = 'Bearer|Basic|Token|Digest|Negotiate|Bot';

const TOKEN_RULES: readonly TokenRule[] = [
  { kind: 'aws-access-key-id', regex: /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}(?![A-Za-z0-9])/dg },
  { kind: 'gcp-api-key', hint: 'AIza', regex: /(?<![\w-])AIza[\w-]{35}(?![\w-])/dg },
  { kind: 'github-token', hint: 'g', regex: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,244})(?![A-Za-z0-9_])/dg },
  { kind: 'slack-token', hint: 'x', regex: /(?<![\w-])(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]{10,250}(?![\w-])/dg },
  { kind: 'slack-webhook', hint: 'hooks.slack.com', regex: /hooks\.slack\.com\/(?:services|workflows|triggers)\/(?<secret>[\w/-]{8,300})/dg },
  { kind: 'stripe-key', hint: '_live_', regex: /(?<![\w-])(?:sk|rk)_live_[A-Za-z0-9]{16,247}(?![\w-])/dg },
  { kind: 'npm-token', hint: 'npm_', regex: /(?<![\w-])npm_[A-Za-z0-9]{36}(?![\w-])/dg },
  // Header and payload are JSON objects: base64url of `{"` is `eyJ`.
  { kind: 'jwt', hint: 'eyJ', regex: /(?<![\w-])eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/dg },
  {
    kind: (m) => {
      const scheme = m.groups?.['scheme']?.toLowerCase();
      return scheme === 'bearer' ? 'bearer-token' : scheme === 'basic' ? 'basic-auth' : 'authorization';
    },
    regex: new RegExp(
      `(?<![\\w-])(?:Proxy-)?Authorization["']?\\s{0,8}[:=]\\s{0,8}["']?(?:(?<scheme>${AUTH_SCHEMES})\\s{1,8})?` +
        `(?!(?:${AUTH_SCHEMES})\\b)(?<secret>[\\w.~+/=-]{6,})`,
      'dgi',
    ),
    // Without a scheme, `authorization: required` is a setting: a credential is long or has a digit.
    accept: (secret, kind) => kind !== 'authorization' || secret.length >= 16 || /\d/.test(secret),
  },
  // A bearer token outside an Authorization header: long and with a digit, so prose ("Bearer authentication") is left alone.
  { kind: 'bearer-token', hint: 'Bearer', regex: /(?<![\w-])Bearer\s{1,8}(?<secret>(?=[\w.~+/-]{0,512}\d)[\w.~+/-]{16,}=*)/dg },
  {
    kind: 'url-password',
    hint: '://',
    regex: /(?<![\w+.-])[A-Za-z][\w+.-]{0,30}:\/\/[^\s:@/?#]{0,256}:(?<secret>[^\s@/?#]{1,256})@/dg,
    accept: (secret) => !PLACEHOLDER.test(secret),
  },
];

function pushMatches(regex: RegExp, line: string, each: (m: RegExpExecArray) => void): void {
  regex.lastIndex = 0;
  for (let m = regex.exec(line); m; m = regex.exec(line)) {
    each(m);
    if (m[0].length === 0) regex.lastIndex++;
  }
}

/** The span of the `secret` group when the match has one, else of the whole match. */
function secretSpan(m: RegExpExecArray, kind: string): SecretSpan | null {
  const range = m.indices?.groups?.['secret'] ?? m.indices?.[0];
  if (!range || range[0] === range[1]) return null;
  return { start: range[0], end: range[1], kind };
}

// A card number: 13-19 digits, single spaces or dashes between them, a known
// issuer prefix (so a millisecond timestamp, which starts with 1, is not one).
const CARD = /(?<!\w|\d[ -])[2-6]\d{3}(?:[ -]?\d){9,15}(?!\w|[ -]\d)/dg;
const CARD_ISSUER = /^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[5689])|6(?:011|5|4[4-9]|2))/;

/** The Luhn checksum every payment card number passes. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// `key = value` / `key: value` / `"key": "value"` / `--key=value` / `?key=value`:
// a key starts after a non-key character, so each run of key characters is tried once.
const ASSIGNMENT = /(?<=^|[^\w.-])(-{0,2}[A-Za-z_][\w.-]{0,127})["']?\s*(:=|=>|=(?!=)|:(?!:)|,)\s*/g;
// What may stand before a key that starts the line: its value runs to the end of the line (YAML, INI, .env, shell).
const LINE_START = /^\s*(?:(?:export|set|readonly|declare|local)\s+|-\s+)?/;
const UNQUOTED_TOKEN = /[^\s&;,'"`)}\]]+/y;

// Key words: compared with whole segments of the key (`db_password`, `clientSecret`, `x-api-key`).
const KEY_PREFIXES_OF_SECRET = new Set(['secret', 'signing', 'encryption', 'master', 'access', 'client', 'app', 'auth', 'session', 'hmac', 'shared', 'license']);
// A key naming something about the secret, not the secret: `password_file`, `token_url`, `max_tokens`.
const NOT_SECRET_LAST = new Set([
  'file', 'path', 'dir', 'url', 'uri', 'endpoint', 'type', 'length', 'len', 'min', 'max', 'size', 'count', 'expiry',
  'expires', 'expiration', 'ttl', 'timeout', 'policy', 'regex', 'pattern', 'field', 'name', 'id', 'hint', 'prompt',
  'label', 'header', 'env', 'var', 'required', 'enabled', 'enable', 'disabled', 'mode', 'format', 'algorithm', 'alg',
  'method', 'provider', 'command', 'cmd', 'rotation', 'age', 'prefix', 'version', 'location', 'ref', 'store',
]);

const SECRET_KEY_HINT = /pass|pwd|secret|token|key|credential/i;

function keySegments(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .split(/[_.-]+/)
    .filter((s) => s.length > 0);
}

// Keys recur (every line of a config, every repetition of hostile input): classify each once.
const kindCache = new Map<string, string | null>();

/** The redaction kind a key's value gets, or null when the key names no secret. */
export function secretKindOfKey(key: string): string | null {
  // Most keys name no secret: one cheap test before splitting the key.
  if (!SECRET_KEY_HINT.test(key)) return null;
  let kind = kindCache.get(key);
  if (kind === undefined) {
    if (kindCache.size >= 4096) kindCache.clear();
    kind = classifyKey(key);
    kindCache.set(key, kind);
  }
  return kind;
}

function classifyKey(key: string): string | null {
  const segs = keySegments(key);
  const last = segs.at(-1);
  if (last === undefined || NOT_SECRET_LAST.has(last)) return null;
  const has = (s: string): boolean => segs.includes(s);
  if (has('aws') && has('secret')) return 'aws-secret-key';
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const prev = segs[i - 1];
    if (seg.startsWith('passw') || seg === 'passphrase' || ((seg === 'pwd' || seg === 'pw') && segs.length > 1) || (seg === 'pass' && i > 0)) return 'password';
    if (seg === 'apikey' || (seg === 'key' && prev === 'api')) return 'api-key';
    if (seg === 'privatekey' || (seg === 'key' && prev === 'private')) return 'private-key';
    if (seg === 'token' || seg === 'authtoken') return 'token';
  }
  if (has('secret') || has('secrets') || has('credential') || has('credentials')) return 'secret';
  if (last === 'key' && KEY_PREFIXES_OF_SECRET.has(segs.at(-2) ?? '')) return 'secret';
  return null;
}

/** Where a quoted value starting at `open` ends (the closing quote's index), or -1 when it does not on this line. */
function closingQuote(line: string, open: number): number {
  const quote = line[open]!;
  for (let i = open + 1; i < line.length; i++) {
    const c = line[i];
    if (c === '\\' && quote !== "'") i++;
    else if (c === quote) return i;
  }
  return -1;
}

/** The value after a separator at `at`: [start, end), or null when there is none. */
function valueRange(line: string, at: number, restOfLine: boolean, quotedOnly: boolean): [number, number] | null {
  const first = line[at];
  if (first === '"' || first === "'" || first === '`') {
    const close = closingQuote(line, at);
    return close === -1 ? [at + 1, line.trimEnd().length] : [at + 1, close];
  }
  if (quotedOnly || at >= line.length) return null;
  if (restOfLine) {
    const comment = line.search(/\s#/);
    const end = (comment > at ? line.slice(0, comment) : line).trimEnd().length;
    return end > at ? [at, end] : null;
  }
  UNQUOTED_TOKEN.lastIndex = at;
  return UNQUOTED_TOKEN.test(line) ? [at, UNQUOTED_TOKEN.lastIndex] : null;
}

function findAssignments(line: string, spans: SecretSpan[]): void {
  // A line naming no secret key (most lines) is not scanned for keys at all.
  if (!SECRET_KEY_HINT.test(line)) return;
  const lineKeyStart = LINE_START.exec(line)![0].length;
  pushMatches(ASSIGNMENT, line, (m) => {
    const key = m[1]!;
    const kind = secretKindOfKey(key);
    if (!kind) return;
    const keyStart = m.index;
    const quotedKey = line[keyStart - 1] === '"' || line[keyStart - 1] === "'";
    const startsLine = keyStart === lineKeyStart || (quotedKey && keyStart === lineKeyStart + 1);
    const sep = m[2];
    // `,` only between quoted key and value: PHP's define('DB_PASSWORD', '…').
    if (sep === ',' && !quotedKey) return;
    const at = m.index + m[0].length;
    // `=>` is also an arrow function: only a quoted value counts there.
    const range = valueRange(line, at, startsLine && !quotedKey, sep === '=>' || sep === ',');
    if (!range) return;
    // Keys inside a secret value are hidden with it; skipping them keeps the scan linear.
    ASSIGNMENT.lastIndex = Math.max(ASSIGNMENT.lastIndex, range[1]);
    if (!PLACEHOLDER.test(line.slice(range[0], range[1]).trim())) spans.push({ start: range[0], end: range[1], kind });
  });
}

// <password>…</password>: an XML element named like a secret (Maven settings, Tomcat users).
const XML_ELEMENT = /<([A-Za-z_][\w.:-]{0,63})>([^<]+)<\/\1>/g;

function findXmlElements(line: string, spans: SecretSpan[]): void {
  if (!line.includes('</')) return;
  pushMatches(XML_ELEMENT, line, (m) => {
    const kind = secretKindOfKey(m[1]!.replace(/^.*:/, ''));
    const start = m.index + m[1]!.length + 2;
    if (kind && !PLACEHOLDER.test(m[2]!.trim())) spans.push({ start, end: start + m[2]!.length, kind });
  });
}

function findCards(line: string, spans: SecretSpan[]): void {
  pushMatches(CARD, line, (m) => {
    const digits = m[0].replace(/[ -]/g, '');
    if (CARD_ISSUER.test(digits) && passesLuhn(digits)) spans.push({ start: m.index, end: m.index + m[0].length, kind: 'card-number' });
  });
}

// PEM: a private key on one line (a JSON string or an env value with `\n` escapes).
const INLINE_PEM_BEGIN = /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----/g;
const TRAILING_SPACE = /\s*$/y;

function findInlinePem(line: string, spans: SecretSpan[]): void {
  if (!line.includes('PRIVATE KEY')) return;
  INLINE_PEM_BEGIN.lastIndex = 0;
  for (let m = INLINE_PEM_BEGIN.exec(line); m; m = INLINE_PEM_BEGIN.exec(line)) {
    const start = m.index + m[0].length;
    // indexOf from each BEGIN scans forward once: a missing END ends the search.
    const end = line.indexOf('-----END', start);
    if (end === -1) {
      TRAILING_SPACE.lastIndex = start;
      if (!TRAILING_SPACE.test(line)) spans.push({ start, end: line.length, kind: 'private-key' });
      return;
    }
    if (end > start) spans.push({ start, end, kind: 'private-key' });
    INLINE_PEM_BEGIN.lastIndex = end + 8;
  }
}

/**
 * Every secret in `line`, possibly overlapping (the caller merges them).
 * Built-in rules first, so an exact tie keeps the more specific kind.
 */
export function findSecrets(line: string, extra: readonly CompiledPattern[]): SecretSpan[] {
  const spans: SecretSpan[] = [];
  findInlinePem(line, spans);
  for (const rule of TOKEN_RULES) {
    if (rule.hint && !line.includes(rule.hint)) continue;
    pushMatches(rule.regex, line, (m) => {
      const span = secretSpan(m, typeof rule.kind === 'string' ? rule.kind : rule.kind(m));
      if (span && (!rule.accept || rule.accept(line.slice(span.start, span.end), span.kind))) spans.push(span);
    });
  }
  findAssignments(line, spans);
  findXmlElements(line, spans);
  findCards(line, spans);
  for (const pattern of extra) {
    pushMatches(pattern.regex, line, (m) => {
      const span = secretSpan(m, pattern.kind);
      if (span) spans.push(span);
    });
  }
  return spans;
}
