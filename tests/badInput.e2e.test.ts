import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { createLogger, diffSchema, eventSchema, parseAgentConfig } from '@fso/common';
import type { FsoDiff, FsoEvent } from '@fso/common';
import { createCollector, createTempDir, waitFor, waitForProgress } from './helpers.js';
import type { MessageCollector } from './helpers.js';

const EMPTY_SHA = createHash('sha256').update('').digest('hex');
const agentCli = fileURLToPath(new URL('../packages/agent/dist/cli.js', import.meta.url));

describe('bad input never crashes or hangs the agent (real broker, real files)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let broker: Broker;
  let agent: Agent | undefined;
  let watched: string;
  let sub: MessageCollector;
  let logLines: Array<Record<string, unknown>>;

  // Parsed once each: a 10,000-event burst must not be re-validated on every poll.
  const parsed: FsoEvent[] = [];
  const parsedDiffs: FsoDiff[] = [];
  let parsedUpTo = 0;
  const parse = (): void => {
    for (; parsedUpTo < sub.messages.length; parsedUpTo += 1) {
      const m = sub.messages[parsedUpTo]!;
      if (m.topic.includes('/events/')) parsed.push(eventSchema.parse(m.json));
      if (m.topic.endsWith('/diffs')) parsedDiffs.push(diffSchema.parse(m.json));
    }
  };
  const events = (): FsoEvent[] => (parse(), parsed);
  const diffs = (): FsoDiff[] => (parse(), parsedDiffs);
  /** Each event once: with no recorder to ack, the agent resends unacked ones (same id) every 10 s. */
  const uniqueEvents = (): FsoEvent[] => [...new Map(events().map((e) => [e.id, e])).values()];
  const waitEvent = (pred: (e: FsoEvent) => boolean, what: string, timeoutMs = 10_000): Promise<FsoEvent> =>
    waitFor(() => events().find(pred), what, timeoutMs);
  const launch = async (extra: Record<string, unknown> = {}): Promise<Agent> => {
    const logger = createLogger({
      name: 'fso-agent', format: 'json', level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    });
    const initialConfig = parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }], ...extra }, 'test');
    agent = await startAgent({ agentId: 'edge', brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), initialConfig, logger, pairWindowMs: 100 });
    await agent.ready();
    return agent;
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    watched = path.join(tmp.path, 'watched');
    await mkdir(watched);
    broker = await startBroker({ port: 0 });
    sub = await createCollector(broker.url, ['fso/agents/+/events/#', 'fso/agents/+/diffs']);
    logLines = [];
    parsed.length = 0;
    parsedDiffs.length = 0;
    parsedUpTo = 0;
  });
  afterEach(async () => {
    await agent?.close();
    agent = undefined;
    await sub.close();
    await broker.close();
    await tmp.cleanup();
  });

  it('0-byte, binary and 50 MB files: right hash, size and diff outcome', async () => {
    await launch({ diff: { maxFileBytes: 1024 * 1024 } });
    const files = { empty: Buffer.alloc(0), bin: Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 0, 1]), big: Buffer.alloc(50 * 1024 * 1024, 'a') };
    for (const [name, content] of Object.entries(files)) await writeFile(path.join(watched, `${name}.conf`), content);
    // A file can be seen mid-write (a create with 32 of the 50 MB, then a modify: issue 12),
    // so each file's event is the one with its final content, and its diff the diff of that event.
    const final = async (name: keyof typeof files): Promise<{ event: FsoEvent; diff: FsoDiff }> => {
      const p = path.join(watched, `${name}.conf`);
      const sha256 = createHash('sha256').update(files[name]).digest('hex');
      const event = await waitForProgress(
        () => events().find((e) => e.path === p && e.sha256 === sha256),
        () => events().filter((e) => e.path === p).map((e) => `${e.type} ${e.size} bytes`).join(', ') || 'no event',
        `the event of ${name}.conf with its final content (${files[name].length} bytes)`,
      );
      const diff = await waitFor(() => diffs().find((d) => d.eventId === event.id), `the diff of ${name}.conf's event ${event.id}`, 30_000);
      return { event, diff };
    };
    const empty = await final('empty');
    expect(empty.event).toMatchObject({ type: 'create', size: 0, sha256: EMPTY_SHA });
    expect(empty.diff).toMatchObject({ skipped: null, added: 0, removed: 0 });
    expect((await final('bin')).diff.skipped).toBe('binary');
    const large = await final('big');
    expect(large.event.size).toBe(files.big.length);
    expect(large.diff.skipped).toBe('too-large');
  });

  it('a file larger than the hash limit is reported with hashSkipped too-large', async () => {
    await launch({ hashing: { maxFileBytes: 1000 } });
    await writeFile(path.join(watched, 'over.bin'), Buffer.alloc(5000, 1));
    // Its create can be seen before the write (0 bytes, hashed): wait for the 5000 bytes.
    const e = await waitEvent((x) => x.path.endsWith('over.bin') && x.size === 5000, 'the oversized file at its 5000 bytes');
    expect(e).toMatchObject({ size: 5000, sha256: null, hashSkipped: 'too-large' });
  });

  it('10,000 files created at once in one directory: every create, once', async () => {
    await launch();
    const dir = path.join(watched, 'burst');
    await mkdir(dir);
    const n = 10_000;
    for (let i = 0; i < n; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => writeFile(path.join(dir, `f${i + j}.txt`), `${i + j}`)));
    }
    const inBurst = (): FsoEvent[] => events().filter((e) => e.path.startsWith(`${dir}/`));
    const sha = (i: number): string => createHash('sha256').update(`${i}`).digest('hex');
    const latest = (): Map<string, FsoEvent> => new Map(inBurst().map((e) => [e.path, e]));
    // Done when every file's last event has its content.
    // As long as events keep coming (a loaded machine is slow, not stuck).
    await waitForProgress(
      () => latest().size >= n && [...latest().entries()].every(([p, e]) => e.sha256 === sha(Number(path.basename(p).slice(1, -4)))),
      () => `${inBurst().length} events, ${latest().size} of ${n} files`,
      `${n} files with their content`,
    );
    // Without a recorder nothing is acknowledged, so the agent may resend: a resend is the same id.
    const byId = new Map(inBurst().map((e) => [e.id, e]));
    const creates = [...byId.values()].filter((e) => e.type === 'create');
    expect(new Set(creates.map((e) => e.path)).size).toBe(n);
    expect(creates).toHaveLength(n);
    // 500 writeFiles at once: a file's open (it exists, empty) can come well over the pair
    // window before its write, and then the trail rightly says create (empty), then modify.
    // Nothing else: no second create, no delete, no modify after a create that had the content.
    const others = [...byId.values()].filter((e) => e.type !== 'create');
    const createdEmpty = new Set(creates.filter((e) => e.size === 0).map((e) => e.path));
    expect(others.filter((e) => e.type !== 'modify' || !createdEmpty.has(e.path))).toEqual([]);
    expect(new Set(others.map((e) => e.path)).size).toBe(others.length);
  }, 600_000);

  it('symlinks are reported, never followed, and a symlink loop does not hang', async () => {
    await launch();
    await symlink('.', path.join(watched, 'loop'));
    await symlink('/etc', path.join(watched, 'outside'));
    await waitEvent((e) => e.path.endsWith('/loop'), 'the loop symlink');
    await waitEvent((e) => e.path.endsWith('/outside'), 'the outside symlink');
    await writeFile(path.join(watched, 'after.txt'), 'still alive');
    await waitEvent((e) => e.path.endsWith('after.txt'), 'an event after the symlinks');
    expect(uniqueEvents().filter((e) => e.kind === 'symlink').map((e) => e.sha256)).toEqual([null, null]);
    expect(events().some((e) => e.path.includes('/loop/') || e.path.includes('/outside/'))).toBe(false);
  });

  it('names with spaces and newlines are reported exactly; a non-UTF-8 name gets a clear log line', async () => {
    await launch();
    const spaced = path.join(watched, 'a name with spaces.txt');
    const newline = path.join(watched, 'line\nbreak.txt');
    await writeFile(spaced, 's');
    await writeFile(newline, 'n');
    await waitEvent((e) => e.path === spaced, 'the spaced name');
    await waitEvent((e) => e.path === newline, 'the name with a newline');
    const raw = Buffer.concat([Buffer.from(`${watched}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from('.txt')]);
    await writeFile(raw, 'x');
    await waitFor(() => logLines.find((l) => String(l.msg).includes('not valid UTF-8')), 'a log line about the non-UTF-8 name');
    await writeFile(path.join(watched, 'after.txt'), 'alive');
    await waitEvent((e) => e.path.endsWith('after.txt'), 'an event after the bad name');
  });

  it('a file that vanishes right after it appears: no crash, the agent keeps reporting', async () => {
    await launch();
    for (let i = 0; i < 50; i += 1) {
      const f = path.join(watched, `flash${i}.txt`);
      await writeFile(f, 'x');
      await rm(f);
    }
    await writeFile(path.join(watched, 'after.txt'), 'alive');
    await waitEvent((e) => e.path.endsWith('after.txt'), 'an event after the flashes');
    // Whatever of the flashes was seen is reported as a create followed by a delete, never half.
    const flashes = uniqueEvents().filter((e) => e.path.includes('flash'));
    for (const name of new Set(flashes.map((e) => e.path))) {
      expect(flashes.filter((e) => e.path === name).map((e) => e.type)).toEqual(['create', 'delete']);
    }
  });

  it('an unreadable file (EACCES) is reported without a hash, with a reason', async () => {
    // As root every file is readable, so the agent runs as `nobody` in its own process.
    const asRoot = process.getuid?.() === 0;
    const state = path.join(tmp.path, 'nobody-state');
    await mkdir(state);
    if (asRoot) {
      await chown(state, 65534, 65534);
      await chmod(tmp.path, 0o755);
    }
    const secret = path.join(watched, 'secret.conf');
    await writeFile(secret, 'root only');
    await chmod(secret, 0o000);
    const child = spawn(process.execPath, [agentCli, '--id', 'nobody', '--watch', watched, '--important', '**/*.conf', '--state-dir', state, '--broker', broker.url], {
      stdio: ['ignore', 'ignore', 'pipe'], ...(asRoot ? { uid: 65534, gid: 65534 } : {}), env: { ...process.env, FSO_LOG_FORMAT: 'json' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await waitFor(() => stderr.includes('"msg":"watching"'), 'the agent process to be watching', 15_000);
      await writeFile(secret, 'changed');
      await chmod(secret, 0o000);
      const e = await waitEvent((x) => x.agentId === 'nobody' && x.path === secret, 'the event of the unreadable file');
      expect(e).toMatchObject({ type: 'modify', sha256: null, hashSkipped: 'unreadable' });
      const diff = await sub.waitFor((m) => m.topic === 'fso/agents/nobody/diffs', 'the diff outcome');
      expect(diffSchema.parse(diff.json).skipped).toBe('unreadable');
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
