/**
 * TLS against the whole running system: the broker serves mqtts only, the
 * agent and the recorder trust its CA (`caFile`). A client without that CA
 * (MQTT.js, mosquitto_sub), trusting another CA, or speaking plain MQTT to
 * the TLS port is refused, and the refusal is logged; with the CA it works.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics } from '@fso/common';
import { createTestCerts } from '../../packages/broker/src/testing/certs.js';
import type { TestCerts } from '../../packages/broker/src/testing/certs.js';
import { createTempDir } from '../helpers.js';
import { LEGIT_AGENT, SEC_USERS, observe, runTool, startSecureSystem, tryLogin } from '../securityHarness.js';
import type { SecureSystem } from '../securityHarness.js';

const topics = createTopics();
let certsDir: { path: string; cleanup: () => Promise<void> };
let certs: TestCerts;
let sys: SecureSystem;

beforeAll(async () => {
  certsDir = await createTempDir('fso-security-certs-');
  certs = await createTestCerts(certsDir.path);
  sys = await startSecureSystem({ tls: { certFile: certs.serverCert, keyFile: certs.serverKey, caFile: certs.caCert } });
});
afterAll(async () => {
  await sys?.close();
  await certsDir?.cleanup();
});

const handshakeFailures = (mark: number): Array<Record<string, unknown>> => sys.brokerLogSince(mark).filter((l) => l.msg === 'TLS handshake failed');

describe('TLS', () => {
  it('works with the CA: agent and recorder deliver over mqtts, MQTT.js and mosquitto_sub log in', async () => {
    expect(sys.broker.url).toMatch(/^mqtts:/);
    const { deliveredMs } = await sys.afterAttack('TLS with the CA', 'tls-none');
    const viewer = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.viewer));
    expect(viewer.connected).toBe(true);
    await viewer.client!.endAsync(true);
    const wrongPassword = await tryLogin(sys.broker.url, { ...sys.loginOptions(SEC_USERS.viewer), password: 'not-it' });
    expect(wrongPassword).toMatchObject({ connected: false, returnCode: 4 });
    const tool = await runTool('mosquitto_sub', [
      '-h', '127.0.0.1', '-p', String(sys.broker.port), '--cafile', certs.caCert, '-i', 'viewer-mosq',
      '-u', SEC_USERS.viewer.username, '-P', SEC_USERS.viewer.password, '-t', topics.status(LEGIT_AGENT), '-C', '1', '-W', '10',
    ]);
    expect(tool.code).toBe(0);
    expect(JSON.parse(tool.stdout)).toMatchObject({ agentId: LEGIT_AGENT, state: 'online' });
    observe({
      attack: 'TLS with the CA (control)',
      expected: 'agent, recorder, MQTT.js and mosquitto_sub work over mqtts; logins still checked',
      observed: `agent delivered over mqtts in ${deliveredMs} ms; viewer (MQTT.js) connected; wrong password still CONNACK ${wrongPassword.returnCode}; mosquitto_sub --cafile read web-01's retained status`,
    });
  });

  it('refuses a client without the CA, with another CA, or speaking plain MQTT to the TLS port, and logs it', async () => {
    const mark = sys.brokerLog.records().length;
    const noCa = await tryLogin(sys.broker.url, { ...sys.loginOptions(SEC_USERS.viewer), ca: undefined });
    expect(noCa.connected).toBe(false);
    expect(noCa.error).toMatch(/self[- ]signed|unable to verify|certificate/i);
    const otherCa = await tryLogin(sys.broker.url, { ...sys.loginOptions(SEC_USERS.viewer), ca: await readFile(certs.otherCaCert) });
    expect(otherCa.connected).toBe(false);
    const plain = await tryLogin(sys.broker.url.replace(/^mqtts:/, 'mqtt:'), { ...sys.loginOptions(SEC_USERS.viewer), ca: undefined });
    expect(plain.connected).toBe(false);
    const base = ['-h', '127.0.0.1', '-p', String(sys.broker.port), '-u', SEC_USERS.viewer.username, '-P', SEC_USERS.viewer.password, '-t', topics.status(LEGIT_AGENT), '-C', '1', '-W', '5'];
    const mosqPlain = await runTool('mosquitto_sub', ['-i', 'mosq-plain', ...base]);
    const mosqOther = await runTool('mosquitto_sub', ['-i', 'mosq-other', '--cafile', certs.otherCaCert, ...base]);
    expect(mosqPlain.code).not.toBe(0);
    expect(mosqOther.code).not.toBe(0);
    expect(mosqOther.stderr).toMatch(/certificate verify failed|TLS|SSL/i);
    const failures = handshakeFailures(mark);
    // One line per refused handshake: MQTT.js without CA, with another CA, plain; mosquitto plain and other CA.
    expect(failures.length).toBeGreaterThanOrEqual(5);
    expect(sys.brokerLogSince(mark).filter((l) => l.msg === 'login accepted')).toEqual([]);
    const { deliveredMs } = await sys.afterAttack('TLS without the CA', 'tls-none');
    observe({
      attack: 'TLS without the CA (MQTT.js; mosquitto_sub), with another CA, plain MQTT to the mqtts port',
      expected: 'client refuses the broker (no login sent), broker logs the failed handshake',
      observed: `MQTT.js no CA: "${noCa.error ?? ''}"; other CA: "${otherCa.error ?? ''}"; plain MQTT: "${plain.error ?? ''}"; mosquitto_sub plain exit ${mosqPlain.code}, other CA exit ${mosqOther.code} ("${mosqOther.stderr.trim().split('\n')[0] ?? ''}"); ${failures.length} × "TLS handshake failed" (info: ${[...new Set(failures.map((f) => String(f.reason).slice(0, 60)))].join(' | ')}); no login accepted; agent delivered in ${deliveredMs} ms`,
    });
  });
});
