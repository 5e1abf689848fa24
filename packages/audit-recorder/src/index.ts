/**
 * @fso/audit-recorder: the recorder daemon that appends every FSO message to
 * hash-chained JSONL files (DESIGN.md "Audit files"), and the `fso-audit`
 * CLI. Reading, searching and verifying the trail is @fso/audit-trail's.
 */
export { startRecorder } from './recorder.js';
export type { Recorder, RecorderOptions } from './recorder.js';
export { AuditWriteError, SubscribeError } from './errors.js';
