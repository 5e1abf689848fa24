/**
 * @fso/audit-recorder: the recorder daemon that appends every FSO message to
 * hash-chained JSONL files (DESIGN.md "Audit files"), and the tools that read
 * them back (`tail`), search them (`query`) and check them (`verify`).
 */
export { startRecorder } from './recorder.js';
export type { Recorder, RecorderOptions } from './recorder.js';
export { verifyAuditDir } from './verify.js';
export type { VerifyFailure, VerifyResult } from './verify.js';
export { TAIL_TYPES, followAuditRecords, parseSince, readAuditRecords } from './tail.js';
export { pathHistory, queryAuditRecords, treeFromTrail } from './query.js';
export type { AuditQuery, AuditQueryResult, TrailEntry } from './query.js';
export type { AuditRecordFilter, AuditRecordLine, FollowOptions } from './tail.js';
export { agentOf, formatRecord } from './format.js';
export { AUDIT_FILE_KINDS, auditFileName, dayOf, listAuditFiles } from './auditFiles.js';
export type { AuditFile, AuditFileKind } from './auditFiles.js';
export { GENESIS_HASH, openLine, sealLine, sha256Hex } from './chain.js';
export type { OpenedLine, SealedLine } from './chain.js';
export { AuditDirError, AuditWriteError, SubscribeError, TailFilterError } from './errors.js';
