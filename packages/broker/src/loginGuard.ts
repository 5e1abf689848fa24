/**
 * What stands before a login's credentials are checked: the bounded queue of
 * password checks, a cap on one address's logins in progress while that
 * queue is busy, and a growing back-off for an address that keeps failing
 * with the same username. Each
 * refusal is CONNACK 3 (server unavailable): the client retries, and a
 * legitimate one gets in once the flood or the back-off is over.
 */
import { createHash } from 'node:crypto';
import { createCheckQueue } from './checkQueue.js';
import type { CheckQueue } from './checkQueue.js';
import { AuthenticationError } from './errors.js';

/** The guard's bounds; see {@link LOGIN_GUARD_DEFAULTS}. */
export interface LoginGuardOptions {
  /** Password checks (scrypt) running at once. */
  maxConcurrentChecks: number;
  /** Password checks waiting for a turn; more are refused at once. */
  maxWaitingChecks: number;
  /**
   * Logins from one address in progress at once (any username, tokens too)
   * while password checks wait for a turn; more are refused at once. With no
   * check waiting there is nothing to share, and nothing to refuse: an
   * unknown username costs a timer, so a flood of them from the address a
   * legitimate client shares (127.0.0.1, a NAT) does not keep it out.
   */
  maxPendingPerAddress: number;
  /** Failed logins of one username from one address within `failureWindowMs` that start a back-off. */
  maxFailures: number;
  failureWindowMs: number;
  /** The first back-off; each further one (within `resetAfterMs`) doubles, up to `maxBackoffMs`. */
  firstBackoffMs: number;
  maxBackoffMs: number;
  /** Quiet time after which an address and username start again from `firstBackoffMs`. */
  resetAfterMs: number;
  /** Address and username pairs remembered at most (the least recent are forgotten first). */
  maxTracked: number;
}

/**
 * Two checks at once leave two of libuv's four pool threads to file I/O (the
 * data dir's LevelDB); 32 waiting are answered within ~2 s at the default
 * scrypt cost. Ten failures of one username from one address in 10 s start
 * a back-off of 1 s, then 2, 4… up to 60 s, which ends by itself (a
 * developer's typos or a test's burst of bad tokens cost seconds, not a
 * lock-out), so a guesser gets about ten guesses per back-off.
 */
export const LOGIN_GUARD_DEFAULTS: Readonly<LoginGuardOptions> = {
  maxConcurrentChecks: 2,
  maxWaitingChecks: 32,
  maxPendingPerAddress: 8,
  maxFailures: 10,
  failureWindowMs: 10_000,
  firstBackoffMs: 1_000,
  maxBackoffMs: 60_000,
  resetAfterMs: 10 * 60_000,
  maxTracked: 10_000,
};

/** How an admitted login ended: only `failed` (bad or missing credentials) counts towards a back-off. */
export type LoginOutcome = 'accepted' | 'failed' | 'other';

/** Guards logins. */
export interface LoginGuard {
  /** Where password checks run (shared by every authenticator a reload makes). */
  readonly checks: CheckQueue;
  /**
   * Lets a login from `address` for `username` be checked; call the returned
   * function exactly once with how it ended.
   *
   * @throws {AuthenticationError} 3 when checks are waiting and the address
   *   has too many logins in progress, or this address and username are backing off.
   */
  admit(address: string | undefined, username: string | undefined, clientId: string): (outcome: LoginOutcome) => void;
}

interface Failures {
  /** When the failures of the current window happened. */
  at: number[];
  /** Back-offs so far (the next one is twice as long). */
  strikes: number;
  blockedUntil: number;
  lastFailureAt: number;
}

/** Creates a guard with `options` over {@link LOGIN_GUARD_DEFAULTS}. */
export function createLoginGuard(options: Partial<LoginGuardOptions> = {}): LoginGuard {
  const o = { ...LOGIN_GUARD_DEFAULTS, ...options };
  const checks = createCheckQueue(o.maxConcurrentChecks, o.maxWaitingChecks);
  const pending = new Map<string, number>();
  const failures = new Map<string, Failures>();

  // The username is hashed: a CONNECT may carry 64 KiB of it, and thousands are remembered.
  const keyOf = (address: string, username: string | undefined): string =>
    `${address} ${createHash('sha256').update(username ?? '').digest('base64')}`;

  const fail = (key: string): void => {
    const now = Date.now();
    const entry = failures.get(key) ?? { at: [], strikes: 0, blockedUntil: 0, lastFailureAt: 0 };
    if (now - entry.lastFailureAt > o.resetAfterMs) entry.strikes = 0;
    entry.lastFailureAt = now;
    entry.at = entry.at.filter((t) => now - t < o.failureWindowMs);
    entry.at.push(now);
    if (entry.at.length >= o.maxFailures) {
      entry.strikes += 1;
      entry.blockedUntil = now + Math.min(o.firstBackoffMs * 2 ** (entry.strikes - 1), o.maxBackoffMs);
      entry.at = [];
    }
    // Re-inserted, so the map's order is least recently failed first.
    failures.delete(key);
    failures.set(key, entry);
    if (failures.size > o.maxTracked) failures.delete(failures.keys().next().value as string);
  };

  return {
    checks,
    admit: (address, username, clientId) => {
      const from = address ?? 'unknown';
      const key = keyOf(from, username);
      const waitMs = (failures.get(key)?.blockedUntil ?? 0) - Date.now();
      if (waitMs > 0) {
        throw new AuthenticationError(3, clientId, `too many failed logins for this username from this address: retry in ${Math.ceil(waitMs / 1000)} s`);
      }
      const inProgress = pending.get(from) ?? 0;
      if (checks.waiting > 0 && inProgress >= o.maxPendingPerAddress) {
        throw new AuthenticationError(3, clientId, `too many logins in progress from this address (${o.maxPendingPerAddress})`);
      }
      pending.set(from, inProgress + 1);
      let ended = false;
      return (outcome) => {
        if (ended) return;
        ended = true;
        const left = (pending.get(from) ?? 1) - 1;
        if (left > 0) pending.set(from, left);
        else pending.delete(from);
        if (outcome === 'failed') fail(key);
        else if (outcome === 'accepted') failures.delete(key);
      };
    },
  };
}
