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
import { clientFields, createLogThrottle, loggableUsername, remoteAddressOf } from './brokerLog.js';
import { ownerOf } from './clientIds.js';
import type { ClientIdBinding, ClientIdRegistry } from './clientIds.js';
import { AuthenticationError, CheckQueueFullError } from './errors.js';
import type { BrokerLimits } from './limits.js';
import type { LoginGuard } from './loginGuard.js';
import { createSubscriptionCap } from './subscriptionCap.js';

/** Why a QoS 0 publish under the prefix is refused. */
const QOS0_REFUSAL = 'QoS 0 under the FSO prefix: publish with QoS 1 (a QoS 0 message can make the broker drop queued QoS 1 deliveries, moscajs/aedes#994)';
/** How often connected clients are checked for an expired token. */
const EXPIRY_SWEEP_MS = 5_000;
/** How often a repeated refusal (server busy, back-off, subscription cap) is logged, with a count. */
const REFUSAL_REPORT_MS = 10_000;

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

/** What {@link createAccessControl} works with. */
export interface AccessControlOptions {
  topics: Topics;
  log: Logger;
  /** Undefined for an open broker. */
  authenticator: Authenticator | undefined;
  /** Who owns which client id (persistent sessions, agent ids). */
  clientIds: ClientIdRegistry;
  /** Bounds on logins being checked and back-off after failures. */
  loginGuard: LoginGuard;
  limits: Pick<BrokerLimits, 'maxSubscriptions' | 'maxClientIdsPerLogin'>;
}

/** Bindings of auth-file users that are gone from `authenticator`'s file or changed role or agent id. */
const isStale = (authenticator: Authenticator) => (binding: ClientIdBinding): boolean => {
  if (binding.via !== 'password' || !authenticator.hasAuthFile) return false;
  const user = authenticator.user(binding.username);
  return !user || ownerOf(user) !== binding.owner;
};

/**
 * Builds the hooks. Without an authenticator the broker is open (every
 * client may do anything except publish to `$` topics, which are the
 * broker's own: moscajs/aedes#597).
 */
export function createAccessControl(options: AccessControlOptions): AccessControl {
  const { topics, log, clientIds, loginGuard, limits } = options;
  let authenticator = options.authenticator;
  const wills = new WeakMap<Client, PublishPacket | null>();
  const logins = new WeakMap<Client, Login>();
  /** Clients that asked for a persistent session under a zero-byte client id (refused, MQTT-3.1.3-8). */
  const anonymousSessions = new WeakSet<Client>();
  /** Connected clients by id, to refuse taking over another owner's id. */
  const holders = new Map<string, Client>();
  /** The auth file's agent ids: reserved for their agents before they ever log in. */
  const agentIds = new Set<string>();
  const subscriptionCap = createSubscriptionCap(limits.maxSubscriptions);
  const refusalDue = createLogThrottle(REFUSAL_REPORT_MS);
  let sweep: NodeJS.Timeout | undefined;

  const fields = (client: Client | null): Record<string, unknown> => clientFields(client, client ? logins.get(client)?.identity : undefined);

  const dropStaleBindings = (next: Authenticator): void => {
    for (const id of next.agentIds) agentIds.add(id);
    for (const binding of clientIds.drop(isStale(next))) {
      log.info({ clientId: binding.clientId, owner: binding.owner }, 'client id released: its owner left the auth file or changed role');
    }
  };
  if (authenticator) dropStaleBindings(authenticator);

  /** A client id used with a persistent session, and an agent's, is bound to its first login. */
  const bindsClientId = (client: Client, identity: Identity): boolean => identity.role === 'agent' || client.clean === false;

  /** Refusals that depend on more than the credentials; throws {@link AuthenticationError}. */
  const checkLogin = (client: Client, identity: Identity, permissions: Permissions): void => {
    if (identity.role === 'agent' && client.id !== identity.agentId) {
      throw new AuthenticationError(2, client.id, `an agent's client id must be its agent id ${identity.agentId ?? ''}`);
    }
    if (identity.role !== 'agent' && agentIds.has(client.id)) {
      throw new AuthenticationError(2, client.id, 'that client id belongs to an agent');
    }
    const owner = ownerOf(identity);
    const binding = clientIds.get(client.id);
    if (binding && binding.owner !== owner) {
      throw new AuthenticationError(2, client.id, `that client id belongs to another login (${binding.owner})`);
    }
    const holder = holders.get(client.id);
    const holderLogin = holder ? logins.get(holder) : undefined;
    if (holderLogin && ownerOf(holderLogin.identity) !== owner) {
      throw new AuthenticationError(2, client.id, 'that client id is in use by another login');
    }
    if (!binding && bindsClientId(client, identity) && clientIds.countOwnedBy(owner) >= limits.maxClientIdsPerLogin) {
      throw new AuthenticationError(2, client.id, `this login already owns ${limits.maxClientIdsPerLogin} client ids: reuse one, or release some (fso-broker session release)`);
    }
    const will = wills.get(client);
    if (will && !permissions.mayPublish(will.topic)) {
      throw new AuthenticationError(5, client.id, `not allowed to leave a last will on ${will.topic}`);
    }
  };

  /**
   * The identity behind the credentials, once the login guard admits the
   * attempt; bad or missing credentials count towards its back-off.
   */
  const guardedAuthenticate = async (current: Authenticator, client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> => {
    const finish = loginGuard.admit(remoteAddressOf(client), username, client.id);
    try {
      const identity = await current.authenticate(username, password, client.id);
      finish('accepted');
      return identity;
    } catch (err) {
      finish(err instanceof AuthenticationError && err.returnCode >= 4 ? 'failed' : 'other');
      throw err;
    }
  };

  /** Logs a refused login; a busy or backing-off refusal (3) at most once per interval and address, with a count. */
  const logRefusal = (client: Client, username: string | undefined, refusal: AuthenticationError): void => {
    let repeated: number | undefined = 0;
    if (refusal.returnCode === 3) {
      const scope = refusal.cause instanceof CheckQueueFullError ? 'server' : (remoteAddressOf(client) ?? 'unknown');
      repeated = refusalDue(`${scope} ${refusal.message.replace(/\d+/g, '#')}`);
      if (repeated === undefined) return;
    }
    log.warn(
      { ...fields(client), username: loggableUsername(username), reason: refusal.message, ...(repeated > 0 ? { alsoRefusedSinceLastLine: repeated } : {}) },
      'login refused',
    );
  };

  /**
   * A client's QoS 0 publish under the prefix. aedes delivers a QoS 0 message at
   * once, ahead of QoS 1 messages still being stored, and then drops those as
   * duplicates (moscajs/aedes#994): one QoS 0 message could cost the recorder a
   * queued event. Every FSO client publishes at QoS 1.
   */
  const qos0UnderPrefix = (client: Client | null, packet: PublishPacket): boolean =>
    client !== null && packet.qos === 0 && (packet.topic === topics.prefix || packet.topic.startsWith(`${topics.prefix}/`));

  const refusePublish = (client: Client | null, topic: string, callback: (error?: Error | null) => void, why: string): void => {
    log.warn({ ...fields(client), topic }, `publish refused: ${why}`);
    // aedes closes the connection (MQTT-3.3.5-2 allows that or a positive ack); nothing is delivered.
    callback(new Error(`not authorized to publish to ${topic}`));
  };

  const hooks: Hooks = {
    preConnect: (client, packet, callback) => {
      wills.set(client, packet.will ? (packet.will as PublishPacket) : null);
      // aedes gives a zero-byte client id a generated one whatever CleanSession says; remember which to refuse.
      if (packet.clientId === '' && !packet.clean) anonymousSessions.add(client);
      callback(null, true);
    },

    authenticate: (client, username, password, callback) => {
      if (anonymousSessions.has(client)) {
        // MQTT-3.1.3-8: a zero-byte client id with CleanSession=0 gets CONNACK 0x02 and the connection closed.
        const refusal = new AuthenticationError(2, client.id, 'a zero-byte client id needs CleanSession=1 (MQTT-3.1.3-8)');
        logRefusal(client, username, refusal);
        callback(Object.assign(new Error(refusal.message), { returnCode: refusal.returnCode }) as AuthenticateError, false);
        return;
      }
      const current = authenticator;
      if (!current) {
        callback(null, true);
        return;
      }
      void (async () => {
        let login: Login;
        try {
          const identity = await guardedAuthenticate(current, client, username, password);
          login = { identity, permissions: permissionsOf(identity, topics) };
          checkLogin(client, login.identity, login.permissions);
        } catch (err) {
          const refusal = err instanceof AuthenticationError ? err : new AuthenticationError(5, client.id, 'login check failed', { cause: err });
          logRefusal(client, username, refusal);
          callback(Object.assign(new Error(refusal.message), { returnCode: refusal.returnCode }) as AuthenticateError, false);
          return;
        }
        logins.set(client, login);
        if (bindsClientId(client, login.identity)) clientIds.bind(client.id, login.identity);
        log.info({ ...fields(client), via: login.identity.via }, 'login accepted');
        callback(null, true);
      })();
    },

    authorizePublish: (client, packet, callback) => {
      const { topic } = packet;
      // '$' topics are the broker's ($SYS/…): no client may write there, open broker or not.
      if (topic.startsWith('$')) return refusePublish(client, topic, callback, '$ topics are reserved for the broker');
      if (!authenticator) return qos0UnderPrefix(client, packet) ? refusePublish(client, topic, callback, QOS0_REFUSAL) : callback(null);
      if (client === null) {
        // A last will of a client of an earlier run, published at start: only an agent's own status.
        const parsed = parseTopic(topic, topics.prefix);
        const owner = (packet as { clientId?: string }).clientId;
        if (parsed?.kind === 'status' && parsed.agentId === owner) return callback(null);
        return refusePublish(client, topic, callback, 'a stored last will outside its agent status topic');
      }
      const login = logins.get(client);
      if (!login?.permissions.mayPublish(topic)) return refusePublish(client, topic, callback, `not allowed for role ${login?.identity.role ?? 'none'}`);
      if (qos0UnderPrefix(client, packet)) return refusePublish(client, topic, callback, QOS0_REFUSAL);
      callback(null);
    },

    authorizeSubscribe: (client, subscription, callback) => {
      const login = logins.get(client);
      // A null subscription (not an error) makes aedes answer 0x80 in the SUBACK and keep the client (MQTT-3.9.3).
      if (authenticator && !login?.permissions.maySubscribe(subscription.topic)) {
        log.warn({ ...fields(client), topic: subscription.topic }, `subscription refused: not allowed for role ${login?.identity.role ?? 'none'}`);
        return callback(null, null);
      }
      if (!subscriptionCap.admit(client, subscription.topic)) {
        const repeated = refusalDue(`subscriptions ${client.id}`);
        if (repeated !== undefined) {
          log.warn(
            { ...fields(client), topic: subscription.topic, maxSubscriptions: limits.maxSubscriptions, ...(repeated > 0 ? { alsoRefusedSinceLastLine: repeated } : {}) },
            `subscription refused: the client holds ${limits.maxSubscriptions} subscriptions already`,
          );
        }
        return callback(null, null);
      }
      callback(null, subscription);
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
      aedes.on('unsubscribe', (filters, client) => subscriptionCap.release(client, filters));
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
      dropStaleBindings(next);
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
