/**
 * The locked-down system the attack suite (tests/security/*.test.ts) aims
 * at: a broker with an auth file and JWT logins (Ed25519 public key), one
 * legitimate agent watching a temp dir, a real recorder writing a temp audit
 * dir, all in this process with their logs captured. Plus what attackers
 * need: forged tokens, raw clients, mosquitto_pub/sub, and the checks that
 * the legitimate agent still delivers and nothing forged reached the trail.
 */
import { execFile, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import { verifyAuditDir } from '@fso/audit-trail';
import type { Recorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import type { Broker, BrokerLimits } from '@fso/broker';
import { parseAgentConfig, signJwt } from '@fso/common';
import type { FsoRole, JwtClaims } from '@fso/common';
import { writeTestAuthFile } from '../packages/broker/src/testing/auth.js';
import { subscribeCodes } from '../packages/broker/src/testing/clients.js';
import { captureLog } from '../packages/broker/src/testing/log.js';
import type { CapturedLog } from '../packages/broker/src/testing/log.js';
import { createTempDir, readAuditLines, waitFor } from './helpers.js';
import type { AuditLine } from './helpers.js';

/** A login of the auth file. */
export interface SecurityUser {
  username: string;
  password: string;
  role: FsoRole;
  agentId?: string;
}

/** The legitimate agent's id (also its username and MQTT client id). */
export const LEGIT_AGENT = 'web-01';

/**
 * One login per role and a second agent. The passwords are distinctive so
 * a log grep can find them anywhere.
 */
export const SEC_USERS = {
  agent: { username: LEGIT_AGENT, password: 'pw-legit-agent-8d1f0a33', role: 'agent', agentId: LEGIT_AGENT },
  agentB: { username: 'agent-b', password: 'pw-agent-b-4e7c2190', role: 'agent', agentId: 'agent-b' },
  recorder: { username: 'recorder', password: 'pw-recorder-a51d7e02', role: 'recorder' },
  controller: { username: 'controller', password: 'pw-controller-0c93fb4d', role: 'controller' },
  viewer: { username: 'viewer', password: 'pw-viewer-77b1e6a9', role: 'viewer' },
} as const satisfies Record<string, SecurityUser>;

/** The `iss` the broker's JWT logins require. */
export const ISSUER = 'fso-security-test';

/** The recorder's MQTT client id. */
export const RECORDER_CLIENT_ID = 'audit-recorder-1';

/** A debug-level JSON logger writing into memory (the broker package's test capture). */
export type LogSink = CapturedLog;

export { readAuditLines } from './helpers.js';
export type { AuditLine } from './helpers.js';

/** The broker's Ed25519 key pair: the broker holds the public half only. */
export interface TokenKeys {
  privateKeyPem: string;
  publicKeyPem: string;
  publicKeyFile: string;
}

/** A token signed with the real key, valid for an hour unless `claims` says otherwise. */
export function mintToken(keys: TokenKeys, claims: JwtClaims & { role?: FsoRole; agentId?: string }): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ iss: ISSUER, sub: 'token-user', iat: now, nbf: now, exp: now + 3600, ...claims }, keys.privateKeyPem, 'EdDSA');
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Forgeries of a token, each a different way to claim what was never signed. */
export const forge = {
  /** A real token whose payload is swapped for `claims`; the signature is the original one. */
  tamperedPayload(token: string, claims: Record<string, unknown>): string {
    const [header, , signature] = token.split('.') as [string, string, string];
    return `${header}.${b64(claims)}.${signature}`;
  },
  /** `alg: none` with an empty signature (RFC 7519 §6 "unsecured JWT"). */
  algNone(claims: Record<string, unknown>): string {
    return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  },
  /** HS256 with the broker's public key as the HMAC secret (the key-confusion attack, RFC 8725 §2.1). */
  hs256WithPublicKey(claims: JwtClaims, publicKeyPem: string): string {
    return signJwt(claims, Buffer.from(publicKeyPem), 'HS256');
  },
  /** Signed properly, but with a key the broker does not know. */
  otherKey(claims: JwtClaims): string {
    const { privateKey } = generateKeyPairSync('ed25519');
    return signJwt(claims, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'EdDSA');
  },
};

/** How a login attempt ended. */
export interface LoginOutcome {
  connected: boolean;
  /** The CONNACK return code of a refusal (MQTT 3.1.1: 2 id, 4 credentials, 5 not authorized). */
  returnCode?: number;
  error?: string;
  client?: MqttClient;
}

/** Tries one MQTT 3.1.1 login without retries; a connected client is the caller's to end. */
export async function tryLogin(url: string, options: IClientOptions): Promise<LoginOutcome> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  return new Promise<LoginOutcome>((resolve) => {
    const done = (outcome: LoginOutcome): void => {
      client.removeAllListeners('connect');
      client.removeAllListeners('error');
      client.on('error', () => undefined);
      if (!outcome.connected) client.end(true);
      resolve(outcome);
    };
    client.once('connect', () => done({ connected: true, client }));
    client.once('error', (err) => {
      const code = (err as { code?: unknown }).code;
      done({ connected: false, returnCode: typeof code === 'number' ? code : undefined, error: err.message });
    });
    client.once('close', () => done({ connected: false, error: 'connection closed' }));
  });
}

/** What a mosquitto_pub / mosquitto_sub run printed. */
export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a mosquitto tool; never throws for a non-zero exit. */
export function runTool(command: 'mosquitto_pub' | 'mosquitto_sub', args: string[], timeoutMs = 15_000): Promise<ToolRun> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Publishes and waits for the broker to drop the connection (its answer to a refused PUBLISH). */
export async function publishUntilClosed(client: MqttClient, topic: string, payload: string | Buffer, retain = false): Promise<void> {
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.publish(topic, payload, { qos: 1, retain });
  await closed;
}

/** The SUBACK codes for `topics` (128: refused), from the broker package's test clients. */
export const subackCodes = subscribeCodes;

/** One row of docs/security.md's table. */
export interface Observation {
  attack: string;
  expected: string;
  observed: string;
}

/**
 * Prints an observation (`[security] {...}`) and, when FSO_SECURITY_TABLE
 * names a file, appends it there as JSON: how the docs table was filled in.
 */
export function observe(row: Observation): void {
  const line = JSON.stringify(row);
  process.stdout.write(`[security] ${line}\n`);
  const file = process.env.FSO_SECURITY_TABLE;
  if (file) appendFileSync(file, `${line}\n`);
}

/** Messages seen by a recorder-role client subscribed to everything. */
export interface Spy {
  messages: Array<{ topic: string; payload: Buffer; retain: boolean }>;
  /** True when some message's topic or payload contains `text`. */
  saw(text: string): boolean;
  close(): Promise<void>;
}

/** Options of {@link startSecureSystem}. */
export interface SecureSystemOptions {
  limits?: Partial<BrokerLimits>;
  /** Serve mqtts with this certificate; the agent, recorder and {@link SecureSystem.loginOptions} trust `caFile`. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** The running system under attack. */
export interface SecureSystem {
  readonly root: string;
  readonly watched: string;
  readonly auditDir: string;
  readonly broker: Broker;
  readonly brokerLog: LogSink;
  readonly agent: Agent;
  readonly agentLog: LogSink;
  readonly recorder: Recorder;
  readonly recorderLog: LogSink;
  readonly keys: TokenKeys;
  /** The file holding `user`'s password. */
  passwordFile(user: SecurityUser): string;
  /** Login options for `user` (client id: its agent id, else `clientId` or its username; with TLS, the CA to trust). */
  loginOptions(user: SecurityUser, clientId?: string): IClientOptions;
  /**
   * Writes a new file in the watched dir and waits until its create event is
   * in the audit trail: the legitimate agent still delivers.
   */
  proveDelivery(label: string): Promise<AuditLine>;
  /** A spy logged in as the recorder role (client id `spy-N`): every message under fso/ that anyone received. */
  spy(): Promise<Spy>;
  /** Broker log lines logged after `mark` (a {@link LogSink.records} length taken before the attack). */
  brokerLogSince(mark: number): Array<Record<string, unknown>>;
  /**
   * What every attack ends with: the legitimate agent still delivers (a
   * new change reaches the trail), nothing carrying `marker` was forged into
   * it, and the recorder has not failed. Returns how long the delivery took.
   */
  afterAttack(label: string, marker: string): Promise<{ deliveredMs: number }>;
  /**
   * Fails unless every event, diff and status record belongs to the
   * legitimate agent and its epoch, names a path under the watched dir,
   * no record holds `marker`, no config was recorded, and the hash chains verify.
   */
  assertNothingForged(marker: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts broker (auth file + Ed25519 JWT), recorder and the legitimate agent. */
export async function startSecureSystem(options: SecureSystemOptions = {}): Promise<SecureSystem> {
  const tmp = await createTempDir('fso-security-');
  const root = tmp.path;
  const watched = path.join(root, 'watched');
  const auditDir = path.join(root, 'audit');
  const secrets = path.join(root, 'secrets');
  await mkdir(watched);
  await mkdir(secrets, { mode: 0o700 });

  // Cheap scrypt (same format and check, less cost): the broker package's test users file.
  const authFile = await writeTestAuthFile(secrets, Object.values(SEC_USERS));
  const pair = generateKeyPairSync('ed25519');
  const keys: TokenKeys = {
    privateKeyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicKeyFile: path.join(secrets, 'jwt.pub.pem'),
  };
  await writeFile(keys.publicKeyFile, keys.publicKeyPem);
  const passwordFile = (user: SecurityUser): string => path.join(secrets, `${user.username}.password`);
  for (const user of Object.values(SEC_USERS)) await writeFile(passwordFile(user), `${user.password}\n`, { mode: 0o600 });

  const brokerLog = captureLog();
  const broker = await startBroker({
    port: 0,
    logger: brokerLog.logger,
    auth: { authFile, jwt: { publicKeyFile: keys.publicKeyFile, issuer: ISSUER } },
    limits: options.limits,
    tls: options.tls && { certFile: options.tls.certFile, keyFile: options.tls.keyFile },
  });
  const caFile = options.tls?.caFile;
  const trust: IClientOptions = caFile ? { ca: await readFile(caFile) } : {};
  const recorderLog = captureLog();
  const recorder = await startRecorder({
    brokerUrl: broker.url, dir: auditDir, clientId: RECORDER_CLIENT_ID, logger: recorderLog.logger,
    username: SEC_USERS.recorder.username, passwordFile: passwordFile(SEC_USERS.recorder), caFile,
  });
  const agentLog = captureLog();
  const agent = await startAgent({
    agentId: LEGIT_AGENT, brokerUrl: broker.url, stateDir: path.join(root, 'agent-state'), logger: agentLog.logger,
    username: SEC_USERS.agent.username, passwordFile: passwordFile(SEC_USERS.agent), caFile, pairWindowMs: 100, resendIntervalMs: 2000,
    initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }] }, 'test'),
  });
  await agent.ready();

  let deliveries = 0;
  const proveDelivery = async (label: string): Promise<AuditLine> => {
    // The name is a counter, never the label: a marker in a label must not land in the trail.
    deliveries += 1;
    const file = path.join(watched, `after-attack-${deliveries}.txt`);
    await writeFile(file, `legitimate change number ${deliveries}\n`);
    try {
      return await waitFor(
        async () => (await readAuditLines(auditDir, 'events')).find((l) => l.record === 'event' && l.path === file && l.agentId === LEGIT_AGENT),
        `the legitimate agent's create of ${path.basename(file)} in the audit trail (after ${label})`,
        20_000,
        50,
      );
    } catch (err) {
      const tail = (sink: LogSink, keep: (l: Record<string, unknown>) => boolean): string =>
        sink.records().filter(keep).slice(-15).map((l) => JSON.stringify(l).slice(0, 300)).join('\n');
      throw new Error(
        `${(err as Error).message}\n--- agent log ---\n${tail(agentLog, () => true)}\n--- broker log (${LEGIT_AGENT}) ---\n${tail(brokerLog, (l) => l.clientId === LEGIT_AGENT)}\n--- recorder log ---\n${tail(recorderLog, (l) => Number(l.level) >= 40)}`,
        { cause: err },
      );
    }
  };

  const assertNothingForged = async (marker: string): Promise<void> => {
    const problems: string[] = [];
    for (const kind of ['events', 'diffs'] as const) {
      for (const line of await readAuditLines(auditDir, kind)) {
        const text = JSON.stringify(line);
        if (text.includes(marker)) problems.push(`${kind} line holds ${marker}: ${text.slice(0, 300)}`);
        if (line.record === 'config') problems.push(`a config was recorded: ${text.slice(0, 300)}`);
        if (line.record === 'gap') continue;
        if (line.agentId !== LEGIT_AGENT) problems.push(`${kind} line of agent ${String(line.agentId)}: ${text.slice(0, 300)}`);
        if (line.epoch !== agent.epoch) problems.push(`${kind} line of epoch ${String(line.epoch)}, not ${agent.epoch}`);
        if (typeof line.path === 'string' && !line.path.startsWith(watched)) problems.push(`${kind} line for ${line.path}`);
      }
    }
    const verified = await verifyAuditDir(auditDir);
    if (!verified.ok) problems.push(`audit chain broken: ${JSON.stringify(verified).slice(0, 500)}`);
    if (problems.length > 0) throw new Error(`forged or broken audit trail:\n${problems.join('\n')}`);
  };

  const recorderFailed = { value: false };
  void recorder.failed.then(() => (recorderFailed.value = true));
  let spies = 0;
  const spy = async (): Promise<Spy> => {
    spies += 1;
    const client = await mqtt.connectAsync(broker.url, {
      ...trust, protocolVersion: 4, reconnectPeriod: 0, clientId: `spy-${spies}`,
      username: SEC_USERS.recorder.username, password: SEC_USERS.recorder.password,
    });
    const messages: Spy['messages'] = [];
    client.on('message', (topic, payload, packet) => messages.push({ topic, payload, retain: packet.retain }));
    await client.subscribeAsync('fso/#', { qos: 1 });
    return {
      messages,
      saw: (text) => messages.some((m) => m.topic.includes(text) || m.payload.includes(text)),
      close: () => client.endAsync(true),
    };
  };

  const afterAttack = async (label: string, marker: string): Promise<{ deliveredMs: number }> => {
    const started = Date.now();
    await proveDelivery(label);
    const deliveredMs = Date.now() - started;
    await assertNothingForged(marker);
    if (recorderFailed.value) throw new Error(`the recorder failed during ${label}`);
    return { deliveredMs };
  };

  let closing: Promise<void> | undefined;
  return {
    root, watched, auditDir, broker, brokerLog, agent, agentLog, recorder, recorderLog, keys,
    passwordFile,
    loginOptions: (user, clientId) => ({ ...trust, clientId: user.agentId ?? clientId ?? user.username, username: user.username, password: user.password }),
    proveDelivery,
    assertNothingForged,
    spy,
    brokerLogSince: (mark) => brokerLog.records().slice(mark),
    afterAttack,
    close: () => {
      closing ??= (async () => {
        await agent.close();
        await recorder.close();
        await broker.close();
        await tmp.cleanup();
      })();
      return closing;
    },
  };
}

/** The built bins (`pnpm build` first), as the secrets test runs them. */
export const BINS = {
  broker: fileURLToPath(new URL('../packages/broker/dist/cli.js', import.meta.url)),
  agent: fileURLToPath(new URL('../packages/agent/dist/cli.js', import.meta.url)),
  recorder: fileURLToPath(new URL('../packages/audit-recorder/dist/cli.js', import.meta.url)),
  controller: fileURLToPath(new URL('../packages/controller/dist/cli.js', import.meta.url)),
} as const;

/** A bin run as a child process with everything it prints kept. */
export interface CapturedProcess {
  readonly name: string;
  /** stdout and stderr so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Parsed JSON lines of stderr (the logs with FSO_LOG_FORMAT=json). */
  logs(): Array<Record<string, unknown>>;
  /** Waits for a log line; fails early, with the output, if the process exits. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once it exits. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Runs `node bin ...args` with JSON debug logs. The environment is this
 * process's less any FSO_USERNAME / FSO_PASSWORD, plus `env`.
 */
export function runBin(name: string, bin: string, args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): CapturedProcess {
  const { FSO_USERNAME: _u, FSO_PASSWORD: _p, ...inherited } = process.env;
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...inherited, FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: 'debug', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end(options.stdin ?? '');
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))));
  const logs = (): Array<Record<string, unknown>> =>
    err.split('\n').flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  return {
    name,
    stdout: () => out,
    stderr: () => err,
    logs,
    exited,
    waitForLog: async (predicate, what, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = logs().find(predicate);
        if (found) return found;
        if (exitCode !== undefined || Date.now() > deadline) {
          throw new Error(`${name} ${exitCode === undefined ? 'timed out' : `exited ${String(exitCode)}`} before ${what}:\n${err.slice(-3000)}${out.slice(-1000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    stop: async () => {
      if (exitCode === undefined) child.kill('SIGTERM');
      return exited;
    },
  };
}
