/**
 * Attacks on per-role access against the whole running system: publishing
 * as another agent, reading what a role may not, a viewer pushing config,
 * forged acks and last wills. Each must be refused and logged (never with
 * the payload), reach no subscriber, and leave the legitimate agent
 * delivering with nothing forged in the audit trail.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, eventSchema, statusSchema } from '@fso/common';
import { waitFor } from '../helpers.js';
import {
  LEGIT_AGENT, SEC_USERS, observe, publishUntilClosed, readAuditLines, runTool, startSecureSystem, subackCodes, tryLogin,
} from '../securityHarness.js';
import type { SecureSystem, SecurityUser, Spy } from '../securityHarness.js';

const topics = createTopics();
let sys: SecureSystem;
let spy: Spy;

beforeAll(async () => {
  sys = await startSecureSystem();
  spy = await sys.spy();
});
afterAll(async () => {
  await spy?.close();
  await sys?.close();
});

/** A schema-valid event of the legitimate agent that it never sent, carrying `marker` in its path. */
function forgedEvent(marker: string, agentId = LEGIT_AGENT): string {
  const at = new Date().toISOString();
  return JSON.stringify(
    eventSchema.parse({
      schema: 'fso.event/1', id: `${marker}-1`, agentId, epoch: sys.agent.epoch, seq: 900_000, type: 'delete',
      path: `${sys.watched}/${marker}.conf`, root: sys.watched, kind: 'file', size: null, mtime: null, sha256: null,
      important: true, origin: 'live', observedAt: at, emittedAt: at,
    }),
  );
}

/** The `publish refused` lines since `mark`, checked never to hold `payloadMarker`. */
function publishRefusals(mark: number, payloadMarker: string): Array<Record<string, unknown>> {
  const lines = sys.brokerLogSince(mark).filter((l) => String(l.msg).startsWith('publish refused'));
  expect(JSON.stringify(sys.brokerLogSince(mark))).not.toContain(payloadMarker);
  return lines;
}

/** Logs in as `user`, publishes, and waits for the broker to close the connection. */
async function publishAs(user: SecurityUser, topic: string, payload: string, retain = false): Promise<void> {
  const login = await tryLogin(sys.broker.url, sys.loginOptions(user, `${user.username}-attacker`));
  expect(login.connected).toBe(true);
  await publishUntilClosed(login.client!, topic, payload, retain);
}

const mosquittoAuth = (user: SecurityUser, clientId: string): string[] => [
  '-h', '127.0.0.1', '-p', String(sys.broker.port), '-i', clientId, '-u', user.username, '-P', user.password,
];

describe('publishing as someone else', () => {
  it('refuses agent-b publishing events, a diff and a retained status as the legitimate agent', async () => {
    const marker = 'FORGED-by-agent-b';
    const mark = sys.brokerLog.records().length;
    await publishAs(SEC_USERS.agentB, topics.event(LEGIT_AGENT, 'delete'), forgedEvent(marker));
    await publishAs(SEC_USERS.agentB, topics.diffs(LEGIT_AGENT), `{"patch":"${marker}"}`);
    const status = { ...sys.agent.status(), state: 'offline', hostname: marker };
    await publishAs(SEC_USERS.agentB, topics.status(LEGIT_AGENT), JSON.stringify(statusSchema.parse(status)), true);
    // mosquitto_pub at QoS 0 and QoS 2, retained: the same refusal on every path.
    const qos0 = await runTool('mosquitto_pub', [...mosquittoAuth(SEC_USERS.agentB, 'agent-b'), '-q', '0', '-t', topics.event(LEGIT_AGENT, 'create'), '-m', forgedEvent(`${marker}-q0`)]);
    const qos2 = await runTool('mosquitto_pub', [...mosquittoAuth(SEC_USERS.agentB, 'agent-b'), '-q', '2', '-r', '-t', topics.status(LEGIT_AGENT), '-m', `{"hostname":"${marker}-q2"}`]);

    const refusals = await waitFor(() => {
      const found = publishRefusals(mark, marker);
      return found.length >= 5 && found;
    }, 'five "publish refused" lines');
    expect(refusals.map((l) => [l.username, l.role, l.topic])).toEqual([
      ['agent-b', 'agent', topics.event(LEGIT_AGENT, 'delete')],
      ['agent-b', 'agent', topics.diffs(LEGIT_AGENT)],
      ['agent-b', 'agent', topics.status(LEGIT_AGENT)],
      ['agent-b', 'agent', topics.event(LEGIT_AGENT, 'create')],
      ['agent-b', 'agent', topics.status(LEGIT_AGENT)],
    ]);
    expect(refusals.every((l) => l.level === 40)).toBe(true);

    const { deliveredMs } = await sys.afterAttack('agent-b publishing as web-01', marker);
    expect(spy.saw(marker)).toBe(false);
    // The retained status is still the legitimate one.
    const late = await mqtt.connectAsync(sys.broker.url, { ...sys.loginOptions(SEC_USERS.viewer, 'late-viewer'), protocolVersion: 4, reconnectPeriod: 0 });
    const retained: string[] = [];
    late.on('message', (_t, payload) => retained.push(payload.toString()));
    await late.subscribeAsync(topics.status(LEGIT_AGENT), { qos: 1 });
    await waitFor(() => retained[0], 'the retained status');
    await late.endAsync(true);
    expect(retained[0]).not.toContain(marker);
    expect(JSON.parse(retained[0] as string)).toMatchObject({ agentId: LEGIT_AGENT, epoch: sys.agent.epoch, hostname: sys.agent.status().hostname });
    observe({
      attack: 'agent-b publishes as web-01: events, diff, retained status (MQTT.js QoS 1; mosquitto_pub QoS 0 and QoS 2 retained)',
      expected: 'refused, connection closed, logged with identity, reaches no subscriber, retained status untouched',
      observed: `5/5 closed and logged "publish refused" (agent-b, role agent, topic; no payload in the log); mosquitto_pub exits ${qos0.code}/${qos2.code}; spy and recorder saw nothing; retained status still web-01's; agent delivered in ${deliveredMs} ms`,
    });
  });

  it("records as rejected an event agent-b sends on its own topic claiming to be the legitimate agent's", async () => {
    const marker = 'FORGED-payload-agent';
    const login = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.agentB));
    const client = login.client!;
    await client.publishAsync(topics.event('agent-b', 'delete'), forgedEvent(marker, LEGIT_AGENT), { qos: 1 });
    await client.endAsync();
    const rejected = await waitFor(
      async () => (await readAuditLines(sys.auditDir, 'rejected')).find((l) => String(l.payload).includes(marker)),
      'the rejected record',
    );
    expect(rejected.reason).toMatch(/agentId "web-01" does not match the topic's agent "agent-b"/);
    const { deliveredMs } = await sys.afterAttack('payload claiming another agent', marker);
    observe({
      attack: "agent-b sends, on its own topic, an event whose agentId is web-01",
      expected: 'delivered (its own topic) but the recorder rejects it: rejected-*.jsonl, not events',
      observed: `rejected: "${String(rejected.reason)}"; no events line; agent delivered in ${deliveredMs} ms`,
    });
  });

  it('refuses forged acks (which would make the agent drop its outbox) from agent-b, a controller and a viewer', async () => {
    const marker = 'FORGED-ack';
    const ack = JSON.stringify({ schema: 'fso.ack/1', epoch: sys.agent.epoch, seq: 1_000_000_000, at: new Date().toISOString(), note: marker });
    const mark = sys.brokerLog.records().length;
    for (const user of [SEC_USERS.agentB, SEC_USERS.controller, SEC_USERS.viewer]) await publishAs(user, topics.ack(LEGIT_AGENT), ack, true);
    const refusals = publishRefusals(mark, marker);
    expect(refusals.map((l) => l.role)).toEqual(['agent', 'controller', 'viewer']);
    const { deliveredMs } = await sys.afterAttack('forged acks', marker);
    expect(spy.saw(marker)).toBe(false);
    observe({
      attack: 'forged ack for web-01 (seq 10^9) by agent-b, controller, viewer',
      expected: 'refused, logged; the agent keeps its outbox',
      observed: `3/3 closed and logged (roles agent, controller, viewer); spy saw no forged ack; agent delivered in ${deliveredMs} ms`,
    });
  });

  it('refuses the recorder and the controller writing events, and anyone writing $SYS', async () => {
    const marker = 'FORGED-by-privileged';
    const mark = sys.brokerLog.records().length;
    await publishAs(SEC_USERS.recorder, topics.event(LEGIT_AGENT, 'create'), forgedEvent(marker));
    await publishAs(SEC_USERS.controller, topics.event(LEGIT_AGENT, 'create'), forgedEvent(marker));
    await publishAs(SEC_USERS.recorder, '$SYS/broker/uptime', marker);
    const refusals = publishRefusals(mark, marker);
    expect(refusals.map((l) => [l.role, l.topic])).toEqual([
      ['recorder', topics.event(LEGIT_AGENT, 'create')],
      ['controller', topics.event(LEGIT_AGENT, 'create')],
      ['recorder', '$SYS/broker/uptime'],
    ]);
    const { deliveredMs } = await sys.afterAttack('privileged roles writing events', marker);
    observe({
      attack: 'recorder and controller publish an event of web-01; recorder publishes to $SYS',
      expected: 'refused, logged',
      observed: `3/3 closed and logged ("${String(refusals[2]?.msg)}"); agent delivered in ${deliveredMs} ms`,
    });
  });

  it("refuses a last will on the legitimate agent's status topic", async () => {
    const marker = 'FORGED-will';
    const mark = sys.brokerLog.records().length;
    const outcome = await tryLogin(sys.broker.url, {
      ...sys.loginOptions(SEC_USERS.agentB),
      will: { topic: topics.status(LEGIT_AGENT), payload: Buffer.from(`{"state":"offline","x":"${marker}"}`), qos: 1, retain: true },
    });
    expect(outcome).toMatchObject({ connected: false, returnCode: 5 });
    const refusal = sys.brokerLogSince(mark).find((l) => l.msg === 'login refused');
    expect(String(refusal?.reason)).toContain('last will');
    const { deliveredMs } = await sys.afterAttack('forged last will', marker);
    observe({
      attack: "agent-b connects with a last will on web-01's status",
      expected: 'CONNACK 5, logged',
      observed: `CONNACK ${outcome.returnCode}; "login refused" (${String(refusal?.reason)}); agent delivered in ${deliveredMs} ms`,
    });
  });
});

describe('reading and configuring beyond a role', () => {
  it('answers an agent subscribing to fso/# (and other agents, wildcards, $SYS) with 0x80, keeping it connected', async () => {
    const mark = sys.brokerLog.records().length;
    const login = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.agentB));
    const client = login.client!;
    const filters = ['fso/#', '#', topics.allStatus(), topics.config(LEGIT_AGENT), `fso/agents/${LEGIT_AGENT}/#`, topics.ack(LEGIT_AGENT), '$SYS/#', topics.config('agent-b')];
    const codes = await subackCodes(client, filters);
    expect(codes).toEqual([128, 128, 128, 128, 128, 128, 128, 1]);
    expect(client.connected).toBe(true);
    await client.endAsync(true);
    const tool = await runTool('mosquitto_sub', [...mosquittoAuth(SEC_USERS.agentB, 'agent-b'), '-q', '1', '-t', 'fso/#', '-W', '5']);
    expect(tool.stderr).toContain('All subscription requests were denied');
    const refused = sys.brokerLogSince(mark).filter((l) => String(l.msg).startsWith('subscription refused'));
    expect(refused).toHaveLength(8);
    expect(refused[0]).toMatchObject({ username: 'agent-b', role: 'agent', topic: 'fso/#' });
    const { deliveredMs } = await sys.afterAttack('agent subscribing to fso/#', 'agent-b-sub');
    observe({
      attack: "agent subscribes to fso/#, #, all statuses, web-01's config/ack/#, $SYS/# (MQTT.js; mosquitto_sub fso/#)",
      expected: 'SUBACK 0x80 for each, stays connected, logged',
      observed: `SUBACK codes ${codes.join(',')} (last: its own config, granted); mosquitto_sub: "${tool.stderr.trim()}"; 8 "subscription refused" lines; agent delivered in ${deliveredMs} ms`,
    });
  });

  it('refuses a viewer publishing a config (MQTT.js and mosquitto_pub): the agent keeps its config', async () => {
    const marker = 'FORGED-config';
    const config = JSON.stringify({ schema: 'fso.config/1', revision: 99, watch: [{ path: `/tmp/${marker}` }] });
    const mark = sys.brokerLog.records().length;
    await publishAs(SEC_USERS.viewer, topics.config(LEGIT_AGENT), config, true);
    const tool = await runTool('mosquitto_pub', [...mosquittoAuth(SEC_USERS.viewer, 'viewer-mosq'), '-q', '1', '-r', '-t', topics.defaultConfig(), '-m', config]);
    await waitFor(() => publishRefusals(mark, marker).length >= 2, 'two "publish refused" lines');
    expect(publishRefusals(mark, marker).map((l) => [l.role, l.topic])).toEqual([
      ['viewer', topics.config(LEGIT_AGENT)],
      ['viewer', topics.defaultConfig()],
    ]);
    const { deliveredMs } = await sys.afterAttack('viewer publishing a config', marker);
    expect(sys.agent.config()?.revision).toBe(0);
    expect(spy.saw(marker)).toBe(false);
    observe({
      attack: 'viewer publishes a retained config (own topic of web-01 via MQTT.js; default via mosquitto_pub)',
      expected: 'refused, logged, not retained, agent keeps its config',
      observed: `both closed and logged (role viewer); mosquitto_pub exit ${tool.code}; agent still on revision ${sys.agent.config()?.revision}; no config record; agent delivered in ${deliveredMs} ms`,
    });
  });
});
