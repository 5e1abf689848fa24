import type { Aedes } from 'aedes';
import { parseTopic } from '@fso/common';
import type { Topics } from '@fso/common';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeliveryWindows } from './deliveryWindow.js';

/**
 * The broker's Prometheus metrics (issue 14 §3), in a registry of their own:
 * connections open and made, publishes received from clients by FSO message
 * kind (`event`, `diff`, `status`, `ack`, `config`…; `other` outside the
 * prefix), QoS 1 deliveries acknowledged by subscribers, subscriptions, client
 * errors; messages waiting for room in a persistent session's in-flight
 * window; process metrics prefixed `fso_broker_`.
 */
export function createBrokerMetrics(aedes: Aedes, topics: Topics, windows: DeliveryWindows | undefined): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'fso_broker_' });
  new Gauge({ name: 'fso_broker_connections', help: 'Clients connected now', registers: [registry], collect() { this.set(aedes.connectedClients); } });
  new Gauge({
    name: 'fso_broker_deliveries_waiting',
    help: 'QoS 1/2 messages for connected persistent sessions waiting for room in their in-flight window (--max-inflight)',
    registers: [registry],
    collect() {
      this.set(windows?.waiting ?? 0);
    },
  });
  const connects = new Counter({ name: 'fso_broker_connections_total', help: 'Client connections accepted (CONNACK 0)', registers: [registry] });
  const received = new Counter({ name: 'fso_broker_messages_received_total', help: 'PUBLISH packets received from clients, by FSO message kind', labelNames: ['kind'], registers: [registry] });
  const acked = new Counter({ name: 'fso_broker_deliveries_acked_total', help: 'QoS 1 deliveries acknowledged by subscribers (PUBACK)', registers: [registry] });
  const subscriptions = new Counter({ name: 'fso_broker_subscriptions_total', help: 'Topic filters subscribed (granted or not)', registers: [registry] });
  const errors = new Counter({ name: 'fso_broker_client_errors_total', help: 'Connections closed on a client error (protocol, limits, refused publish)', registers: [registry] });
  aedes.on('client', () => connects.inc());
  aedes.on('publish', (packet, client) => {
    if (client) received.inc({ kind: parseTopic(packet.topic, topics.prefix)?.kind ?? 'other' });
  });
  aedes.on('ack', () => acked.inc());
  aedes.on('subscribe', (subs) => subscriptions.inc(subs.length));
  aedes.on('clientError', () => errors.inc());
  return registry;
}
