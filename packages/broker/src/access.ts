/**
 * aedes's authentication and authorization hooks: who a client is (at
 * CONNECT), what it may publish, subscribe to and receive, with a warning
 * for every refusal naming the identity and topic (never a password or payload).
 */
import type { Aedes, AedesOptions, AuthenticateError, Client, PublishPacket } from 'aedes';
import { parseTopic } from '@fso/common';
import type { Logger, Topics } from '@fso/common';
import { permissionsOf } from './acl.js';
import type { Identity, Permissions } from './acl.js';
import type { Authenticator } from './authenticator.js';
import { clientFields } from './brokerLog.js';
import { AuthenticationError } from './errors.js';

/** How often connected clients are checked for an expired token. */
const EXPIRY_SWEEP_MS = 5_000;

type Hooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>>;

/** The hooks plus what the broker needs around them. */
export interface AccessControl {
  /** Pass to `Aedes.createBroker`. */
  readonly hooks: Hooks;
  /** Starts tracking connected clients (client-id ownership, token expiry). */
  attach(aedes: Aedes): void;
  /** The identity of a logged-in client (undefined on an open broker). */
  identityOf(client: Client): Identity | undefined;
  /**
   * Uses `next` for new logins (a reloaded auth file or key) and disconnects
   * clients whose auth file entry was removed or changed.
   */
  replaceAuthenticator(next: Authenticator): void;
  /** Stops the expiry sweep. */
  close(): void;
}

interface Login {
  identity: Identity;
  permissions: Permissions;
}

/** Client ids are owned: one principal per id, and agents own theirs. */
const principalOf = (identity: Identity): string =>
  identity.role === 'agent' ? `agent:${identity.agentId ?? ''}` : `${identity.role}:${identity.username}`;

/**
 * Builds the hooks. Without an authenticator the broker is open (every
 * client may do anything except publish to `$` topics, which are the
 * broker's own: moscajs/aedes#597).
 */
export function createAccessControl(topics: Topics, log: Logger, initial: Authenticator | undefined): AccessControl {
  let authenticator = initial;
  const wills = new WeakMap<Client, PublishPacket | null>();
  const logins = new WeakMap<Client, Login>();
  /** Connected clients by id, to refuse taking over another principal's id. */
  const holders = new Map<string, Client>();
  /** Agent ids seen (auth file or token logins): other roles may not use them as client ids. */
  const agentIds = new Set<string>();
  let sweep: NodeJS.Timeout | undefined;
  for (const id of initial?.agentIds ?? []) agentIds.add(id);

  const fields = (client: Client | null): Record<string, unknown> => clientFields(client, client ? logins.get(client)?.identity : undefined);

  /** Refusals that depend on more than the credentials; throws {@link AuthenticationError}. */
  const checkLogin = (client: Client, identity: Identity, permissions: Permissions): void => {
    if (identity.role === 'agent' && client.id !== identity.agentId) {
      throw new AuthenticationError(2, client.id, `an agent's client id must be its agent id ${identity.agentId ?? ''}`);
    }
    if (identity.role !== 'agent' && agentIds.has(client.id)) {
      throw new AuthenticationError(2, client.id, 'that client id belongs to an agent');
    }
    const holder = holders.get(client.id);
    const holderLogin = holder ? logins.get(holder) : undefined;
    if (holderLogin && principalOf(holderLogin.identity) !== principalOf(identity)) {
      throw new AuthenticationError(2, client.id, 'that client id is in use by another login');
    }
    const will = wills.get(client);
    if (will && !permissions.mayPublish(will.topic)) {
      throw new AuthenticationError(5, client.id, `not allowed to leave a last will on ${will.topic}`);
    }
  };

  const refusePublish = (client: Client | null, topic: string, callback: (error?: Error | null) => void, why: string): void => {
    log.warn({ ...fields(client), topic }, `publish refused: ${why}`);
    // aedes closes the connection (MQTT-3.3.5-2 allows that or a positive ack); nothing is delivered.
    callback(new Error(`not authorized to publish to ${topic}`));
  };

  const hooks: Hooks = {
    preConnect: (client, packet, callback) => {
      wills.set(client, packet.will ? (packet.will as PublishPacket) : null);
      callback(null, true);
    },

    authenticate: (client, username, password, callback) => {
      const current = authenticator;
      if (!current) {
        callback(null, true);
        return;
      }
      void (async () => {
        let login: Login;
        try {
          const identity = await current.authenticate(username, password, client.id);
          login = { identity, permissions: permissionsOf(identity, topics) };
          checkLogin(client, login.identity, login.permissions);
        } catch (err) {
          const refusal = err instanceof AuthenticationError ? err : new AuthenticationError(5, client.id, 'login check failed', { cause: err });
          log.warn({ ...fields(client), username: username ?? null, reason: refusal.message }, 'login refused');
          callback(Object.assign(new Error(refusal.message), { returnCode: refusal.returnCode }) as AuthenticateError, false);
          return;
        }
        logins.set(client, login);
        if (login.identity.agentId !== undefined) agentIds.add(login.identity.agentId);
        log.info({ ...fields(client), via: login.identity.via }, 'login accepted');
        callback(null, true);
      })();
    },

    authorizePublish: (client, packet, callback) => {
      const { topic } = packet;
      // '$' topics are the broker's ($SYS/…): no client may write there, open broker or not.
      if (topic.startsWith('$')) return refusePublish(client, topic, callback, '$ topics are reserved for the broker');
      if (!authenticator) return callback(null);
      if (client === null) {
        // A last will of a client of an earlier run, published at start: only an agent's own status.
        const parsed = parseTopic(topic, topics.prefix);
        const owner = (packet as { clientId?: string }).clientId;
        if (parsed?.kind === 'status' && parsed.agentId === owner) return callback(null);
        return refusePublish(client, topic, callback, 'a stored last will outside its agent status topic');
      }
      const login = logins.get(client);
      if (!login?.permissions.mayPublish(topic)) return refusePublish(client, topic, callback, `not allowed for role ${login?.identity.role ?? 'none'}`);
      callback(null);
    },

    authorizeSubscribe: (client, subscription, callback) => {
      if (!authenticator) return callback(null, subscription);
      const login = logins.get(client);
      if (login?.permissions.maySubscribe(subscription.topic)) return callback(null, subscription);
      log.warn({ ...fields(client), topic: subscription.topic }, `subscription refused: not allowed for role ${login?.identity.role ?? 'none'}`);
      // A null subscription (not an error) makes aedes answer 0x80 in the SUBACK and keep the client (MQTT-3.9.3).
      callback(null, null);
    },

    authorizeForward: (client, packet) => {
      if (!authenticator) return packet;
      // Checked again at delivery: queued messages of an inherited session and retained messages too.
      return logins.get(client)?.permissions.mayReceive(packet.topic) ? packet : null;
    },
  };

  const disconnect = (client: Client, why: string): void => {
    log.info(fields(client), `disconnecting: ${why}`);
    client.close();
  };

  return {
    hooks,
    identityOf: (client) => logins.get(client)?.identity,
    attach: (aedes) => {
      aedes.on('client', (client) => holders.set(client.id, client));
      aedes.on('clientDisconnect', (client) => {
        if (holders.get(client.id) === client) holders.delete(client.id);
      });
      if (!authenticator) return;
      sweep = setInterval(() => {
        const now = Date.now();
        for (const client of holders.values()) {
          const expiresAt = logins.get(client)?.identity.expiresAt;
          if (expiresAt !== undefined && expiresAt <= now) disconnect(client, 'its token expired');
        }
      }, EXPIRY_SWEEP_MS);
      sweep.unref();
    },
    replaceAuthenticator: (next) => {
      const previous = authenticator;
      authenticator = next;
      for (const id of next.agentIds) agentIds.add(id);
      for (const client of holders.values()) {
        const identity = logins.get(client)?.identity;
        if (identity?.via !== 'password') continue;
        const before = previous?.user(identity.username);
        const after = next.user(identity.username);
        if (!after || JSON.stringify(after) !== JSON.stringify(before)) disconnect(client, 'its auth file entry was removed or changed');
      }
    },
    close: () => clearInterval(sweep),
  };
}
