#!/usr/bin/env node
// `pnpm start`: a whole local stack on the embedded broker — fso-broker,
// fso-audit record (./audit), one fso-agent watching ./watched, fso-alert
// (packages/alerts/examples/rules.yml, or FSO_RULES) and the web console
// (http://127.0.0.1:8080) — with readable logs; Ctrl-C stops every part
// cleanly.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.env.FSO_PORT ?? 1883);
const wsPort = Number(process.env.FSO_WS_PORT ?? 8883);
const consolePort = Number(process.env.FSO_CONSOLE_PORT ?? 8080);
const brokerUrl = `mqtt://127.0.0.1:${port}`;
// FSO_STACK_DIR puts the stack's folders elsewhere (the test of this script uses a temp dir).
const home = process.env.FSO_STACK_DIR ? path.resolve(process.env.FSO_STACK_DIR) : repo;
const dirs = { watched: path.join(home, 'watched'), audit: path.join(home, 'audit'), state: path.join(home, '.fso') };
for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true, mode: 0o700 });

const env = { ...process.env, FSO_BROKER_URL: brokerUrl, FSO_LOG_FORMAT: process.env.FSO_LOG_FORMAT ?? 'pretty' };
const children = [];
let stopping = false;

function run(name, pkg, args) {
  const child = spawn(process.execPath, [path.join(repo, 'packages', pkg, 'dist', 'cli.js'), ...args], {
    env, stdio: ['ignore', 'inherit', 'inherit'],
    // Its own process group: Ctrl-C reaches this script only, which stops the
    // parts in order (agent, recorder, broker) so nothing in flight is lost.
    detached: true,
  });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${name} exited (${signal ?? code}); stopping the stack\n`);
      void stop(1);
    }
  });
  children.push({ name, child });
  return child;
}

function waitForPort(deadlineMs) {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.end(); resolve(); });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadlineMs) reject(new Error(`the broker did not listen on ${port}`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

async function stop(code) {
  if (stopping) return;
  stopping = true;
  // Agent first (it settles and publishes what is pending), the recorder next, the broker last.
  for (const { child } of [...children].reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGTERM');
    await new Promise((resolve) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); resolve(); }, 10_000);
      child.once('exit', () => { clearTimeout(timer); resolve(); });
    });
  }
  process.exit(code);
}
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

run('fso-broker', 'broker', ['--port', String(port), '--ws-port', String(wsPort), '--data-dir', path.join(dirs.state, 'broker')]);
try {
  await waitForPort(Date.now() + 15_000);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  await stop(1);
}
run('fso-audit', 'audit-recorder', ['record', '--dir', dirs.audit]);
run('fso-agent', 'agent', [
  '--id', 'local-agent', '--watch', dirs.watched, '--state-dir', path.join(dirs.state, 'agent'),
  '--important', '**/*.conf', '--important', '**/*.yml', '--important', '**/*.yaml', '--important', '**/*.json',
  '--exclude', '**/node_modules/**',
]);
run('fso-alert', 'alerts', [
  '--rules', process.env.FSO_RULES ?? path.join(repo, 'packages', 'alerts', 'examples', 'rules.yml'),
  '--audit-dir', dirs.audit, '--verify-interval', '1m',
]);
run('fso-console', 'console', [
  '--audit-dir', dirs.audit, '--index-dir', path.join(dirs.state, 'console-index'),
  '--port', String(consolePort), '--ws-url', `ws://127.0.0.1:${wsPort}`,
]);
process.stderr.write(
  `\nFSO is running: broker ${brokerUrl}, watching ${dirs.watched}, audit in ${dirs.audit}.\n` +
    `Console: http://127.0.0.1:${consolePort}  (the local broker is open: log in with empty fields)\n` +
    `Try:  echo hello > watched/hello.conf   then   pnpm exec fso-audit tail --dir audit\n` +
    `      mosquitto_sub -h 127.0.0.1 -p ${port} -t 'fso/agents/+/events/#' -v\n` +
    `Alerts (rules: packages/alerts/examples/rules.yml): mosquitto_sub -h 127.0.0.1 -p ${port} -t 'fso/alerts/+' -v\n` +
    `Ctrl-C stops everything.\n\n`,
);
