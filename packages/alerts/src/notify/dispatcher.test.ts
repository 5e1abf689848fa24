import { Writable } from 'node:stream';
import { createLogger } from '@fso/common';
import type { FsoAlert } from '@fso/common';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../../tests/helpers.js';
import { startStreamReceiver } from '../testing/syslogReceiver.js';
import { refusedPort, startWebhookReceiver } from '../testing/webhookReceiver.js';
import type { WebhookReceiver } from '../testing/webhookReceiver.js';
import { createDispatcher } from './dispatcher.js';
import type { Dispatcher } from './dispatcher.js';
import { createNotifier, targetSchema } from './targets.js';

const alert = (id: string): FsoAlert => ({
  schema: 'fso.alert/1', id, rule: 'mass-delete', state: 'firing', severity: 'high', key: 'web-01:/srv', summary: 'mass delete on web-01:/srv',
  agentId: 'web-01', path: '/srv', count: 100, firstAt: '2026-12-05T10:00:00.000Z', lastAt: '2026-12-05T10:00:01.000Z', samples: [], source: 'test',
  at: '2026-12-05T10:00:01.100Z',
});

const receivers: WebhookReceiver[] = [];
const dispatchers: Dispatcher[] = [];
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

function capturedLog(): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  let text = '';
  const destination = new Writable({ write: (chunk: Buffer, _e, cb) => ((text += chunk.toString()), cb()) });
  return {
    log: createLogger({ name: 'test', level: 'debug', format: 'json', destination }),
    lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const hook = (name: string, port: number, timeout = '5s') =>
  createNotifier(name, targetSchema.parse({ type: 'webhook', url: `http://127.0.0.1:${port}/fso`, timeout }), { baseDir: '/', env: {}, log: capturedLog().log });

describe('dispatcher, with real webhook receivers', () => {
  it('a target that refuses connections and one that hangs delay no other; each gets the alert once it is back', async () => {
    /** Outcomes and arrivals, in the order they happened. */
    const events: string[] = [];
    const downPort = await refusedPort();
    const up = await startWebhookReceiver({ onRequest: () => events.push('up:received') });
    const hung = await startWebhookReceiver({ answer: () => 'hang', onRequest: () => events.push('hung:received') });
    receivers.push(up, hung);
    const dispatcher = createDispatcher({
      notifiers: [await hook('down', downPort), await hook('hung', hung.port, '300ms'), await hook('up', up.port)],
      log: capturedLog().log,
      retry: { attempts: 1000, initialDelayMs: 20, maxDelayMs: 100 },
      onOutcome: (target, outcome) => events.push(`${target}:${outcome}`),
    });
    dispatchers.push(dispatcher);

    dispatcher.dispatch(['down', 'hung', 'up'], alert('a1'));
    await waitFor(() => events.includes('up:sent'), 'the alert at the receiver that is up');
    await waitFor(() => events.includes('down:retried') && events.includes('hung:retried'), 'a failed attempt at the target that is down and at the one that hangs');
    // The hung target's first attempt was still waiting for an answer when the other target got the alert.
    expect(events.indexOf('up:sent')).toBeLessThan(events.indexOf('hung:retried'));
    expect(events.filter((e) => e.startsWith('down:') || e.startsWith('hung:')).every((e) => e.endsWith(':retried') || e === 'hung:received')).toBe(true);
    expect(up.accepted()).toEqual(['a1']);

    // Both come back: a receiver on the port that refused, and the hung one answers from now on.
    const back = await startWebhookReceiver({ port: downPort, onRequest: () => events.push('down:received') });
    receivers.push(back);
    hung.release(204);
    await waitFor(() => events.includes('down:sent') && events.includes('hung:sent'), 'the alert at both targets once they are back');
    expect(back.accepted()).toEqual(['a1']);
    // The hung receiver got the alert more than once (each attempt cut at 300 ms) and the dispatcher counts it sent
    // once. The receiver may also have answered an attempt the client had already given up on (its close not yet
    // seen): at-least-once delivery, which is why receivers dedupe by x-fso-alert-id.
    expect(hung.requests.length).toBeGreaterThan(1);
    expect(new Set(hung.requests.map((r) => r.alertId))).toEqual(new Set(['a1']));
    expect(hung.accepted().length).toBeGreaterThan(0);
    expect(events.filter((e) => e === 'hung:sent')).toHaveLength(1);
    expect(events.indexOf('down:retried')).toBeLessThan(events.indexOf('down:sent'));
    expect(events.filter((e) => e.endsWith(':failed'))).toEqual([]);
  });

  it('keeps the order per target, and a full queue drops the oldest waiting alert with a log line', async () => {
    const gate = await startWebhookReceiver({ answer: () => 'hang' });
    receivers.push(gate);
    const captured = capturedLog();
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({ notifiers: [await hook('gate', gate.port)], log: captured.log, maxQueue: 2, onOutcome: (_t, o) => outcomes.push(o) });
    dispatchers.push(dispatcher);

    // q0 is in flight (held by the receiver); q1 and q2 wait; q3 and q4 push them out, oldest first.
    for (let i = 0; i < 5; i++) dispatcher.dispatch(['gate'], alert(`q${i}`));
    expect(outcomes).toEqual(['dropped', 'dropped']);
    expect(captured.lines().filter((l) => String(l.msg).includes('queue of gate is full')).map((l) => l.alert)).toEqual(['q1', 'q2']);
    await waitFor(() => gate.requests.length === 1, 'the first alert at the receiver');

    gate.release(204);
    await waitFor(() => gate.accepted().length === 3, 'the three alerts left in the queue at the receiver');
    expect(gate.accepted()).toEqual(['q0', 'q3', 'q4']);
    expect(outcomes).toEqual(['dropped', 'dropped', 'sent', 'sent', 'sent']);
  });

  it('never throws: an unknown target and a throwing outcome callback are logged and counted', async () => {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    const captured = capturedLog();
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({
      notifiers: [await hook('ok', receiver.port)],
      log: captured.log,
      onOutcome: (target, outcome) => {
        outcomes.push(`${target}:${outcome}`);
        throw new Error('metrics broke');
      },
    });
    dispatchers.push(dispatcher);
    expect(() => dispatcher.dispatch(['nowhere', 'ok'], alert('u1'))).not.toThrow();
    await waitFor(() => outcomes.includes('ok:sent'), 'the alert at the known target');
    expect(outcomes).toEqual(['nowhere:dropped', 'ok:sent']);
    expect(captured.lines().some((l) => l.msg === 'no notification target named nowhere')).toBe(true);
    expect(captured.lines().filter((l) => l.msg === 'notification outcome callback failed')).toHaveLength(2);
  });

  it('close() waits for the drain, then gives up on a target still retrying; a second call returns the same promise', async () => {
    const downPort = await refusedPort();
    const outcomes: string[] = [];
    const dispatcher = createDispatcher({
      notifiers: [await hook('down', downPort)],
      log: capturedLog().log,
      retry: { attempts: 1000, initialDelayMs: 20, maxDelayMs: 50 },
      onOutcome: (_t, o) => outcomes.push(o),
    });
    dispatcher.dispatch(['down'], alert('c1'));
    dispatcher.dispatch(['down'], alert('c2'));
    await waitFor(() => outcomes.includes('retried'), 'a failed attempt');
    const closing = dispatcher.close({ drainMs: 100 });
    expect(dispatcher.close()).toBe(closing);
    await closing;
    // c1 given up (it was between attempts or in one), c2 never tried: both dropped or failed, none sent, nothing pending.
    const final = outcomes.filter((o) => o !== 'retried');
    expect(final).toHaveLength(2);
    expect(final).toContain('dropped');
    expect(final.every((o) => o === 'dropped' || o === 'failed')).toBe(true);
    expect(dispatcher.pending().get('down')).toBe(0);
    const after = outcomes.length;
    dispatcher.dispatch(['down'], alert('c3'));
    expect(outcomes.slice(after)).toEqual(['dropped']);
  });

  it('close({ drainMs }) lets the queues drain, then closes every notifier (the receivers see their connections end) and cuts a hung send', async () => {
    const siem = await startStreamReceiver({ transport: 'tcp' });
    const hung = await startWebhookReceiver({ answer: () => 'hang' });
    receivers.push(hung);
    const events: string[] = [];
    const syslog = await createNotifier('siem', targetSchema.parse({ type: 'syslog', transport: 'tcp', host: '127.0.0.1', port: siem.port }), { baseDir: '/', env: {}, log: capturedLog().log });
    const dispatcher = createDispatcher({
      // The hung target's timeout is far beyond the drain: only closing its notifier can end its send.
      notifiers: [syslog, await hook('hung', hung.port, '60s')],
      log: capturedLog().log,
      onOutcome: (target, outcome) => events.push(`${target}:${outcome}`),
    });
    try {
      for (const id of ['d1', 'd2', 'd3']) dispatcher.dispatch(['siem', 'hung'], alert(id));
      await waitFor(() => hung.requests.length === 1, 'the first alert held by the hung receiver');
      await waitFor(() => siem.messages.length === 3, 'the three alerts at the syslog receiver');
      expect(siem.openConnections()).toBe(1);

      const closing = dispatcher.close({ drainMs: 300 });
      expect(dispatcher.close({ drainMs: 0 })).toBe(closing);
      await closing;
      events.push('closed');
      // The syslog lane had drained; the hung lane's send was cut when its notifier closed, and what waited behind it dropped.
      expect(events).toEqual(['siem:sent', 'siem:sent', 'siem:sent', 'hung:dropped', 'hung:dropped', 'hung:failed', 'closed']);
      expect(siem.messages).toHaveLength(3);
      expect(dispatcher.pending()).toEqual(new Map([['siem', 0], ['hung', 0]]));
      await waitFor(() => siem.openConnections() === 0, 'the syslog connection closed by the dispatcher\'s close()');
      await waitFor(() => hung.requests.length === 1 && hung.accepted().length === 0, 'nothing more at the hung receiver');
    } finally {
      await siem.close();
    }
  });
});
