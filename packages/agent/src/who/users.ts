import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

/** Names of user ids, as the host's passwd file gives them. */
export interface UserNames {
  /** The name of `uid`, or null (no such user, or no id). */
  name(uid: number | null | undefined): string | null;
}

/** Options of {@link createUserNames}. */
export interface UserNamesOptions {
  /** The passwd file; default /etc/passwd. */
  file?: string;
  /** NSS's lookup for ids the file lacks (LDAP, SSSD, systemd-homed); default /usr/bin/getent, null for none. */
  getent?: string | null;
  /** How long an NSS answer (a name, or none) is kept (ms); default 10 minutes. */
  nssTtlMs?: number;
}

/**
 * Reads the passwd file once, and again when an unknown id is asked and the
 * file changed since (a user added while the agent runs). An id the file
 * does not have is asked of NSS (`getent passwd <uid>`, as `id` would: LDAP
 * and SSSD users), once per id per `nssTtlMs`, answer or none; an NSS that
 * does not answer within a second gives none (the `uid` still says who).
 */
export function createUserNames(options: UserNamesOptions = {}): UserNames {
  const file = options.file ?? '/etc/passwd';
  const getent = options.getent === undefined ? '/usr/bin/getent' : options.getent;
  const nssTtlMs = options.nssTtlMs ?? 600_000;
  let names = new Map<number, string>();
  const nss = new Map<number, { name: string | null; until: number }>();
  let mtimeMs = -1;
  const load = (): void => {
    try {
      const stat = statSync(file);
      if (stat.mtimeMs === mtimeMs) return;
      mtimeMs = stat.mtimeMs;
      names = parsePasswd(readFileSync(file, 'utf8'));
    } catch {
      // No passwd file: ids without names, or NSS's.
    }
  };
  const fromNss = (uid: number): string | null => {
    if (getent === null) return null;
    const known = nss.get(uid);
    if (known && known.until > Date.now()) return known.name;
    const asked = spawnSync(getent, ['passwd', String(uid)], { encoding: 'utf8', timeout: 1_000 });
    const name = asked.status === 0 ? (parsePasswd(asked.stdout ?? '').get(uid) ?? null) : null;
    nss.set(uid, { name, until: Date.now() + nssTtlMs });
    return name;
  };
  load();
  return {
    name(uid) {
      if (uid === null || uid === undefined) return null;
      if (!names.has(uid)) load();
      return names.get(uid) ?? fromNss(uid);
    },
  };
}

/** uid → name of passwd(5) lines (the first of an id). */
function parsePasswd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const [user, , id] = line.split(':');
    const uid = Number(id);
    if (user && id !== undefined && id !== '' && Number.isInteger(uid) && !out.has(uid)) out.set(uid, user);
  }
  return out;
}
