/**
 * "No secret in a log line": a whole locked-down system run from the built
 * bins (users added with `fso-broker user add`, broker with auth file, HS256
 * JWT and TLS, recorder, agent, a minted token, a controller push) with
 * every line each process prints captured at debug level. Known passwords,
 * the JWT secret, the token, a failed login's guess and secrets written into
 * watched files must appear in no log line, no published diff and no audit file.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, diffSchema } from '@fso/common';
import { createTestCerts } from '../../packages/broker/src/testing/certs.js';
import { createTempDir, waitFor } from '../helpers.js';
import { BINS, observe, runBin, runTool } from '../securityHarness.js';
import type { CapturedProcess } from '../securityHarness.js';

const topics = createTopics();
const ISSUER = 'fso-secrets-test';
const AGENT = 'web-01';
const tag = randomBytes(4).toString('hex');
/** Every string that must never be printed, by name. */
const SECRETS: Record<string, string> = {
  agentPassword: `AgentPw-${tag}-k2Lr9`,
  recorderPassword: `RecorderPw-${tag}-x81Qa`,
  viewerPassword: `ViewerPw-${tag}-0pZtn`,
  wrongGuess: `WrongGuess-${tag}-77Hq`,
  jwtSecret: `JwtSecret-${tag}-${randomBytes(24).toString('base64url')}`,
  confPassword: `ConfPw-${tag}-Zx31`,
  confPasswordAfter: `ConfPwNew-${tag}-Lm02`,
  awsKey: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
  githubToken: `ghp_${randomBytes(18).toString('hex')}`,
  envSecret: `EnvSecret-${tag}-9dd1`,
};

let tmp: { path: string; cleanup: () => Promise<void> };
const processes: CapturedProcess[] = [];
const published: string[] = [];
/** Set in beforeAll: the token minted by fso-controller token. */
let token = '';

const run = (name: string, bin: string, args: string[], options?: { env?: Record<string, string>; stdin?: string }): CapturedProcess => {
  const child = runBin(name, bin, args, options);
  processes.push(child);
  return child;
};

describe('no secret in a log line, a published diff or an audit file (whole system, built bins)', () => {
  let brokerUrl = '';
  let ca = '';
  let watched = '';
  let auditDir = '';

  beforeAll(async () => {
    tmp = await createTempDir('fso-secrets-');
    const dir = (name: string): string => path.join(tmp.path, name);
    await mkdir(dir('certs'));
    await mkdir(dir('etc'), { mode: 0o700 });
    await mkdir((watched = dir('watched')));
    auditDir = dir('audit');
    const certs = await createTestCerts(dir('certs'));
    ca = certs.caCert;
    const authFile = dir('etc/auth.json');
    const jwtSecretFile = dir('etc/jwt.secret');
    await writeFile(jwtSecretFile, `${SECRETS.jwtSecret}\n`, { mode: 0o600 });

    // Users: the password from FSO_PASSWORD for some, from stdin for others.
    const addUser = async (username: string, role: string, password: string, via: 'env' | 'stdin', agentId?: string): Promise<void> => {
      const args = ['user', 'add', '--auth', authFile, '--username', username, '--role', role, ...(agentId ? ['--agent-id', agentId] : [])];
      const add = run(`user add ${username}`, BINS.broker, args, via === 'env' ? { env: { FSO_PASSWORD: password } } : { stdin: `${password}\n` });
      expect(await add.exited, add.stderr()).toBe(0);
    };
    await addUser(AGENT, 'agent', SECRETS.agentPassword as string, 'env', AGENT);
    await addUser('recorder', 'recorder', SECRETS.recorderPassword as string, 'stdin');
    await addUser('viewer', 'viewer', SECRETS.viewerPassword as string, 'stdin');

    const broker = run('broker', BINS.broker, [
      '--port', '0', '--auth', authFile, '--jwt-secret-file', jwtSecretFile, '--jwt-issuer', ISSUER,
      '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey,
    ]);
    brokerUrl = String((await broker.waitForLog((l) => typeof l.url === 'string', 'listening')).url);

    // The controller logs in with a minted token only.
    const mint = run('token', BINS.controller, ['token', '--role', 'controller', '--ttl', '1h', '--secret-file', jwtSecretFile, '--issuer', ISSUER, '--subject', 'ops-ctl']);
    expect(await mint.exited, mint.stderr()).toBe(0);
    token = mint.stdout().trim();
    expect(token.split('.')).toHaveLength(3);
    await writeFile(dir('etc/controller.token'), `${token}\n`, { mode: 0o600 });
    await writeFile(dir('etc/agent.password'), `${SECRETS.agentPassword}\n`, { mode: 0o600 });

    // The recorder takes its login from the environment, the agent from a password file.
    const recorder = run('recorder', BINS.recorder, ['record', '--dir', auditDir, '--broker', brokerUrl, '--client-id', 'audit-1', '--ca', ca], {
      env: { FSO_USERNAME: 'recorder', FSO_PASSWORD: SECRETS.recorderPassword as string },
    });
    await recorder.waitForLog((l) => l.msg === 'recording', 'recording');
    const agent = run('agent', BINS.agent, [
      '--id', AGENT, '--watch', watched, '--important', '**/*.conf', '--important', '**/.env', '--state-dir', dir('agent-state'),
      '--broker', brokerUrl, '--username', AGENT, '--password-file', dir('etc/agent.password'), '--ca', ca, '--pair-window', '100ms',
    ]);
    await agent.waitForLog((l) => l.msg === 'watching', 'watching', 60_000);

    // A viewer collects every published event and diff, as anyone allowed to read them would.
    const viewer = await mqtt.connectAsync(brokerUrl, {
      protocolVersion: 4, reconnectPeriod: 0, ca: await readFile(ca), clientId: 'viewer-1', username: 'viewer', password: SECRETS.viewerPassword,
    });
    viewer.on('message', (_topic, payload) => published.push(payload.toString('utf8')));
    await viewer.subscribeAsync([topics.allEvents(), topics.diffs('+')], { qos: 1 });

    // Secrets inside an important file (redacted in its diff) and in a nodiff file (hashes only).
    const conf = path.join(watched, 'app.conf');
    await writeFile(conf, `name=app\npassword=${SECRETS.confPassword}\naws_access_key_id = ${SECRETS.awsKey}\ngithub: ${SECRETS.githubToken}\nAuthorization: Bearer ${token}\n`);
    await waitFor(() => published.some((p) => p.includes('"fso.diff/1"') && p.includes('app.conf')), 'the diff of app.conf', 20_000);
    await writeFile(conf, `name=app\npassword=${SECRETS.confPasswordAfter}\naws_access_key_id = ${SECRETS.awsKey}\n`);
    await writeFile(path.join(watched, '.env'), `DB_PASSWORD=${SECRETS.envSecret}\n`);
    await waitFor(() => published.filter((p) => p.includes('"fso.diff/1"')).length >= 3, 'three diffs (create, modify, .env)', 20_000);

    // A controller push with the token, and a failed login with a guessed password.
    await writeFile(dir('etc/config.json'), JSON.stringify({ schema: 'fso.config/1', revision: 2, watch: [{ path: watched, important: ['**/*.conf', '**/.env'] }] }));
    const push = run('controller push', BINS.controller, [
      '--broker', brokerUrl, '--username', 'ops-ctl', '--password-file', dir('etc/controller.token'), '--ca', ca,
      'push', '--agent', AGENT, '--file', dir('etc/config.json'), '--timeout', '20',
    ]);
    expect(await push.exited, push.stderr() + push.stdout()).toBe(0);
    const guess = await runTool('mosquitto_pub', [
      '-h', '127.0.0.1', '-p', brokerUrl.split(':').at(-1) as string, '--cafile', ca, '-i', 'guesser', '-u', 'viewer', '-P', SECRETS.wrongGuess as string, '-t', 'fso/x', '-m', 'x',
    ]);
    expect(guess.stderr).toMatch(/bad user name or password/i);
    await broker.waitForLog((l) => l.msg === 'login refused' && l.clientId === 'guesser', 'the refused guess');

    // Everything settled into the audit trail, then a clean stop so every process flushes its last lines.
    await waitFor(async () => {
      const names = await readdir(auditDir);
      const diffs = names.filter((n) => n.startsWith('diffs-'));
      const text = (await Promise.all(diffs.map((n) => readFile(path.join(auditDir, n), 'utf8')))).join('');
      return text.split('\n').filter(Boolean).length >= 3;
    }, 'three diffs in the audit trail', 20_000);
    await viewer.endAsync();
    for (const name of ['agent', 'recorder', 'broker']) {
      const child = processes.find((p) => p.name === name);
      expect(await child?.stop(), `${name} exit code`).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await tmp?.cleanup();
  });

  it('finds no secret in any captured output, published message or audit file', async () => {
    const secrets = { ...SECRETS, token, tokenSignature: token.split('.')[2] as string };
    const sources: Array<{ where: string; text: string }> = processes.map((p) => ({
      where: `${p.name} (stderr${p.name === 'token' ? '' : ' + stdout'})`,
      // The token command's stdout is the token itself: what it is for.
      text: p.name === 'token' ? p.stderr() : p.stderr() + p.stdout(),
    }));
    sources.push({ where: 'published events and diffs', text: published.join('\n') });
    for (const name of await readdir(auditDir)) sources.push({ where: `audit/${name}`, text: await readFile(path.join(auditDir, name), 'utf8') });

    const leaks = sources.flatMap(({ where, text }) =>
      Object.entries(secrets).filter(([, secret]) => text.includes(secret)).map(([name]) => `${name} in ${where}`),
    );
    const logLines = processes.reduce((n, p) => n + p.logs().length, 0);
    const debugLines = processes.reduce((n, p) => n + p.logs().filter((l) => l.level === 20).length, 0);
    const diffs = published.filter((p) => p.includes('"fso.diff/1"')).map((p) => diffSchema.parse(JSON.parse(p)));
    const redactions = diffs.flatMap((d) => d.redactions ?? []).map((r) => `${r.kind}×${r.count}`);
    const nodiff = diffs.filter((d) => d.skipped === 'nodiff').map((d) => path.basename(d.path));
    const broker = processes.find((p) => p.name === 'broker');
    const tokenLogin = broker?.logs().find((l) => l.msg === 'login accepted' && l.via === 'token');
    observe({
      attack: 'secrets in logs: whole system (user add, broker auth+JWT+TLS, recorder, agent, token mint, controller push, a failed login) at debug level',
      expected: 'no password, JWT secret, token, guess or file secret in any log line, published diff or audit file',
      observed: `${leaks.length === 0 ? 'none found' : `LEAKS: ${leaks.join('; ')}`} in ${logLines} log lines (${debugLines} debug) of ${processes.length} processes, ${published.length} published messages, ${sources.length - processes.length - 1} audit files; ${Object.keys(secrets).length} strings searched; diffs redacted ${redactions.join(', ')}; nodiff: ${nodiff.join(', ')}; token login accepted as ${String(tokenLogin?.username)}`,
    });
    if (process.env.FSO_SECURITY_DUMP) for (const p of processes) process.stdout.write(`=== ${p.name}\n${p.stderr()}\n${p.stdout()}\n`);
    expect(leaks).toEqual([]);
    // The search means something: there were debug logs, the token was used, the diffs were redacted, the .env kept to hashes.
    expect(debugLines).toBeGreaterThan(0);
    expect(tokenLogin).toBeDefined();
    expect(redactions.length).toBeGreaterThan(0);
    expect(diffs.some((d) => d.patch?.includes('[REDACTED:'))).toBe(true);
    expect(nodiff).toContain('.env');
  });
});
