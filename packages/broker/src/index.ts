/**
 * @fso/broker: the embedded Aedes MQTT broker of FSO (TCP and WebSocket,
 * state on disk with `dataDir`), as a library; `fso-broker` is its bin.
 */
export { DEFAULT_BROKER_HOST, DEFAULT_BROKER_PORT, startBroker } from './broker.js';
export type { Broker, BrokerOptions } from './broker.js';
export { BrokerListenError, BrokerStorageError } from './errors.js';
