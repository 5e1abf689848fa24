/** @fso/agent: the watcher daemon run on each monitored host. */
export { startAgent } from './agent.js';
export type { Agent, AgentOptions } from './agent.js';
export { main } from './cli.js';
export { createWatchFilter } from './watch/filters.js';
export type { WatchFilter } from './watch/filters.js';
export { checkConfigForAgent } from './configManager.js';
export type { ConfigOutcome, ConfigSource } from './configManager.js';
export {
  ContentStoreClosedError,
  ContentStoreError,
  DiffError,
  DifferClosedError,
  OutboxError,
  RedactPatternError,
  RedactionKeyError,
  StateDirError,
  WatchError,
} from './errors.js';
export { WHO_MODES, WhoUnavailableError, startWhoSource } from './who/whoSource.js';
export { liveAuditd } from './who/auditReader.js';
export type { WhoAnswer, WhoMode, WhoSource } from './who/whoSource.js';
