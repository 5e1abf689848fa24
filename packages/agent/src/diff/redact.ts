import { createHash, createHmac } from 'node:crypto';
import type { RedactPattern, Redaction } from '@fso/common';
import { compilePatterns, findSecrets } from './secretPatterns.js';
import type { CompiledPattern, SecretSpan } from './secretPatterns.js';

/**
 * Secrets out of diffs before they leave the host (issue 4, item 6). Each
 * secret becomes `[REDACTED:<kind>:<8 hex>]`, the hex being the start of the
 * SHA-256 (or HMAC-SHA-256) of the secret: the same secret gives the same
 * marker on the `-` and `+` side of a patch, a changed secret a different
 * one, so an auditor sees that it changed without seeing it.
 */

/** Options of {@link redactSecrets}. */
export interface RedactOptions {
  /**
   * Key of an HMAC-SHA-256 for the marker hashes. Without it they are plain
   * SHA-256, which anyone can test guesses of a short password against.
   */
  key?: Uint8Array;
  /**
   * The old and new texts a unified diff was made from: a hunk can show key
   * lines of a private key without its BEGIN line, only the whole texts say
   * they are key material.
   */
  sources?: { old: string; new: string };
}

/** A text with its secrets replaced, and how many of each kind. */
export interface RedactResult {
  text: string;
  /** One entry per kind found, sorted by kind; empty when nothing was replaced. */
  redactions: Redaction[];
}

const PEM_BEGIN = /^\s*-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----/;
const PEM_END = /^\s*-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----/;
const HUNK_HEADER = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/**
 * The 1-based numbers of the lines strictly inside private key blocks
 * (`-----BEGIN … PRIVATE KEY-----` to its END line, or to the end of an
 * unterminated block). The BEGIN and END lines themselves are not secret.
 */
export function findPrivateKeyLines(text: string): Set<number> {
  const inside = new Set<number>();
  // Files without a key are the rule: one native search, no line split.
  if (!text.includes('PRIVATE KEY-----')) return inside;
  let inKey = false;
  text.split('\n').forEach((line, i) => {
    if (inKey && PEM_END.test(line)) inKey = false;
    else if (inKey) inside.add(i + 1);
    else if (PEM_BEGIN.test(line)) inKey = true;
  });
  return inside;
}

/** Which side of a diff a line belongs to, with its line number there. */
interface LineSides {
  old: number | null;
  new: number | null;
}

/** Decides, line by line, whether a line is the body of a private key. */
interface KeyTracker {
  isKeyLine(content: string, sides: LineSides): boolean;
}

/** Without the source texts: follow BEGIN and END lines, separately on the old and the new side. */
function trackByMarkers(): KeyTracker {
  let oldIn = false;
  let newIn = false;
  return {
    isKeyLine(content, sides) {
      const inside = (sides.old !== null && oldIn) || (sides.new !== null && newIn);
      const begins = !inside && PEM_BEGIN.test(content);
      const ends = inside && PEM_END.test(content);
      if (begins || ends) {
        if (sides.old !== null) oldIn = begins;
        if (sides.new !== null) newIn = begins;
        return false;
      }
      return inside;
    },
  };
}

function trackBySources(sources: { old: string; new: string }): KeyTracker {
  const oldLines = findPrivateKeyLines(sources.old);
  const newLines = findPrivateKeyLines(sources.new);
  return {
    isKeyLine: (_content, sides) =>
      (sides.old !== null && oldLines.has(sides.old)) || (sides.new !== null && newLines.has(sides.new)),
  };
}

/**
 * Overlapping spans become one, of the kind of a span covering all of it
 * (the earliest rule on a tie), else of the longest. One pass after a sort.
 */
function mergeSpans(spans: SecretSpan[]): SecretSpan[] {
  const order = spans.map((span, rank) => ({ span, rank }));
  // By start, then longest first, then rule order: a group's first entry is its only possible covering span.
  order.sort((a, b) => a.span.start - b.span.start || b.span.end - a.span.end || a.rank - b.rank);
  const merged: SecretSpan[] = [];
  let first: SecretSpan | undefined;
  let longest: SecretSpan | undefined;
  let end = -1;
  const flush = (): void => {
    if (first && longest) merged.push({ start: first.start, end, kind: (first.end === end ? first : longest).kind });
  };
  for (const { span } of order) {
    if (span.start >= end) {
      flush();
      first = longest = span;
      end = span.end;
      continue;
    }
    end = Math.max(end, span.end);
    if (span.end - span.start > longest!.end - longest!.start) longest = span;
  }
  flush();
  return merged;
}

/**
 * Replaces the secrets in `text`. A unified diff (`--- `/`+++ ` headers,
 * `@@` hunks) is read as one: headers are kept, each hunk line is redacted
 * after its `+`/`-`/space prefix, and private key blocks are followed on the
 * old and the new side. Runs in time linear in the text, line by line.
 *
 * @param extraPatterns configured patterns (`diff.redact`): every match, or its `secret` named group, is replaced.
 * @throws {RedactPatternError} when an extra pattern is not a valid regex (the config schema refuses those first).
 * @example
 * const { text, redactions } = redactSecrets('password=hunter2\n');
 * // text: 'password=[REDACTED:password:f52fbd32]\n', redactions: [{ kind: 'password', count: 1 }]
 */
export function redactSecrets(text: string, extraPatterns: readonly RedactPattern[] = [], options: RedactOptions = {}): RedactResult {
  const { lines, redactLine, redactions } = startRedaction(text, extraPatterns, options);
  return { text: lines.map(redactLine).join('\n'), redactions: redactions() };
}

/** Options of {@link redactSecretsAsync}. */
export interface RedactAsyncOptions extends RedactOptions {
  /** Longest stretch of work between two turns of the event loop (ms); default 5. */
  sliceMs?: number;
}

/**
 * {@link redactSecrets} in slices of at most `sliceMs`, letting the event
 * loop run in between: a multi-megabyte patch costs the agent's other events
 * a few milliseconds of delay at a time, not its whole redaction at once.
 *
 * @example
 * const { text, redactions } = await redactSecretsAsync(patch, config.diff.redact, { key });
 */
export async function redactSecretsAsync(text: string, extraPatterns: readonly RedactPattern[] = [], options: RedactAsyncOptions = {}): Promise<RedactResult> {
  const sliceMs = options.sliceMs ?? 5;
  const { lines, redactLine, redactions } = startRedaction(text, extraPatterns, options);
  const out = new Array<string>(lines.length);
  let sliceEnd = performance.now() + sliceMs;
  for (let i = 0; i < lines.length; i++) {
    out[i] = redactLine(lines[i] as string);
    // The clock is read every 256 lines: cheap, and a slice overruns by 256 lines at most.
    if ((i & 255) === 255 && performance.now() > sliceEnd) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceEnd = performance.now() + sliceMs;
    }
  }
  return { text: out.join('\n'), redactions: redactions() };
}

/** The lines of `text` and the stateful function that redacts them in order. */
function startRedaction(
  text: string,
  extraPatterns: readonly RedactPattern[],
  options: RedactOptions,
): { lines: string[]; redactLine: (line: string) => string; redactions: () => Redaction[] } {
  const extra = compilePatterns(extraPatterns);
  const counts = new Map<string, number>();
  // The same secret recurs (context lines, old and new side): hash it once per call.
  const markers = new Map<string, string>();
  const marker = (kind: string, secret: string): string => {
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const id = `${kind}\u0000${secret}`;
    let made = markers.get(id);
    if (made === undefined) {
      const hash = options.key ? createHmac('sha256', options.key) : createHash('sha256');
      made = `[REDACTED:${kind}:${hash.update(secret, 'utf8').digest('hex').slice(0, 8)}]`;
      markers.set(id, made);
    }
    return made;
  };
  const redactContent = (content: string, isKey: boolean): string => {
    if (isKey) return content.trim() === '' ? content : marker('private-key', content);
    return replaceSpans(content, extra, marker);
  };
  const redactions = (): Redaction[] => summarize(counts);

  const lines = text.split('\n');
  const isPatch = lines[0]?.startsWith('--- ') === true && lines[1]?.startsWith('+++ ') === true;
  const tracker = options.sources ? trackBySources(options.sources) : trackByMarkers();
  if (!isPatch) {
    let lineNo = 0;
    return {
      lines,
      redactLine: (line) => {
        lineNo++;
        return redactContent(line, tracker.isKeyLine(line, { old: lineNo, new: lineNo }));
      },
      redactions,
    };
  }
  let oldNo = 0;
  let newNo = 0;
  let inHunk = false;
  const redactLine = (line: string): string => {
    const hunk = HUNK_HEADER.exec(line);
    if (hunk) {
      inHunk = true;
      oldNo = Number(hunk[1]);
      newNo = Number(hunk[2]);
      return line;
    }
    const prefix = line[0];
    // File headers, "\ No newline at end of file", and the empty string after the last newline.
    if (!inHunk || line === '' || prefix === '\\') return line;
    if (prefix !== ' ' && prefix !== '-' && prefix !== '+') return redactContent(line, false);
    const sides: LineSides = { old: prefix === '+' ? null : oldNo, new: prefix === '-' ? null : newNo };
    if (sides.old !== null) oldNo++;
    if (sides.new !== null) newNo++;
    const content = line.slice(1);
    return prefix + redactContent(content, tracker.isKeyLine(content, sides));
  };
  return { lines, redactLine, redactions };
}

function replaceSpans(line: string, extra: readonly CompiledPattern[], marker: (kind: string, secret: string) => string): string {
  const spans = findSecrets(line, extra);
  if (spans.length === 0) return line;
  let out = '';
  let at = 0;
  for (const span of mergeSpans(spans)) {
    out += line.slice(at, span.start) + marker(span.kind, line.slice(span.start, span.end));
    at = span.end;
  }
  return out + line.slice(at);
}

function summarize(counts: Map<string, number>): Redaction[] {
  return [...counts]
    .map(([kind, count]) => ({ kind, count }))
    .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
}
