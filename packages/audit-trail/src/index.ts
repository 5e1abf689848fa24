/**
 * @fso/audit-trail: the audit directory (DESIGN.md "Audit files") read back
 * (`readAuditRecords`, `followAuditRecords`), searched (`queryAuditRecords`,
 * `pathHistory`, `treeFromTrail`), searched through an index kept in a
 * directory of its own (`openTrailIndex`, `followTrailIndex`: SQLite, for
 * trails of millions of records), checked (`verifyAuditDir`, which reads
 * only the JSONL) and mapped to Elastic Common Schema for SIEMs (`toEcs`).
 * The recorder writes the trail; this library only ever reads it.
 */
export { verifyAuditDir } from './verify.js';
export type { VerifyFailure, VerifyResult } from './verify.js';
export { TAIL_TYPES, followAuditRecords, globMatcher, parseSince, readAuditRecords } from './tail.js';
export type { AuditRecordFilter, AuditRecordLine, FollowOptions } from './tail.js';
export { pathHistory, queryAuditRecords, treeFromTrail } from './query.js';
export type { AuditQuery, AuditQueryResult, TrailEntry, TreeOptions } from './query.js';
export { TrailIndex, followTrailIndex, openTrailIndex } from './trailIndex.js';
export type { FollowIndexOptions, TrailIndexOptions, TrailIndexStats } from './trailIndex.js';
export type { CatchUpResult } from './indexBuild.js';
export { agentOf, formatRecord } from './format.js';
export { ECS_VERSION, toEcs } from './ecs.js';
export type { EcsDocument, EcsEvent } from './ecs.js';
export { AUDIT_FILE_KINDS, auditFileName, dayOf, listAuditFiles } from './auditFiles.js';
export type { AuditFile, AuditFileKind } from './auditFiles.js';
export { GENESIS_HASH, openLine, sealLine, sha256Hex } from './chain.js';
export type { OpenedLine, SealedLine } from './chain.js';
export { readLines } from './lineReader.js';
export type { FileLine } from './lineReader.js';
export { AuditDirError, TailFilterError, TrailIndexError, TrailIndexStaleError } from './errors.js';
