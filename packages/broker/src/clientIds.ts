/**
 * Which login owns which client id, beyond a connection's life. A client id
 * used with a persistent session (`clean: false`) names that session: its
 * subscriptions and the QoS 1 messages queued while it is offline. Every
 * agent id names an agent. Either is bound to the first login that used it,
 * so no other login can take it while its owner is offline (and wipe the
 * session with `clean: true`, or keep the owner out). With a data dir the
 * bindings are kept in `DATA_DIR/client-ids.json` (0600, written atomically):
 *
 * ```json
 * { "schema": "fso.client-ids/1",
 *   "bindings": [{ "clientId": "fso-audit-host1", "owner": "recorder:rec", "role": "recorder",
 *                  "username": "rec", "via": "password", "since": "2026-11-22T10:00:00.000Z" }] }
 * ```
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FSO_ROLES, errorCode, isoNow, writeFileAtomic } from '@fso/common';
import type { FsoRole, Logger } from '@fso/common';
import type { Identity } from './acl.js';
import { BrokerStorageError } from './errors.js';

/** The bindings file's name inside the data dir. */
export const CLIENT_IDS_FILE = 'client-ids.json';
/** The `schema` of the bindings file. */
export const CLIENT_IDS_SCHEMA = 'fso.client-ids/1';

/** One client id and the login that owns it. */
export interface ClientIdBinding {
  clientId: string;
  /** The owner, as {@link ownerOf} spells it: `agent:ID` or `ROLE:USERNAME`. */
  owner: string;
  role: FsoRole;
  /** The auth-file username or the token's `sub` of the first login. */
  username: string;
  agentId?: string;
  via: 'password' | 'token';
  /** When it was bound (ISO 8601). */
  since: string;
}

/**
 * Who owns client ids: an agent owns its agent id whichever credentials it
 * logs in with (whoever holds an agent's credentials is that agent); any
 * other login by role and username.
 */
export function ownerOf(identity: Pick<Identity, 'role' | 'username' | 'agentId'>): string {
  return identity.role === 'agent' ? `agent:${identity.agentId ?? ''}` : `${identity.role}:${identity.username}`;
}

/** The bindings of one broker run. */
export interface ClientIdRegistry {
  /** The binding of `clientId`, if any. */
  get(clientId: string): ClientIdBinding | undefined;
  /** Binds `clientId` to `identity` unless it is bound already; kept on disk soon after. */
  bind(clientId: string, identity: Identity): void;
  /** How many client ids `owner` holds. */
  countOwnedBy(owner: string): number;
  /** Removes the bindings `pick` chooses; returns them. */
  drop(pick: (binding: ClientIdBinding) => boolean): ClientIdBinding[];
  /** Waits for the last write. Idempotent: a second call returns the first call's promise. */
  close(): Promise<void>;
}

const isString = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= 65_535;

function parseBinding(value: unknown, index: number): ClientIdBinding | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `bindings[${index}] must be an object`;
  const b = value as Record<string, unknown>;
  if (!isString(b.clientId) || !isString(b.owner) || !isString(b.username) || !isString(b.since)) {
    return `bindings[${index}] needs clientId, owner, username and since`;
  }
  if (!FSO_ROLES.includes(b.role as FsoRole)) return `bindings[${index}].role must be one of ${FSO_ROLES.join(', ')}`;
  if (b.via !== 'password' && b.via !== 'token') return `bindings[${index}].via must be password or token`;
  if (b.agentId !== undefined && !isString(b.agentId)) return `bindings[${index}].agentId must be a string`;
  return b as unknown as ClientIdBinding;
}

/**
 * The bindings kept in `dataDir` (none when the file does not exist).
 *
 * @throws {BrokerStorageError} when the file cannot be read or is not a bindings file.
 */
export async function readClientIds(dataDir: string): Promise<ClientIdBinding[]> {
  const file = path.join(dataDir, CLIENT_IDS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw new BrokerStorageError(dataDir, err);
  }
  // No cause on the reason: BrokerStorageError words its message from the innermost cause.
  const fail = (reason: string): never => {
    throw new BrokerStorageError(dataDir, new Error(`${CLIENT_IDS_FILE}: ${reason}`));
  };
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    return fail(`not JSON: ${(err as Error).message}`);
  }
  const { schema, bindings } = (data ?? {}) as Record<string, unknown>;
  if (schema !== CLIENT_IDS_SCHEMA || !Array.isArray(bindings)) return fail(`must be {"schema": "${CLIENT_IDS_SCHEMA}", "bindings": [...]}`);
  return bindings.map((value, index) => {
    const binding = parseBinding(value, index);
    return typeof binding === 'string' ? fail(binding) : binding;
  });
}

/** Replaces the bindings kept in `dataDir` (atomically, mode 0600). */
export async function writeClientIds(dataDir: string, bindings: readonly ClientIdBinding[]): Promise<void> {
  try {
    await writeFileAtomic(path.join(dataDir, CLIENT_IDS_FILE), `${JSON.stringify({ schema: CLIENT_IDS_SCHEMA, bindings }, null, 2)}\n`);
  } catch (err) {
    throw new BrokerStorageError(dataDir, err);
  }
}

/**
 * The bindings of a broker run: read from `dataDir` and written back there
 * after each change, or in memory only (this run) without a data dir.
 *
 * @throws {BrokerStorageError} when the bindings file cannot be read.
 */
export async function openClientIdRegistry(dataDir: string | undefined, log: Logger): Promise<ClientIdRegistry> {
  const bindings = new Map<string, ClientIdBinding>();
  const owned = new Map<string, number>();
  const count = (owner: string, by: number): void => {
    const n = (owned.get(owner) ?? 0) + by;
    if (n > 0) owned.set(owner, n);
    else owned.delete(owner);
  };
  for (const binding of dataDir === undefined ? [] : await readClientIds(dataDir)) {
    bindings.set(binding.clientId, binding);
    count(binding.owner, 1);
  }

  let writes = Promise.resolve();
  let closed: Promise<void> | undefined;
  let scheduled = false;
  const save = (): void => {
    if (dataDir === undefined || scheduled) return;
    scheduled = true;
    // One write at a time; changes made while one runs go into the next.
    writes = writes.then(async () => {
      scheduled = false;
      try {
        await writeClientIds(dataDir, [...bindings.values()]);
      } catch (err) {
        log.error({ reason: (err as Error).message }, 'cannot save client id bindings: they hold until the broker stops');
      }
    });
  };

  return {
    get: (clientId) => bindings.get(clientId),
    countOwnedBy: (owner) => owned.get(owner) ?? 0,
    bind: (clientId, identity) => {
      if (bindings.has(clientId)) return;
      const binding: ClientIdBinding = {
        clientId,
        owner: ownerOf(identity),
        role: identity.role,
        username: identity.username,
        ...(identity.agentId === undefined ? {} : { agentId: identity.agentId }),
        via: identity.via,
        since: isoNow(),
      };
      bindings.set(clientId, binding);
      count(binding.owner, 1);
      log.info({ clientId, owner: binding.owner }, 'client id bound to its first login');
      save();
    },
    drop: (pick) => {
      const dropped = [...bindings.values()].filter(pick);
      for (const binding of dropped) {
        bindings.delete(binding.clientId);
        count(binding.owner, -1);
      }
      if (dropped.length > 0) save();
      return dropped;
    },
    close: () => (closed ??= writes),
  };
}
