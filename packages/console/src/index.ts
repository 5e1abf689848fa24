/**
 * @fso/console: the FSO web console (fleet, live stream, search, configs,
 * integrity) and its read-only HTTP API over the audit trail, behind the
 * broker's own logins.
 */
export { DEFAULT_CONSOLE_PORT, startConsole } from './console.js';
export type { Console, ConsoleOptions } from './console.js';
export { createBrokerLogins } from './brokerLogins.js';
export type { Access, BrokerLoginOptions, BrokerLogins, LoginVerdict } from './brokerLogins.js';
export { indexedTrailReader, linearTrailReader, watchIntegrity } from './trail.js';
export type { IntegrityMonitor, IntegrityReport, TrailReader } from './trail.js';
export { MAX_PAGE } from './queryParams.js';
export { BadRequestError, ConsoleStartError } from './errors.js';
