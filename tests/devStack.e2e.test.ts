// `pnpm start` (scripts/devStack.mjs, on the built bins): the whole stack comes
// up, the console answers and shows a change made in ./watched, and Ctrl-C
// stops every part cleanly.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { createTempDir, waitFor } from './helpers.js';

const repo = path.resolve(import.meta.dirname, '..');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let child: ChildProcess | undefined;
let cleanup: (() => Promise<void>) | undefined;
afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await cleanup?.();
});

it('pnpm start runs broker, recorder, agent and console; the console shows a change; Ctrl-C stops it', async () => {
  const tmp = await createTempDir('fso-devstack-');
  cleanup = tmp.cleanup;
  const [port, wsPort, consolePort] = [await freePort(), await freePort(), await freePort()];
  let output = '';
  child = spawn(process.execPath, [path.join(repo, 'scripts', 'devStack.mjs')], {
    env: { ...process.env, FSO_STACK_DIR: tmp.path, FSO_PORT: String(port), FSO_WS_PORT: String(wsPort), FSO_CONSOLE_PORT: String(consolePort), FSO_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  const consoleUrl = `http://127.0.0.1:${consolePort}`;
  await waitFor(() => output.includes(`Console: ${consoleUrl}`), `the stack's banner (output so far: ${output.slice(-500)})`, 60_000, 100);

  // The local broker is open: an empty login is a session with every access.
  const login = await waitFor(async () => {
    const res = await fetch(`${consoleUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => undefined);
    return res?.status === 200 ? res : undefined;
  }, 'a console login', 60_000, 200);
  expect(await login.json()).toMatchObject({ access: { trail: true, fleet: true, configs: true } });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const page = await fetch(consoleUrl);
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<script type="module"');

  // The agent is ready once its status says its watch is scanned; a file written after that is an event.
  const file = path.join(tmp.path, 'watched', 'hello.conf');
  await waitFor(async () => {
    await writeFile(file, `hello ${Date.now()}\n`);
    const res = await fetch(`${consoleUrl}/api/records?path=${encodeURIComponent(file)}&limit=0`, { headers: { cookie } });
    return ((await res.json()) as { total: number }).total > 0;
  }, `an event of ${file} through the console (output so far: ${output.slice(-800)})`, 60_000, 500);

  // fso-alert runs the example rules: an important file changed is an alert, recorded in the trail.
  await waitFor(async () => {
    const res = await fetch(`${consoleUrl}/api/records?type=alert&limit=10`, { headers: { cookie } });
    const body = (await res.json()) as { records: Array<{ record: { rule?: string; path?: string } }> };
    return body.records.some((r) => r.record.rule === 'important-changed' && r.record.path === file);
  }, `the important-changed alert of ${file} in the trail (output so far: ${output.slice(-800)})`, 60_000, 500);

  const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  expect(await exited).toBe(0);
}, 180_000);
