/**
 * Attacks on logins against the whole running system (auth file + Ed25519
 * JWT, a legitimate agent, a real recorder): each must be refused with the
 * right CONNACK, logged without the secret, and leave the legitimate agent
 * delivering with nothing forged in the audit trail.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecorder } from '@fso/audit-recorder';
import { waitFor } from '../helpers.js';
import {
  ISSUER, LEGIT_AGENT, RECORDER_CLIENT_ID, SEC_USERS, forge, mintToken, observe, readAuditLines, runTool, startSecureSystem, subackCodes, tryLogin,
} from '../securityHarness.js';
import type { LoginOutcome, SecureSystem } from '../securityHarness.js';

let sys: SecureSystem;

beforeAll(async () => {
  sys = await startSecureSystem();
});
afterAll(async () => {
  await sys?.close();
});

/** The `login refused` line of this attempt, checked to hold neither `secrets` nor be missing. */
function refusalLine(mark: number, secrets: string[]): Record<string, unknown> {
  const lines = sys.brokerLogSince(mark);
  const refusal = lines.find((l) => l.msg === 'login refused');
  if (!refusal) throw new Error(`no "login refused" line; broker logged: ${JSON.stringify(lines).slice(0, 1000)}`);
  expect(refusal.level).toBe(40);
  for (const secret of secrets) expect(sys.brokerLog.text()).not.toContain(secret);
  return refusal;
}

/** Fails if the legitimate agent's connection was dropped since `mark` (a takeover would do that). */
function assertLegitAgentUndisturbed(mark: number): void {
  const dropped = sys.brokerLogSince(mark).filter((l) => l.clientId === LEGIT_AGENT && /disconnect/.test(String(l.msg)));
  expect(dropped, 'the legitimate agent was disconnected').toEqual([]);
}

const describeOutcome = (o: LoginOutcome): string => (o.connected ? 'CONNECTED' : `CONNACK ${o.returnCode ?? '-'} (${o.error ?? ''})`);

describe('logins', () => {
  it('refuses an anonymous connect (MQTT.js and mosquitto_sub)', async () => {
    const mark = sys.brokerLog.records().length;
    const outcome = await tryLogin(sys.broker.url, { clientId: 'anon-1' });
    expect(outcome).toMatchObject({ connected: false, returnCode: 5 });
    const tool = await runTool('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(sys.broker.port), '-i', 'anon-2', '-t', 'fso/#', '-W', '5']);
    expect(tool.code).not.toBe(0);
    expect(tool.stderr).toMatch(/not authori[sz]ed/i);
    const refusals = sys.brokerLogSince(mark).filter((l) => l.msg === 'login refused');
    expect(refusals.map((l) => l.clientId)).toEqual(['anon-1', 'anon-2']);
    expect(refusals[0]?.reason).toMatch(/anonymous/);
    const { deliveredMs } = await sys.afterAttack('anonymous connect', 'anon-');
    observe({
      attack: 'anonymous connect (MQTT.js, mosquitto_sub)',
      expected: 'CONNACK 5, logged',
      observed: `${describeOutcome(outcome)}; mosquitto_sub: "${tool.stderr.trim()}"; "login refused" (${String(refusals[0]?.reason)}); agent delivered in ${deliveredMs} ms`,
    });
  });

  it("refuses a wrong password, even with the legitimate agent's client id, without kicking it off", async () => {
    const mark = sys.brokerLog.records().length;
    const guess = 'pw-guess-5f0e1d2c';
    const outcome = await tryLogin(sys.broker.url, { clientId: LEGIT_AGENT, username: SEC_USERS.agent.username, password: guess });
    expect(outcome).toMatchObject({ connected: false, returnCode: 4 });
    const tool = await runTool('mosquitto_pub', [
      '-h', '127.0.0.1', '-p', String(sys.broker.port), '-i', 'guess-2', '-u', SEC_USERS.viewer.username, '-P', guess, '-t', 'fso/x', '-m', 'x',
    ]);
    expect(tool.stderr).toMatch(/bad user name or password/i);
    const refusal = refusalLine(mark, [guess]);
    expect(refusal).toMatchObject({ clientId: LEGIT_AGENT, username: LEGIT_AGENT, reason: 'wrong password' });
    // A delivery through the broker after the refusal, not a fixed sleep, is the window in which a kick would show.
    const { deliveredMs } = await sys.afterAttack('wrong password', guess);
    assertLegitAgentUndisturbed(mark);
    observe({
      attack: "wrong password (with the legit agent's client id; mosquitto_pub)",
      expected: 'CONNACK 4, logged without the password, legit agent stays connected',
      observed: `${describeOutcome(outcome)}; mosquitto_pub: "${tool.stderr.trim()}"; "login refused" (wrong password), guess not in the log; legit agent not disconnected; delivered in ${deliveredMs} ms`,
    });
  });

  const now = (): number => Math.floor(Date.now() / 1000);
  const agentClaims = () => ({ iss: ISSUER, sub: 'intruder', role: 'agent' as const, agentId: LEGIT_AGENT, iat: now(), nbf: now(), exp: now() + 3600 });
  const tokenAttacks: Array<{ name: string; reason: string; token: () => string }> = [
    { name: 'expired JWT (exp 1 h ago)', reason: 'expired', token: () => mintToken(sys.keys, { ...agentClaims(), iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 }) },
    { name: 'not-yet-valid JWT (nbf in 1 h)', reason: 'not-yet-valid', token: () => mintToken(sys.keys, { ...agentClaims(), nbf: now() + 3600, exp: now() + 7200 }) },
    { name: 'wrong-issuer JWT', reason: 'wrong-issuer', token: () => mintToken(sys.keys, { ...agentClaims(), iss: 'someone-else' }) },
    {
      name: "forged JWT: a viewer token's payload swapped for agent web-01",
      reason: 'bad-signature',
      token: () => forge.tamperedPayload(mintToken(sys.keys, { sub: 'intruder', role: 'viewer' }), agentClaims()),
    },
    { name: 'forged JWT: alg none, no signature', reason: 'bad-signature', token: () => forge.algNone(agentClaims()) },
    { name: "forged JWT: HS256 keyed with the broker's public key", reason: 'bad-signature', token: () => forge.hs256WithPublicKey(agentClaims(), sys.keys.publicKeyPem) },
    { name: 'forged JWT: signed with an unknown Ed25519 key', reason: 'bad-signature', token: () => forge.otherKey(agentClaims()) },
  ];

  it.each(tokenAttacks)('refuses a $name', async ({ name, reason, token }) => {
    const mark = sys.brokerLog.records().length;
    const jwt = token();
    const outcome = await tryLogin(sys.broker.url, { clientId: LEGIT_AGENT, username: 'intruder', password: jwt });
    expect(outcome).toMatchObject({ connected: false, returnCode: 4 });
    const refusal = refusalLine(mark, [jwt, jwt.split('.')[2] || jwt]);
    expect(String(refusal.reason)).toBe(`token refused: ${reason}`);
    assertLegitAgentUndisturbed(mark);
    const { deliveredMs } = await sys.afterAttack(name, 'intruder');
    observe({
      attack: name,
      expected: `CONNACK 4 (${reason}), logged without the token`,
      observed: `${describeOutcome(outcome)}; "login refused" (${String(refusal.reason)}), token not in the log; agent delivered in ${deliveredMs} ms`,
    });
  });

  it('refuses a valid token given as the password of an auth-file user', async () => {
    const mark = sys.brokerLog.records().length;
    const jwt = mintToken(sys.keys, { sub: 'viewer', role: 'viewer' });
    const outcome = await tryLogin(sys.broker.url, { clientId: 'viewer-x', username: SEC_USERS.viewer.username, password: jwt });
    expect(outcome).toMatchObject({ connected: false, returnCode: 4 });
    expect(refusalLine(mark, [jwt]).reason).toBe('wrong password');
    observe({ attack: 'valid token as the password of an auth-file username', expected: 'CONNACK 4', observed: `${describeOutcome(outcome)}; "login refused" (wrong password)` });
  });

  // Was a hole (low): a refused login logged its username verbatim, so a secret typed into
  // the username field (username and password swapped, `--username "$(cat token)"`) landed
  // in the broker log. Now a username that does not look like one (the auth file's pattern,
  // at most 64 characters, not a JWT) is logged as its first 4 characters, length and a
  // sha256 prefix.
  it('keeps a token given as the username (credentials swapped) out of the log', async () => {
    const mark = sys.brokerLog.records().length;
    const jwt = mintToken(sys.keys, { sub: 'ops', role: 'controller' });
    const outcome = await tryLogin(sys.broker.url, { clientId: 'swapped', username: jwt, password: 'ops' });
    expect(outcome).toMatchObject({ connected: false, returnCode: 4 });
    const line = sys.brokerLogSince(mark).find((l) => l.msg === 'login refused');
    const leaked = JSON.stringify(sys.brokerLogSince(mark)).includes(jwt);
    observe({
      attack: 'credentials swapped: a valid token given as the username',
      expected: 'CONNACK 4, logged without the token',
      observed: `${describeOutcome(outcome)}; "login refused" (${String(line?.reason)})${leaked ? '; HOLE (low): the whole token is in the log line\'s username field' : '; token not in the log'}`,
    });
    expect(leaked).toBe(false);
  });

  it('accepts a valid token with the role it names, and disconnects it when it expires', async () => {
    const viewer = await tryLogin(sys.broker.url, { clientId: 'token-viewer', username: 'token-viewer', password: mintToken(sys.keys, { sub: 'token-viewer', role: 'viewer' }) });
    expect(viewer.connected).toBe(true);
    const client = viewer.client!;
    expect(await subackCodes(client, ['fso/agents/+/events/#', 'fso/agents/+/config'])).toEqual([1, 128]);
    await client.endAsync(true);

    const mark = sys.brokerLog.records().length;
    const shortLived = await tryLogin(sys.broker.url, {
      clientId: 'token-short', username: 'token-short', password: mintToken(sys.keys, { sub: 'token-short', role: 'viewer', exp: now() + 2 }),
    });
    expect(shortLived.connected).toBe(true);
    const started = Date.now();
    await new Promise<void>((resolve) => shortLived.client!.once('close', () => resolve()));
    const keptMs = Date.now() - started;
    expect(sys.brokerLogSince(mark).find((l) => l.msg === 'disconnecting: its token expired')).toMatchObject({ clientId: 'token-short' });
    observe({
      attack: 'token that expires while connected (control: valid viewer token)',
      expected: 'valid token connects with its role only; disconnected within 5 s of exp',
      observed: `viewer token: events granted, config refused (0x80); expiring token disconnected ${keptMs} ms after login (exp was 2 s ahead), logged`,
    });
  });
});

describe('client-id spoofing', () => {
  const spoofs = [
    { name: "agent-b (password) with the legit agent's client id", options: () => sys.loginOptions(SEC_USERS.agentB, LEGIT_AGENT), clientId: LEGIT_AGENT },
    {
      name: "agent-b (token) with the legit agent's client id",
      options: () => ({ username: 'agent-b-token', password: mintToken(sys.keys, { sub: 'agent-b-token', role: 'agent', agentId: 'agent-b' }) }),
      clientId: LEGIT_AGENT,
    },
    { name: "a controller with the legit agent's client id", options: () => sys.loginOptions(SEC_USERS.controller), clientId: LEGIT_AGENT },
    { name: "a viewer with the recorder's client id (recorder connected)", options: () => sys.loginOptions(SEC_USERS.viewer), clientId: RECORDER_CLIENT_ID },
  ];

  it.each(spoofs)('refuses $name without disturbing its owner', async ({ name, options, clientId }) => {
    const mark = sys.brokerLog.records().length;
    const outcome = await tryLogin(sys.broker.url, { ...options(), clientId });
    expect(outcome).toMatchObject({ connected: false, returnCode: 2 });
    const refusal = refusalLine(mark, []);
    expect(refusal.clientId).toBe(clientId);
    // A delivery through the broker after the refusal, not a fixed sleep, is the window in which a kick would show.
    const { deliveredMs } = await sys.afterAttack(name, 'agent-b-token');
    const dropped = sys.brokerLogSince(mark).filter((l) => l.clientId === clientId && /disconnect/.test(String(l.msg)));
    expect(dropped).toEqual([]);
    observe({
      attack: `client-id spoofing: ${name}`,
      expected: 'CONNACK 2, logged, owner stays connected',
      observed: `${describeOutcome(outcome)}; "login refused" (${String(refusal.reason)}); owner not disconnected; agent delivered in ${deliveredMs} ms`,
    });
  });

  // Was a hole (medium): client ids were owned only while connected, so a viewer could take
  // an offline recorder's client id, wipe its persistent session (clean: true) and keep the
  // recorder out while connected. Now a client id used with a persistent session (and every
  // agent id) is bound to its first login, in the data dir when there is one.
  it("refuses a viewer taking an offline recorder's client id (its persistent session)", async () => {
    const dir = path.join(sys.root, 'audit-2');
    const options = {
      brokerUrl: sys.broker.url, dir, clientId: 'audit-recorder-2', connectTimeoutMs: 3000,
      username: SEC_USERS.recorder.username, passwordFile: sys.passwordFile(SEC_USERS.recorder),
    };
    await (await startRecorder(options)).close();
    // Queued for audit-recorder-2's persistent session while it is offline.
    const queued = await sys.proveDelivery('a change while audit-recorder-2 is offline');
    const mark = sys.brokerLog.records().length;
    const hijack = await tryLogin(sys.broker.url, { ...sys.loginOptions(SEC_USERS.viewer), clientId: 'audit-recorder-2', clean: true });
    let blocked: string;
    try {
      await (await startRecorder(options)).close();
      blocked = 'recorder restarted while the viewer held its id';
    } catch (err) {
      blocked = `recorder restart refused while the viewer holds its id: ${(err as Error).message}`;
    } finally {
      await hijack.client?.endAsync(true);
    }
    const back = await startRecorder(options);
    let backlog: string;
    try {
      await waitFor(async () => (await readAuditLines(dir, 'events')).some((l) => l.path === queued.path), 'the queued event', 3000, 100);
      backlog = 'the queued event arrived after all';
    } catch {
      backlog = `its queued event (${path.basename(String(queued.path))}) never reached audit-2: the session was discarded`;
    } finally {
      await back.close();
    }
    observe({
      attack: "client-id spoofing: a viewer takes an offline recorder's client id",
      expected: 'CONNACK 2 (the id belongs to the recorder)',
      observed: `viewer ${describeOutcome(hijack)}; ${blocked}; ${backlog}; refusal logged: ${
        sys.brokerLogSince(mark).some((l) => l.msg === 'login refused' && l.username === 'viewer') ? 'yes' : 'no'
      }`,
    });
    expect(hijack).toMatchObject({ connected: false, returnCode: 2 });
  });
});
