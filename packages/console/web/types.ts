// The shapes the web app reads: the messages are common's zod types (type
// imports only, erased at build time), the API's answers are spelled here.
import type { AgentConfig, AgentStatus, FsoDiff, FsoEvent, FsoGap } from '@fso/common';

export type { AgentConfig, AgentStatus, FsoDiff, FsoEvent, FsoGap };

/** What the broker lets a login read (the console's `Access`). */
export interface Access {
  trail: boolean;
  fleet: boolean;
  configs: boolean;
}

/** `GET /api/info`. */
export interface Info {
  version: string;
  wsUrl: string;
  topicPrefix: string;
}

/** `POST /api/login`, `GET /api/session`. */
export interface SessionInfo {
  username: string;
  access: Access;
}

/** What the user typed: kept in memory only, for the MQTT connections. */
export interface Credentials {
  username: string;
  password: string;
}

/** One line of the audit trail as the API sends it. */
export interface TrailRecord {
  file: string;
  line: number;
  record: Record<string, unknown> & { record?: string; receivedAt?: string; topic?: string };
}

/** `GET /api/records`. */
export interface RecordsPage {
  total: number;
  offset: number;
  limit: number;
  records: TrailRecord[];
}

/** One entry of `GET /api/tree`. */
export interface TreeEntry {
  path: string;
  kind: string;
  size: number | null;
  sha256: string | null;
  type: string;
  receivedAt: string;
}

/** `GET /api/verify`. */
export interface VerifyReport {
  result?: { ok: boolean; files: number; lines: number; failure?: { file: string; line: number; reason: string } };
  checkedAt?: string;
  running: boolean;
  error?: string;
}

/** `POST /api/config/check`. */
export type ConfigCheck = { ok: true; config: AgentConfig; issues: [] } | { ok: false; issues: Array<{ path: string; message: string }> };
