/**
 * JSON bombs published with the legitimate agent's own credentials on its
 * own event topic (a compromised host): the recorder must write each to
 * rejected-*.jsonl (payload cut to a bounded size), never crash, and keep
 * recording the real agent's changes.
 *
 * The credentials are the agent's, so each bomb's login takes over client id
 * web-01 and knocks the real agent off for a moment (one principal, one
 * session): it reconnects by itself, which is part of what is checked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, createTopics } from '@fso/common';
import { waitFor } from '../helpers.js';
import { LEGIT_AGENT, SEC_USERS, observe, readAuditLines, startSecureSystem, tryLogin } from '../securityHarness.js';
import type { AuditLine, SecureSystem } from '../securityHarness.js';

const topics = createTopics();
const TOPIC = topics.event(LEGIT_AGENT, 'create');
let sys: SecureSystem;
let recorderFailed: string | undefined;

beforeAll(async () => {
  sys = await startSecureSystem();
  void sys.recorder.failed.then((err) => (recorderFailed = err.message));
});
afterAll(async () => {
  await sys?.close();
});

/** Publishes `payload` on the agent's event topic with the agent's own credentials. */
async function publishAsLegitAgent(payload: string | Buffer): Promise<void> {
  const login = await tryLogin(sys.broker.url, sys.loginOptions(SEC_USERS.agent));
  if (!login.client) throw new Error(`the attacker could not log in: ${login.error ?? ''}`);
  await login.client.publishAsync(TOPIC, payload, { qos: 1 });
  await login.client.endAsync();
}

/** A schema-valid event of the agent, plus `extra` spliced in as one more field. */
function validEventWith(extra: string): string {
  const at = new Date().toISOString();
  const event = {
    schema: 'fso.event/1', id: `bomb-${Date.now()}`, agentId: LEGIT_AGENT, epoch: sys.agent.epoch, seq: 800_000 + Math.floor(Math.random() * 1000),
    type: 'create', path: `${sys.watched}/bomb.txt`, root: sys.watched, kind: 'file', size: 1, mtime: at, sha256: null,
    important: false, origin: 'live', observedAt: at, emittedAt: at,
  };
  return `${JSON.stringify(event).slice(0, -1)},"extra":${extra}}`;
}

const nested = (depth: number, open: string, close: string, leaf = '1'): string => open.repeat(depth) + leaf + close.repeat(depth);

const bombs: Array<{ name: string; payload: () => string | Buffer }> = [
  { name: 'an array nested 100,000 deep', payload: () => nested(100_000, '[', ']') },
  { name: 'an object nested 100,000 deep', payload: () => nested(100_000, '{"a":', '}') },
  { name: 'a 15 MB JSON string', payload: () => `"${'s'.repeat(15 * 1024 * 1024)}"` },
  { name: "an event whose id is a 15 MB string", payload: () => validEventWith('0').replace(/"id":"[^"]*"/, `"id":"${'i'.repeat(15 * 1024 * 1024)}"`) },
  { name: `a payload over ${MAX_PAYLOAD_BYTES} bytes (under the broker's packet limit)`, payload: () => Buffer.alloc(MAX_PAYLOAD_BYTES + 1024, '[') },
];

describe('JSON bombs on the legitimate agent event topic', () => {
  it.each(bombs)('writes $name to rejected-*.jsonl and keeps recording', async ({ name, payload }) => {
    const bytes = payload();
    const size = Buffer.byteLength(bytes);
    const started = Date.now();
    await publishAsLegitAgent(bytes);
    const rejected = await waitFor(
      async () => (await readAuditLines(sys.auditDir, 'rejected')).find((l: AuditLine) => l.payloadBytes === size && l.topic === TOPIC),
      `the rejected record of ${name}`,
      20_000,
      100,
    );
    const rejectedMs = Date.now() - started;
    expect(String(rejected.payload).length).toBeLessThanOrEqual(4096);
    const { deliveredMs } = await sys.afterAttack(name, 'bomb-');
    expect(recorderFailed).toBeUndefined();
    observe({
      attack: `JSON bomb by the agent's own credentials: ${name} (${size} bytes)`,
      expected: 'rejected-*.jsonl, recorder keeps recording',
      observed: `rejected in ${rejectedMs} ms: "${String(rejected.reason).slice(0, 90)}", payload kept ${String(rejected.payload).length} chars; real agent (knocked off by the takeover) delivered again in ${deliveredMs} ms`,
    });
  });

  // HOLE (reported, low): the event schemas are not strict and the recorder writes the raw
  // payload, so a valid event carries any extra field into the trail unchecked: here 15 MB.
  // Expected: rejected (or the field dropped). Remove `.fails` once fixed.
  it('does not record a valid event padded with a 15 MB unknown field', async () => {
    const payload = validEventWith(`"${'x'.repeat(15 * 1024 * 1024)}"`);
    const id = String((JSON.parse(payload) as { id: string }).id);
    await publishAsLegitAgent(payload);
    const where = await waitFor(async () => {
      const recorded = (await readAuditLines(sys.auditDir, 'events')).find((l) => l.id === id);
      if (recorded) return `recorded in events-*.jsonl with its ${String(recorded.extra).length}-char "extra" field`;
      const rejected = (await readAuditLines(sys.auditDir, 'rejected')).find((l) => String(l.payload).includes(id));
      return rejected && `rejected: ${String(rejected.reason)}`;
    }, 'the padded event in some audit file', 20_000, 100);
    observe({
      attack: "valid event + a 15 MB unknown field, by the agent's own credentials",
      expected: 'rejected (or the unknown field dropped)',
      observed: `HOLE (low): ${where}`,
    });
    expect(where).toMatch(/^rejected/);
  });

  // HOLE (reported, high): a valid event with an unknown field nested 20,000 deep (~100 KB)
  // passes validation (non-strict schema, raw payload kept), then the writer's
  // JSON.stringify overflows the stack: AuditWriteError, "audit write failed: no more acks,
  // stopping", and the recorder closes itself. One message from any agent login stops the
  // whole audit trail. Must stay the last test of this file (the recorder is gone after it).
  // Remove `.fails` once the recorder rejects it (or survives it).
  it('keeps recording after a valid event with an unknown field nested 20,000 deep', async () => {
    await publishAsLegitAgent(validEventWith(nested(20_000, '{"a":', '}')));
    // The failure, if it comes, comes within milliseconds; then no change can reach the trail.
    const failed = await waitFor(() => recorderFailed, 'a recorder failure', 3000).catch(() => undefined);
    let outcome = 'recorder kept recording';
    if (failed) outcome = `recorder stopped: ${failed}`;
    else await sys.proveDelivery('deep unknown field');
    const fatal = sys.recorderLog.records().find((l) => l.level === 60);
    observe({
      attack: 'valid event + an unknown field nested 20,000 deep (~100 KB), by the agent\'s own credentials',
      expected: 'rejected-*.jsonl (or recorded), recorder keeps recording',
      observed: `HOLE (high): ${outcome}${fatal ? `; fatal log "${String(fatal.msg)}"` : ''}`,
    });
    expect(recorderFailed).toBeUndefined();
    expect(outcome).toBe('recorder kept recording');
  });
});
