/**
 * @fso/controller: push live config to FSO agents and watch them apply it,
 * show the config in force for an agent, list agents. The `fso-controller`
 * bin (src/cli.ts) is a thin layer over these functions.
 */
export { pushConfig, DEFAULT_PUSH_TIMEOUT_MS } from './pushConfig.js';
export type { AgentOutcome, PushConfigOptions, PushResult, PushTarget } from './pushConfig.js';
export { getConfig } from './getConfig.js';
export type { ConfigInForce, ConfigSource, GetConfigOptions } from './getConfig.js';
export { listAgents } from './listAgents.js';
export type { AgentSummary } from './listAgents.js';
export { readConfigFile } from './configFile.js';
export { DEFAULT_CONNECT_TIMEOUT_MS } from './connection.js';
export type { ConnectionOptions } from './connection.js';
export { formatAgentsTable, formatConfigSource, formatPushResult, pushExitCode } from './cliOutput.js';
export { AgentNotFoundError, BrokerTimeoutError, ConfigFileError, OperationAbortedError, TokenError } from './errors.js';
export { mintToken } from './token.js';
export type { MintTokenOptions } from './token.js';
