import type { Client } from 'aedes';

type Deliver = (packet: unknown, callback: (error?: Error | null) => void) => void;

/**
 * Makes `client`'s CONNACK the first packet it gets (MQTT-3.2.0-1).
 *
 * aedes 1.2 restores a persistent session's subscriptions (and stores its
 * will) before it writes the CONNACK, and it writes to a client that is
 * still `connecting`: a message published in that window (an agent's
 * resend flood while the recorder reconnects) goes out before the CONNACK.
 * MQTT.js then waits to PUBACK it until it is connected, and connects only
 * when its parser reaches the CONNACK, which waits behind that PUBLISH: the
 * recorder stalled until its connect timeout (seen in CI, under load, after
 * a recorder SIGKILL; moscajs/aedes#80 fixed the same for retained messages
 * only). Deliveries to the client are held until its CONNACK is written,
 * then sent in order; a connection that closes first lets them go (the
 * publisher's outbox resends what matters).
 *
 * Called from preConnect (broker.ts): the wrappers are in place before aedes restores
 * the subscriptions, which capture `deliverQoS`/`deliver0` when made.
 */
export function deliverAfterConnack(client: Client): void {
  const c = client as unknown as { deliverQoS: Deliver; deliver0: Deliver; connackSent: boolean; conn: NodeJS.EventEmitter; broker: NodeJS.EventEmitter };
  const held: Array<() => void> = [];
  let waiting = false;
  const flush = (): void => {
    for (const send of held.splice(0)) send();
  };
  const hold =
    (deliver: Deliver): Deliver =>
    (packet, callback) => {
      if (c.connackSent) {
        deliver.call(c, packet, callback);
        return;
      }
      held.push(() => (c.connackSent ? deliver.call(c, packet, callback) : callback()));
      if (waiting) return;
      waiting = true;
      const onConnack = (_connack: unknown, who: unknown): void => {
        if (who !== client) return;
        c.broker.off('connackSent', onConnack);
        flush();
      };
      c.broker.on('connackSent', onConnack);
      c.conn.once('close', () => {
        c.broker.off('connackSent', onConnack);
        flush();
      });
    };
  c.deliverQoS = hold(c.deliverQoS);
  c.deliver0 = hold(c.deliver0);
}
