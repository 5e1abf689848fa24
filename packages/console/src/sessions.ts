import { randomBytes } from 'node:crypto';
import type { Access } from './brokerLogins.js';

/** One logged-in browser. */
export interface Session {
  username: string;
  access: Access;
  createdAt: number;
  lastUsedAt: number;
}

/** Bounds of {@link createSessions}. */
export interface SessionLimits {
  /** A session unused this long ends; default 8 h. */
  idleMs?: number;
  /** A session ends this long after its login whatever its use; default 24 h. */
  maxAgeMs?: number;
  /** At most this many sessions; the least recently used goes first; default 1,000. */
  maxSessions?: number;
}

/** The console's logins, by an opaque random token kept in an HttpOnly cookie. */
export interface Sessions {
  create(username: string, access: Access): string;
  /** The live session of `token`, touched; undefined when unknown or expired. */
  get(token: string | undefined): Session | undefined;
  delete(token: string | undefined): void;
  readonly size: number;
}

/**
 * In-memory sessions: a console restart logs everyone out, which is the safe
 * side (a session is a broker login the console checked, not a credential).
 */
export function createSessions(limits: SessionLimits = {}, now: () => number = Date.now): Sessions {
  const idleMs = limits.idleMs ?? 8 * 3_600_000;
  const maxAgeMs = limits.maxAgeMs ?? 24 * 3_600_000;
  const maxSessions = limits.maxSessions ?? 1_000;
  // A Map keeps insertion order; a touched session is moved to the end, so the first is the least recently used.
  const sessions = new Map<string, Session>();
  return {
    create(username, access) {
      const token = randomBytes(32).toString('base64url');
      const at = now();
      while (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value as string);
      sessions.set(token, { username, access, createdAt: at, lastUsedAt: at });
      return token;
    },
    get(token) {
      if (token === undefined) return undefined;
      const session = sessions.get(token);
      if (!session) return undefined;
      const at = now();
      if (at - session.lastUsedAt > idleMs || at - session.createdAt > maxAgeMs) {
        sessions.delete(token);
        return undefined;
      }
      session.lastUsedAt = at;
      sessions.delete(token);
      sessions.set(token, session);
      return session;
    },
    delete(token) {
      if (token !== undefined) sessions.delete(token);
    },
    get size() {
      return sessions.size;
    },
  };
}
