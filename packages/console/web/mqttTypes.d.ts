// The part of MQTT.js's browser build (dist/mqtt.esm.js, served as /vendor/mqtt.js) the console uses.
export interface MqttPacket {
  retain: boolean;
}
/** A refused SUBSCRIBE: MQTT.js fails the callback, the SUBACK's codes are on the error. */
export type SubscribeError = Error & { packet?: { granted?: Array<number | { qos: number }> } };
export interface MqttClient {
  connected: boolean;
  on(event: 'connect', cb: () => void): this;
  on(event: 'close' | 'offline' | 'end' | 'reconnect', cb: () => void): this;
  on(event: 'error', cb: (err: Error & { code?: number }) => void): this;
  on(event: 'message', cb: (topic: string, payload: Uint8Array, packet: MqttPacket) => void): this;
  subscribe(filters: string[], opts: { qos: 0 | 1 }, cb: (err: SubscribeError | null, granted?: Array<{ topic: string; qos: number }>) => void): this;
  publish(topic: string, payload: string, opts: { qos: 0 | 1; retain?: boolean }, cb: (err?: Error) => void): this;
  end(force?: boolean, opts?: object, cb?: () => void): this;
}
export interface ConnectOptions {
  username?: string;
  password?: string;
  clientId?: string;
  clean?: boolean;
  protocolVersion?: 4;
  reconnectPeriod?: number;
  connectTimeout?: number;
  resubscribe?: boolean;
}
declare const mqtt: { connect(url: string, options: ConnectOptions): MqttClient };
export default mqtt;
