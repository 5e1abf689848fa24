/**
 * @fso/broker: the embedded Aedes MQTT broker of FSO (TCP and WebSocket,
 * TLS, logins by auth file or JWT with per-role access, limits on packets,
 * connections and publish rate, state on disk with `dataDir`), as a
 * library; `fso-broker` is its bin.
 */
export { DEFAULT_BROKER_HOST, DEFAULT_BROKER_PORT, DEFAULT_BROKER_TLS_PORT, startBroker } from './broker.js';
export type { Broker, BrokerOptions } from './broker.js';
export { DEFAULT_LIMITS } from './limits.js';
export type { BrokerLimits } from './limits.js';
export { filterCovers, permissionsOf } from './acl.js';
export type { Identity, Permissions } from './acl.js';
export type { AuthOptions, JwtAuthOptions } from './authenticator.js';
export { AUTH_FILE_SCHEMA, readAuthFile, writeAuthFile } from './authFile.js';
export type { AuthFile, AuthUser } from './authFile.js';
export { CLIENT_IDS_FILE, CLIENT_IDS_SCHEMA, readClientIds } from './clientIds.js';
export type { ClientIdBinding } from './clientIds.js';
export { LOGIN_GUARD_DEFAULTS } from './loginGuard.js';
export type { LoginGuardOptions } from './loginGuard.js';
export { DEFAULT_SCRYPT_PARAMS, hashPassword, verifyPassword } from './passwords.js';
export type { PasswordHash, ScryptParams } from './passwords.js';
export type { TlsFiles } from './tls.js';
export {
  AuthFileError,
  AuthenticationError,
  BrokerInsecureError,
  BrokerListenError,
  BrokerStorageError,
  BrokerClusterError,
  CheckQueueFullError,
  KeyFileError,
  UserCommandError,
} from './errors.js';
export type { Transport } from './errors.js';
