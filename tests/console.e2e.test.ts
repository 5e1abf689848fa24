// The console's HTTP API on a real stack: logins checked by the real broker,
// records written by the real agent and recorder, read back through the API.
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_AGENT, CONSOLE_USERS, startConsoleStack } from './consoleStack.js';
import type { ConsoleStack } from './consoleStack.js';
import { waitFor } from './helpers.js';

let stack: ConsoleStack;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(pathname: string, init: RequestInit & { cookie?: string } = {}): Promise<Answer> {
  const { cookie, ...rest } = init;
  const res = await fetch(`${stack.console.url}${pathname}`, { ...rest, headers: { ...(cookie ? { cookie } : {}), ...(rest.headers as Record<string, string> | undefined) } });
  const text = await res.text();
  return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : { text }, headers: res.headers };
}

async function login(user: { username: string; password: string }): Promise<{ cookie: string; body: Record<string, unknown> }> {
  const res = await call('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(user) });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string;
  expect(res.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict; Path=\//);
  return { cookie, body: res.body };
}

describe.each([{ reader: 'index', index: true }, { reader: 'linear scan', index: false }])('console over the $reader', ({ index }) => {
  beforeAll(async () => {
    stack = await startConsoleStack({ index });
  });
  afterAll(async () => {
    await stack?.close();
  });

  describe('console logins: the broker decides', () => {
    it('refuses a wrong password with the broker\'s reason, and an API call without a login', async () => {
      const bad = await call('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'dash', password: 'wrong' }) });
      expect(bad.status).toBe(401);
      expect(bad.body.error).toBe('bad username or password');
      expect(bad.headers.get('set-cookie')).toBeNull();
      expect((await call('/api/records')).status).toBe(401);
      expect((await call('/api/records', { cookie: 'fso_console=forged-token' })).status).toBe(401);
    });

    it('gives a viewer the trail and the fleet, a controller the fleet and configs, an agent no session', async () => {
      expect((await login(CONSOLE_USERS.viewer)).body.access).toEqual({ trail: true, fleet: true, configs: false });
      const controller = await login(CONSOLE_USERS.controller);
      expect(controller.body.access).toEqual({ trail: false, fleet: true, configs: true });
      const denied = await call('/api/records', { cookie: controller.cookie });
      expect(denied.status).toBe(403);
      // An agent's login is bound to its own client id by the broker: it cannot be a console session at all.
      const agent = await call('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CONSOLE_USERS.agent) });
      expect(agent.status).toBe(401);
      expect(agent.headers.get('set-cookie')).toBeNull();
    });

    it('refuses a cross-origin or non-JSON login post, and ends a session on logout', async () => {
      const form = await call('/api/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=dash&password=x' });
      expect(form.status).toBe(400);
      const foreign = await call('/api/login', { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify(CONSOLE_USERS.viewer) });
      expect(foreign.status).toBe(403);
      const { cookie } = await login(CONSOLE_USERS.viewer);
      expect((await call('/api/session', { cookie })).status).toBe(200);
      await call('/api/logout', { method: 'POST', cookie });
      expect((await call('/api/session', { cookie })).status).toBe(401);
    });
  });

  describe('console query API over the trail the stack wrote', () => {
    let cookie: string;
    beforeAll(async () => {
      ({ cookie } = await login(CONSOLE_USERS.viewer));
      await writeFile(path.join(stack.watched, 'app.conf'), 'port = 80\n');
      await waitFor(async () => ((await call('/api/records?type=create&path=**/app.conf', { cookie })).body.total as number) >= 1, 'the create of app.conf in the trail', 20_000, 200);
      await writeFile(path.join(stack.watched, 'app.conf'), 'port = 8080\n');
      for (let i = 0; i < 30; i += 1) await writeFile(path.join(stack.watched, `f${String(i).padStart(2, '0')}.txt`), `${i}\n`);
      await writeFile(path.join(stack.watched, '<img src=x onerror=alert(1)>.txt'), 'html in a name\n');
      // The final state: app.conf's diff with the new port, and the last of the files.
      await waitFor(async () => {
        const diffs = (await call('/api/history?path=' + encodeURIComponent(path.join(stack.watched, 'app.conf')), { cookie })).body.records as Array<{ record: Record<string, unknown> }>;
        const pages = (await call('/api/records?type=create&path=**/*.txt&limit=0', { cookie })).body.total as number;
        return diffs.some((r) => r.record.record === 'diff' && JSON.stringify(r.record).includes('8080')) && pages >= 31;
      }, 'the modify diff of app.conf and 31 creates of *.txt', 30_000, 200);
    });

    it('pages a search and counts every match', async () => {
      const first = await call('/api/records?type=create&path=**/f*.txt&limit=10', { cookie });
      expect(first.status).toBe(200);
      expect(first.body.total).toBe(30);
      const records = first.body.records as Array<{ file: string; line: number; record: Record<string, unknown> }>;
      expect(records).toHaveLength(10);
      expect(records[0]?.record.agentId).toBe(CONSOLE_AGENT);
      const third = await call('/api/records?type=create&path=**/f*.txt&limit=10&offset=20', { cookie });
      const names = (third.body.records as Array<{ record: { path: string } }>).map((r) => path.basename(r.record.path));
      expect(names).toEqual(Array.from({ length: 10 }, (_, i) => `f${20 + i}.txt`));
      const text = await call('/api/records?text=onerror&limit=5', { cookie });
      expect((text.body.records as Array<{ record: { path: string } }>)[0]?.record.path).toContain('<img src=x onerror=alert(1)>');
      const lastDay = await call(`/api/records?agent=${CONSOLE_AGENT}&since=24h&type=event&limit=0`, { cookie });
      expect(lastDay.body.total).toBeGreaterThanOrEqual(33);
      const future = await call(`/api/records?since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}&limit=0`, { cookie });
      expect(future.body.total).toBe(0);
    });

    it('answers a malformed query with 400 and the parameter named', async () => {
      const cases: Array<[string, string]> = [
        ['/api/records?type=explode', 'type'],
        ['/api/records?limit=100000', 'limit'],
        ['/api/records?limit=-1', 'limit'],
        ['/api/records?since=yesterday-ish', 'since'],
        ['/api/records?since=1h&until=2h', 'until'],
        ['/api/records?color=red', 'color'],
        ['/api/records?agent=a&agent=b', 'agent'],
        ['/api/history', 'path'],
        ['/api/tree?under=/etc', 'agent'],
      ];
      for (const [url, field] of cases) {
        const res = await call(url, { cookie });
        expect(res.status, url).toBe(400);
        expect(res.body.field, url).toBe(field);
        expect(typeof res.body.error, url).toBe('string');
      }
      expect((await call('/api/nothing', { cookie })).status).toBe(404);
    });

    it('gives one file\'s history, oldest first, with its diff, and the tree the trail replays', async () => {
      const file = path.join(stack.watched, 'app.conf');
      const history = (await call(`/api/history?path=${encodeURIComponent(file)}`, { cookie })).body.records as Array<{ record: Record<string, unknown> }>;
      const kinds = history.map((r) => `${String(r.record.record)}:${String(r.record.type ?? '')}`);
      expect(kinds[0]).toBe('event:create');
      expect(kinds).toContain('event:modify');
      expect(kinds.filter((k) => k.startsWith('diff'))).not.toHaveLength(0);
      const tree = await call(`/api/tree?agent=${CONSOLE_AGENT}&under=${encodeURIComponent(stack.watched)}`, { cookie });
      const entries = tree.body.entries as Array<{ path: string; sha256: string | null }>;
      expect(entries.map((e) => path.basename(e.path))).toEqual(expect.arrayContaining(['app.conf', 'f00.txt', 'f29.txt']));
      const conf = entries.find((e) => e.path === file);
      expect(conf?.sha256).toBe(createHash('sha256').update('port = 8080\n').digest('hex'));
    });

    it('reports the trail intact, then the first broken line after an edit, and never writes the audit dir', async () => {
      const before = await snapshot(stack.auditDir);
      await waitFor(async () => {
        const report = (await call('/api/verify', { cookie })).body as { result?: { ok: boolean } };
        return report.result?.ok === true;
      }, 'an intact verify result', 20_000, 200);
      const events = (await readdir(stack.auditDir)).find((n) => n.startsWith('events-')) as string;
      const file = path.join(stack.auditDir, events);
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('"type":"create"', '"type":"delete"'));
      await waitFor(async () => {
        const report = (await call('/api/verify', { cookie })).body as { result?: { ok: boolean; failure?: { file: string; line: number } } };
        return report.result?.ok === false && report.result.failure?.file === events;
      }, 'a broken verify result naming the edited file', 20_000, 200);
      await writeFile(file, text);
      const after = await snapshot(stack.auditDir);
      // The console only reads: no file of its own (an index, a lock, a temp file) appeared in the audit dir.
      expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    });
  });

});

async function snapshot(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of await readdir(dir)) out[name] = (await stat(path.join(dir, name))).size;
  return out;
}
