/**
 * The auth file (`fso-broker --auth FILE`): JSON, mode 0600, users with a
 * role, an agent id for agents, and an scrypt hash, never a password.
 *
 * ```json
 * { "schema": "fso.auth/1",
 *   "users": [{ "username": "web-01", "role": "agent", "agentId": "web-01",
 *               "password": { "algorithm": "scrypt", "N": 32768, "r": 8, "p": 1,
 *                             "keyLength": 32, "salt": "…", "hash": "…" } }] }
 * ```
 */
import { readFile, stat } from 'node:fs/promises';
import { AGENT_ID_PATTERN, FSO_ROLES, errorCode, writeFileAtomic } from '@fso/common';
import type { FsoRole } from '@fso/common';
import { AuthFileError } from './errors.js';
import { checkPasswordHash } from './passwords.js';
import type { PasswordHash } from './passwords.js';

/** The `schema` of an auth file. */
export const AUTH_FILE_SCHEMA = 'fso.auth/1';
/** What a username may be: no spaces or control characters, so log lines stay unambiguous. */
export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

/** One login of the auth file. */
export interface AuthUser {
  username: string;
  role: FsoRole;
  /** The agent this login speaks for; present exactly when `role` is `agent`. */
  agentId?: string;
  password: PasswordHash;
}

/** The whole auth file. */
export interface AuthFile {
  schema: typeof AUTH_FILE_SCHEMA;
  users: AuthUser[];
}

/** An empty auth file (what `user add` starts from when the file does not exist). */
export function emptyAuthFile(): AuthFile {
  return { schema: AUTH_FILE_SCHEMA, users: [] };
}

/** What is wrong with a user's role and agent id, or null. */
export function checkRole(role: unknown, agentId: unknown): string | null {
  if (!FSO_ROLES.includes(role as FsoRole)) return `role must be one of ${FSO_ROLES.join(', ')}`;
  if (role === 'agent') {
    if (typeof agentId !== 'string') return 'an agent needs an agent id';
    if (!AGENT_ID_PATTERN.test(agentId)) return `invalid agent id ${JSON.stringify(agentId)}: it must match ${AGENT_ID_PATTERN.source}`;
  } else if (agentId !== undefined) {
    return `only an agent has an agent id, not a ${String(role)}`;
  }
  return null;
}

function parseUser(value: unknown, index: number, seen: Set<string>): AuthUser | string {
  const where = `users[${index}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${where} must be an object`;
  const user = value as Record<string, unknown>;
  const extra = Object.keys(user).filter((k) => !['username', 'role', 'agentId', 'password'].includes(k));
  if (extra.length > 0) return `${where}: unknown key ${extra.join(', ')}`;
  if (typeof user.username !== 'string' || !USERNAME_PATTERN.test(user.username)) return `${where}.username must match ${USERNAME_PATTERN.source}`;
  if (seen.has(user.username)) return `${where}: username ${user.username} appears twice`;
  seen.add(user.username);
  const roleProblem = checkRole(user.role, user.agentId);
  if (roleProblem) return `${where} (${user.username}): ${roleProblem}`;
  const hashProblem = checkPasswordHash(user.password);
  if (hashProblem) return `${where}.password (${user.username}): ${hashProblem}`;
  return user as unknown as AuthUser;
}

/** Validates parsed JSON as an auth file; throws {@link AuthFileError} naming the first problem. */
export function parseAuthFile(value: unknown, file: string): AuthFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new AuthFileError(file, 'must be a JSON object');
  const data = value as Record<string, unknown>;
  if (data.schema !== AUTH_FILE_SCHEMA) throw new AuthFileError(file, `schema must be "${AUTH_FILE_SCHEMA}"`);
  if (!Array.isArray(data.users)) throw new AuthFileError(file, 'users must be an array');
  const seen = new Set<string>();
  const users = data.users.map((u: unknown, i) => {
    const user = parseUser(u, i, seen);
    if (typeof user === 'string') throw new AuthFileError(file, user);
    return user;
  });
  return { schema: AUTH_FILE_SCHEMA, users };
}

/**
 * Reads and validates an auth file.
 *
 * @param ifMissing `empty` to get an empty file when there is none (for `user add`).
 * @throws {AuthFileError} when it cannot be read or is not a valid auth file.
 */
export async function readAuthFile(file: string, ifMissing: 'error' | 'empty' = 'error'): Promise<AuthFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (ifMissing === 'empty' && errorCode(err) === 'ENOENT') return emptyAuthFile();
    throw new AuthFileError(file, errorCode(err) === 'ENOENT' ? 'no such file (create it with fso-broker user add)' : (err as Error).message, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AuthFileError(file, `not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseAuthFile(json, file);
}

/**
 * Writes `data` to `file` atomically (a temp file beside it, fsync'd, then
 * renamed), mode 0600 from the first byte.
 */
export async function writeAuthFile(file: string, data: AuthFile): Promise<void> {
  try {
    await writeFileAtomic(file, `${JSON.stringify(data, null, 2)}\n`);
  } catch (err) {
    throw new AuthFileError(file, `cannot write: ${(err as Error).message}`, { cause: err });
  }
}

/** A warning when group or others can read or write `file` (it should be 0600), else null. */
export async function authFileModeWarning(file: string): Promise<string | null> {
  const { mode } = await stat(file);
  if ((mode & 0o077) === 0) return null;
  return `auth file ${file} is mode ${(mode & 0o777).toString(8)}: make it 0600 (chmod 600 ${file})`;
}

/** `data` with `user` added, or replacing the user of the same name. */
export function withUser(data: AuthFile, user: AuthUser): { data: AuthFile; replaced: boolean } {
  const replaced = data.users.some((u) => u.username === user.username);
  return { data: { ...data, users: [...data.users.filter((u) => u.username !== user.username), user] }, replaced };
}

/** `data` without `username`; null when there is no such user. */
export function withoutUser(data: AuthFile, username: string): AuthFile | null {
  const users = data.users.filter((u) => u.username !== username);
  return users.length === data.users.length ? null : { ...data, users };
}
