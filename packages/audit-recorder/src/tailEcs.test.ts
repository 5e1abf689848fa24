import { spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { ECS_VERSION, sealLine } from '@fso/audit-trail';
import type { EcsDocument } from '@fso/audit-trail';
import { main } from './cli.js';
import { writeChain } from './testing/auditDir.js';
import { captureOutput } from './testing/output.js';

/** The built bin: the forwarder runs as its own process, piped into Filebeat, Vector or Logstash. */
const bin = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const DAY = '2026-11-22';
const SHA = 'ab'.repeat(32);

let tmp: { path: string; cleanup: () => Promise<void> };

const event = (seq: number, type: string, p: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  schema: 'fso.event/1', id: `e1-${seq}`, agentId: 'web-01', epoch: 'e1', seq, type, path: p, root: '/srv/app', kind: 'file', size: 6,
  mtime: `${DAY}T10:00:00.000Z`, sha256: SHA, hashSkipped: null, important: p.endsWith('.conf'), origin: 'live',
  observedAt: `${DAY}T10:00:0${seq}.100Z`, emittedAt: `${DAY}T10:00:0${seq}.110Z`, ...extra,
  record: 'event', topic: `fso/agents/web-01/events/${type}`, receivedAt: `${DAY}T10:00:0${seq}.120Z`,
});

beforeEach(async () => {
  tmp = await createTempDir('fso-tail-ecs-');
  await writeChain(tmp.path, 'events', {
    [DAY]: [
      { schema: 'fso.status/1', agentId: 'web-01', state: 'online', hostname: 'web-01.example.net', version: '0.1.0', epoch: 'e1', lastSeq: 0,
        config: { revision: null, state: 'none', error: null }, watching: [], at: `${DAY}T10:00:00.000Z`, record: 'status', topic: 'fso/agents/web-01/status', receivedAt: `${DAY}T10:00:00.050Z` },
      event(1, 'create', '/srv/app/app.conf'),
      event(3, 'rename', '/srv/app/new.conf', { oldPath: '/srv/app/app.conf' }),
      { record: 'gap', agentId: 'web-01', epoch: 'e0', fromSeq: 4, toSeq: 9, reason: 'epoch-changed', topic: 'fso/agents/web-01/status', receivedAt: `${DAY}T10:00:04.000Z` },
    ],
  });
  await writeChain(tmp.path, 'diffs', {
    [DAY]: [{
      schema: 'fso.diff/1', id: 'e1-2', agentId: 'web-01', epoch: 'e1', seq: 2, eventId: 'e1-1', path: '/srv/app/app.conf', format: 'unified',
      patch: '--- a/srv/app/app.conf\n+++ b/srv/app/app.conf\n@@ -0,0 +1 @@\n+port=8080\n', added: 1, removed: 0, skipped: null, redactions: [],
      observedAt: `${DAY}T10:00:01.100Z`, emittedAt: `${DAY}T10:00:02.110Z`, record: 'diff', topic: 'fso/agents/web-01/diffs', receivedAt: `${DAY}T10:00:02.120Z`,
    }],
  });
});

afterEach(() => tmp.cleanup());

async function tail(...args: string[]): Promise<{ code: number; lines: string[]; err: string }> {
  const stdout = captureOutput();
  const stderr = captureOutput();
  const code = await main(['tail', '--dir', tmp.path, ...args], { stdout: stdout.stream, stderr: stderr.stream });
  return { code, lines: stdout.lines(), err: stderr.text() };
}

describe('fso-audit tail --format', () => {
  it('prints one ECS document per record with --format ecs, in the order (and with the message) of the text format', async () => {
    const ecs = await tail('--format', 'ecs');
    const text = await tail('--format', 'text');
    expect(ecs.code).toBe(0);
    const docs = ecs.lines.map((l) => JSON.parse(l) as EcsDocument);
    expect(docs.map((d) => d.message)).toEqual(text.lines);
    expect(docs.map((d) => [d.event.dataset, d.event.action])).toEqual([
      ['fso.status', 'agent-online'],
      ['fso.file', 'created'],
      ['fso.diff', 'diffed'],
      ['fso.file', 'renamed'],
      ['fso.gap', 'gap'],
    ]);
    expect(docs[3]).toMatchObject({
      '@timestamp': `${DAY}T10:00:03.100Z`,
      ecs: { version: ECS_VERSION },
      event: { kind: 'event', category: ['file'], type: ['change'], action: 'renamed', id: 'e1-3', sequence: 3, created: `${DAY}T10:00:03.110Z`, ingested: `${DAY}T10:00:03.120Z` },
      file: { path: '/srv/app/new.conf', name: 'new.conf', directory: '/srv/app', extension: 'conf', type: 'file', hash: { sha256: SHA } },
      agent: { id: 'web-01', type: 'fso-agent' },
      host: { name: 'web-01' },
      labels: { important: 'true' },
      fso: { old_path: '/srv/app/app.conf', epoch: 'e1', seq: 3, topic: 'fso/agents/web-01/events/rename' },
    });
    // event.hash is the line's seal: unique per line, a document id for the SIEM.
    expect(new Set(docs.map((d) => d.event.hash)).size).toBe(docs.length);
    expect(docs.every((d) => /^[0-9a-f]{64}$/.test(String(d.event.hash)))).toBe(true);
  });

  it('filters as the other formats do', async () => {
    const { lines } = await tail('--format', 'ecs', '--type', 'diff');
    expect(lines.map((l) => (JSON.parse(l) as EcsDocument).fso)).toMatchObject([{ diff: { event_id: 'e1-1', added: 1 } }]);
  });

  it('keeps --json as --format json, and refuses both together or an unknown format with exit 2', async () => {
    const json = await tail('--json');
    expect(json.lines).toHaveLength(5);
    expect((await tail('--format', 'json')).lines).toEqual(json.lines);
    expect(JSON.parse(json.lines[0] ?? '')).toHaveProperty('prevHash');
    const both = await tail('--json', '--format', 'ecs');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/cannot be used with option '--format/);
    const unknown = await tail('--format', 'xml');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('Allowed choices are text, json, ecs');
  });

  it('forwards: the built fso-audit with -f --format ecs prints new records as documents until SIGTERM, then exits 0', async () => {
    const child = spawn(process.execPath, [bin, 'tail', '--dir', tmp.path, '-f', '--format', 'ecs', '--type', 'event'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const docs = (): EcsDocument[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as EcsDocument);
    try {
      await waitFor(() => docs().length === 2, `the trail's two events as ECS documents (stdout: ${out}, stderr: ${err})`, 20_000);
      const deleted = event(5, 'delete', '/srv/app/new.conf', { size: null, mtime: null, sha256: null, hashSkipped: 'vanished' });
      await appendFile(path.join(tmp.path, `events-${DAY}.jsonl`), `${sealLine(deleted, '0'.repeat(64)).text}\n`);
      const [, , added] = await waitFor(() => (docs().length === 3 ? docs() : undefined), 'the appended delete as an ECS document', 20_000);
      expect(added).toMatchObject({ event: { type: ['deletion'], action: 'deleted', id: 'e1-5' }, file: { path: '/srv/app/new.conf' }, fso: { hash_skipped: 'vanished' } });
      expect(added?.file).not.toHaveProperty('size');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
