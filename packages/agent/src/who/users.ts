import { readFileSync, statSync } from 'node:fs';

/** Names of user ids, as the host's passwd file gives them. */
export interface UserNames {
  /** The name of `uid`, or null (no such user, or no id). */
  name(uid: number | null | undefined): string | null;
}

/**
 * Reads `file` (default /etc/passwd) once, and again when an unknown id is
 * asked and the file changed since (a user added while the agent runs).
 * Users from NSS only (LDAP, SSSD) have no name here: their `user` is null,
 * their `uid` still says who.
 */
export function createUserNames(file = '/etc/passwd'): UserNames {
  let names = new Map<number, string>();
  let mtimeMs = -1;
  const load = (): void => {
    try {
      const stat = statSync(file);
      if (stat.mtimeMs === mtimeMs) return;
      mtimeMs = stat.mtimeMs;
      const next = new Map<number, string>();
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const [user, , id] = line.split(':');
        const uid = Number(id);
        if (user && id !== undefined && id !== '' && Number.isInteger(uid) && !next.has(uid)) next.set(uid, user);
      }
      names = next;
    } catch {
      // No passwd file: ids without names.
    }
  };
  load();
  return {
    name(uid) {
      if (uid === null || uid === undefined) return null;
      if (!names.has(uid)) load();
      return names.get(uid) ?? null;
    },
  };
}
