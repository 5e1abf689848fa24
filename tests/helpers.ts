import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';

/** A fresh temp directory; `cleanup()` removes it. */
export async function createTempDir(prefix = 'fso-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Polls `check` until it returns a truthy value, or fails after `timeoutMs`
 * with a message naming what never arrived.
 */
export async function waitFor<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<T> {
  return waitForProgress(check, undefined, what, { stallMs: timeoutMs, capMs: timeoutMs, intervalMs });
}

/** Options of {@link waitForProgress}. */
export interface ProgressOptions {
  /** Fail once `progress` has not changed for this long; default 30 s. */
  stallMs?: number;
  /** Fail after this long in all, progress or not; default 5 min. */
  capMs?: number;
  /** Poll interval; default 100 ms. */
  intervalMs?: number;
}

/**
 * Polls `check` until it returns a truthy value, for as long as the work it
 * waits for is moving: `progress()` (a count of records, or a short text
 * such as `"9,500 records, ack 9,480"`) must change at least once every
 * `stallMs`. Without `progress`, `stallMs` is a fixed budget ({@link waitFor}).
 * A fixed budget for a volume of work fails on a loaded machine while the
 * work is still advancing (issue 12); this fails only when the work stalls,
 * or after the generous `capMs`, naming what never arrived and where
 * progress stood.
 */
export async function waitForProgress<T>(
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  progress: (() => number | string | Promise<number | string>) | undefined,
  what: string,
  options: ProgressOptions = {},
): Promise<T> {
  const { stallMs = 30_000, capMs = 300_000, intervalMs = 100 } = options;
  const started = Date.now();
  let movedAt = started;
  let last: number | string | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    const now = progress ? await progress() : undefined;
    if (now !== last) {
      last = now;
      movedAt = Date.now();
    }
    const errorSuffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
    const progressSuffix = progress ? ` (progress: ${String(last)})` : '';
    if (Date.now() - movedAt > stallMs) {
      const failure = progress ? `no progress for ${stallMs} ms` : `timed out after ${stallMs} ms`;
      throw new Error(`${failure} waiting for ${what}${progressSuffix}${errorSuffix}`);
    }
    if (Date.now() - started > capMs) throw new Error(`timed out after ${capMs} ms, still progressing, waiting for ${what}${progressSuffix}${errorSuffix}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A message a {@link MessageCollector} saw. */
export interface CollectedMessage {
  topic: string;
  payload: Buffer;
  retain: boolean;
  /** The payload parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

/** A real MQTT client that keeps every message of its subscriptions. */
export interface MessageCollector {
  client: MqttClient;
  messages: CollectedMessage[];
  /** Waits until `predicate` holds for some message; returns it. */
  waitFor(predicate: (m: CollectedMessage) => boolean, what: string, timeoutMs?: number): Promise<CollectedMessage>;
  /** Waits until `count` messages satisfy `predicate`; returns them. */
  waitForCount(predicate: (m: CollectedMessage) => boolean, count: number, what: string, timeoutMs?: number): Promise<CollectedMessage[]>;
  close(): Promise<void>;
}

/** Connects a collector subscribed (QoS 1) to `topics` on `url`. */
export async function createCollector(url: string, topics: string | string[]): Promise<MessageCollector> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 200 });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  const messages: CollectedMessage[] = [];
  client.on('message', (topic, payload, packet) => {
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      json = undefined;
    }
    messages.push({ topic, payload, retain: packet.retain, json });
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    client,
    messages,
    waitFor: (predicate, what, timeoutMs) => waitFor(() => messages.find(predicate), what, timeoutMs),
    waitForCount: (predicate, count, what, timeoutMs) =>
      waitFor(
        () => {
          const found = messages.filter(predicate);
          return found.length >= count ? found : undefined;
        },
        `${count} × ${what}`,
        timeoutMs,
      ),
    close: () => client.endAsync(),
  };
}

/** One line of an audit file. */
export type AuditLine = Record<string, unknown> & { record: string; topic: string; receivedAt: string };

/**
 * Every complete line of the `kind` audit files of `dir`, oldest day first
 * ([] when the dir does not exist yet). A torn last line (no newline yet) is
 * left out: it is not a record.
 */
export async function readAuditLines(dir: string, kind: 'events' | 'diffs' | 'rejected' = 'events'): Promise<AuditLine[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith(`${kind}-`) && n.endsWith('.jsonl')).sort();
  } catch {
    return [];
  }
  const lines: AuditLine[] = [];
  for (const name of names) {
    const text = await readFile(path.join(dir, name), 'utf8');
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) if (line) lines.push(JSON.parse(line) as AuditLine);
  }
  return lines;
}

/** Prometheus text format, parsed: `name{labels}` → value (comments skipped); a line of another shape throws. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

/** What a CLI's `main` returned and printed, run in-process by {@link runCli}. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a bin's exported `main(argv, io)` in-process and keeps what it printed. */
export async function runCli(
  main: (argv: string[], io: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream }) => Promise<number>,
  argv: string[],
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await main(argv, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}
