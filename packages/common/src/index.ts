/**
 * @fso/common: the contract every FSO package shares (schemas, topics),
 * the logger factory and small CLI/MQTT helpers.
 */
export {
  AGENT_ID_PATTERN,
  DEFAULT_MAX_PATCH_BYTES,
  DEFAULT_NODIFF,
  DIFF_SKIP_REASONS,
  ENTRY_KINDS,
  EVENT_TYPES,
  WATCH_GAP_REASONS,
  HASH_SKIP_REASONS,
  ORIGINS,
  RECORD_KINDS,
  REDACTION_KIND_PATTERN,
  ackSchema,
  agentConfigSchema,
  agentIdSchema,
  configStateSchema,
  diffOptionsSchema,
  diffSchema,
  diffSkipReasonSchema,
  entryKindSchema,
  eventSchema,
  eventTypeSchema,
  gapMessageSchema,
  gapRecordSchema,
  hashOptionsSchema,
  originSchema,
  redactPatternSchema,
  redactionSchema,
  statusSchema,
  timestampSchema,
  watchSpecSchema,
  WHO_MISSING_REASONS,
  WHO_SOURCES,
  whoSchema,
  describeWho,
} from './schemas.js';
export type {
  Ack,
  AgentConfig,
  AgentConfigInput,
  AgentStatus,
  ConfigState,
  DiffOptions,
  DiffSkipReason,
  EntryKind,
  EventType,
  FsoDiff,
  FsoEvent,
  FsoGap,
  GapRecord,
  HashOptions,
  HashSkipReason,
  Origin,
  RecordKind,
  RedactPattern,
  Redaction,
  WatchSpec,
  WatchGapReason,
  WatchState,
  Who,
  WhoMissingReason,
} from './schemas.js';
export {
  ALERT_SEVERITIES,
  ALERT_STATES,
  MAX_ALERT_SAMPLES,
  RULE_ID_PATTERN,
  alertSampleSchema,
  alertSchema,
  alertSeveritySchema,
  alertStateSchema,
  ruleIdSchema,
} from './alerts.js';
export type { AlertSample, AlertSeverity, AlertState, FsoAlert } from './alerts.js';
export { DEFAULT_TOPIC_PREFIX, createTopics, parseTopic } from './topics.js';
export type { ParsedTopic, Topics } from './topics.js';
export { createLogger, createSilentLogger } from './logger.js';
export type { Logger, LoggerOptions } from './logger.js';
export { BrokerConnectError, ConfigValidationError, InvalidAgentIdError, JwtError, errorCode, toError } from './errors.js';
export type { JwtErrorReason } from './errors.js';
export { MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, MAX_SMALL_PAYLOAD_BYTES, assertAgentId, formatIssues, parseAgentConfig, parseJson, positiveDurationSchema } from './validate.js';
export type { JsonResult } from './validate.js';
export { isoFromMs, isoNow } from './time.js';
export { DEFAULT_BROKER_URL, connectMqtt, createMqttClient, endMqtt, resolveBrokerUrl, subscribeCodes, waitForConnect } from './mqtt.js';
export type { ConnectOptions } from './mqtt.js';
export { collect, onShutdown, parseDuration, runIfMain } from './process.js';
export { writeFileAtomic } from './atomicFile.js';
export { EXIT } from './exitCodes.js';
export type { ExitCode } from './exitCodes.js';
export { FSO_VERSION } from './version.js';
export {
  DEFAULT_CLOCK_SKEW_SECONDS,
  FSO_ROLES,
  JWT_ALGORITHMS,
  MAX_TOKEN_BYTES,
  MIN_HS256_SECRET_BYTES,
  createJwtKey,
  fsoTokenClaimsSchema,
  jwtAlgorithmOf,
  jwtSecretFromFile,
  parseFsoClaims,
  signJwt,
  verifyJwt,
} from './jwt.js';
export type { FsoRole, FsoTokenClaims, JwtAlgorithm, JwtClaims, JwtKeyInput, VerifyJwtOptions } from './jwt.js';
export { isLoopback } from './loopback.js';
export { startHealthServer } from './healthServer.js';
export type { HealthServer, HealthServerOptions, HealthState } from './healthServer.js';
export { portOption, positiveDurationOption } from './cliOptions.js';
