import { afterEach, describe, expect, it } from 'vitest';
import { BINS, assertBuilt, killAll, spawnDaemon } from '../../../tests/faultHarness.js';
import { waitFor, waitForProgress } from '../../../tests/helpers.js';
import type { Broker } from './broker.js';
import { notOnce, publishAll, useSessionFixture } from './testing/rawSession.js';
import type { RawSession } from './testing/rawSession.js';

// Before the window, aedes wrote every queued message to a persistent session at once: in the
// fleet benchmark the recorder had 65,535 unacknowledged within 50 s, packet ids were reused
// while in flight, and the cluster's Redis queue kept the entries whose mapping was lost
// (docs/scaling.md, "The in-flight window").

const WINDOW = 50;

async function waitingOn(broker: Broker): Promise<number> {
  const metric = await broker.metrics.getSingleMetric('fso_broker_deliveries_waiting')?.get();
  return metric?.values[0]?.value ?? Number.NaN;
}

/**
 * Acknowledges what `session` received, over and over, until it has `count`
 * messages; returns the most it ever held unacknowledged (checked at each
 * look, every 20 ms) and stops early once that is over the window.
 */
async function drain(session: RawSession, count: number, mostSoFar: number): Promise<number> {
  let most = mostSoFar;
  await waitForProgress(
    () => {
      most = Math.max(most, session.unacked());
      session.ackAll();
      return session.received().length >= count || most > WINDOW;
    },
    () => session.received().length,
    `all ${count} messages delivered to the session`,
    { stallMs: 20_000, capMs: 120_000, intervalMs: 20 },
  );
  return most;
}

describe('the in-flight window of a persistent session (--max-inflight)', () => {
  const { brokers, redisUrl, db, publisherOn, sessionOn } = useSessionFixture();

  afterEach(async () => {
    await killAll();
  });

  /** Publishes `count` on `publishVia`, to a session on `sessionOn`: it holds `WINDOW`, the rest wait on `windowed` until it acknowledges. */
  async function throughTheWindow(publishVia: Broker, windowed: Broker, clientId: string, count: number): Promise<RawSession> {
    const session = await sessionOn(windowed.url, clientId);
    await publishAll(await publisherOn(publishVia.url), 'win', count);
    let most = 0;
    // Every publish is acknowledged to its publisher; the windowed node has sent the session what
    // fits and holds the rest. Without a window it sends them all, and `most` says so at once.
    await waitFor(
      async () => {
        most = Math.max(most, session.unacked());
        return most > WINDOW || (session.received().length === WINDOW && (await waitingOn(windowed)) === count - WINDOW);
      },
      `${WINDOW} messages sent to the session and ${count - WINDOW} waiting`,
      30_000,
    );
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    most = await drain(session, count, most);
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    expect(notOnce(session.received(), count)).toEqual([]);
    expect(await waitingOn(windowed)).toBe(0);
    return session;
  }

  it('cluster: holds the session to the window, sends the rest as PUBACKs come, and its Redis queue ends empty', async () => {
    const a = await brokers.start({ redisUrl: redisUrl(), limits: { maxInflight: WINDOW } });
    const b = await brokers.start({ redisUrl: redisUrl(), limits: { maxInflight: WINDOW } });
    await throughTheWindow(a, b, 'windowed-cluster', 400);
    // Each PUBACK found its packet: nothing stays behind in the list every later LREM reads.
    await waitFor(async () => (await db().llen('outgoing:windowed-cluster')) === 0, 'the Redis queue of the session to empty');
  });

  it('single broker (in memory): the same window', async () => {
    const broker = await brokers.start({ limits: { maxInflight: WINDOW } });
    await throughTheWindow(broker, broker, 'windowed-single', 400);
  });

  it('cluster: what a SIGKILLed node held for the session is delivered, paced, by the node it reconnects to', async () => {
    assertBuilt();
    // More than aedes-persistence-redis replays by default (1,001): the rest were never sent after a reconnect.
    const count = 1500;
    const daemon = spawnDaemon('node A', BINS.broker, ['--port', '0', '--redis', redisUrl(), '--max-inflight', String(WINDOW)]);
    const listening = await daemon.waitForLog((l) => typeof l.url === 'string' && String(l.msg).startsWith('listening on'), 'node A listening', 30_000);
    const b = await brokers.start({ redisUrl: redisUrl(), limits: { maxInflight: WINDOW } });
    const first = await sessionOn(listening.url as string, 'windowed-kill');
    await publishAll(await publisherOn(b.url), 'win', count);
    await waitFor(async () => first.received().length >= WINDOW && (await db().llen('outgoing:windowed-kill')) === count, `${WINDOW} sent on node A and ${count} queued in Redis`, 30_000);
    expect(first.unacked()).toBe(WINDOW);

    await daemon.kill('SIGKILL');
    first.connection.socket.destroy();
    // The session is in Redis: node B restores its subscription and replays its whole queue, through the window.
    const second = await sessionOn(b.url, 'windowed-kill', { subscribe: false });
    const most = await drain(second, count, 0);
    expect(most, 'unacknowledged messages sent to the session').toBeLessThanOrEqual(WINDOW);
    expect(notOnce(second.received(), count)).toEqual([]);
    await waitFor(async () => (await db().llen('outgoing:windowed-kill')) === 0, 'the Redis queue of the session to empty');
  });
});
