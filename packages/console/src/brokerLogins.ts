import { randomBytes } from 'node:crypto';
import { connectMqtt, endMqtt, subscribeCodes } from '@fso/common';
import type { Topics } from '@fso/common';
import type { MqttClient } from 'mqtt';

/**
 * What a login may see, as the broker's ACL answers it: the console asks
 * the broker, it has no access rules of its own (issue 13 §1).
 */
export interface Access {
  /** May subscribe to every agent's events: may search the audit trail and follow the live stream. */
  trail: boolean;
  /** May subscribe to every agent's status: the fleet view. */
  fleet: boolean;
  /** May subscribe to the config topics: the configs in force, and (for a controller) pushes. */
  configs: boolean;
}

/** The broker's answer to a login. */
export type LoginVerdict = { ok: true; access: Access } | { ok: false; reason: string };

/** How the console reaches the broker to check logins. */
export interface BrokerLoginOptions {
  brokerUrl: string;
  topics: Topics;
  /** PEM file of the CA of an mqtts:// broker. */
  caFile?: string;
  /** Bound on the connect and the SUBSCRIBE; default 5 s. */
  timeoutMs?: number;
}

/** Checks logins against the broker, and tells whether the broker checks logins at all. */
export interface BrokerLogins {
  /** Logs in as `username` with `password` (or a JWT as the password) and asks the broker what it may read. */
  check(username: string, password: string): Promise<LoginVerdict>;
  /**
   * Whether the broker lets a client in without credentials (`open`: then so
   * does the console), refuses it (`closed`), or cannot be reached.
   */
  probe(): Promise<'open' | 'closed' | 'unreachable'>;
}

const CONNACK_REASONS: Record<number, string> = {
  1: 'the broker refused the protocol version',
  2: 'the broker refused the client id',
  3: 'the broker is unavailable',
  4: 'bad username or password',
  5: 'not authorized',
};

const UNREACHABLE = 'the broker could not be reached';

function reasonOf(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const code = cause !== null && typeof cause === 'object' && 'code' in cause ? (cause as { code: unknown }).code : undefined;
  if (typeof code === 'number' && CONNACK_REASONS[code] !== undefined) return CONNACK_REASONS[code];
  return UNREACHABLE;
}

/**
 * A login is a successful MQTT connect as that user, and its access is what
 * the broker grants that connection: one SUBSCRIBE to the events, status and
 * config filters, and the SUBACK's codes (0x80 is a refusal, MQTT-3.9.3). The
 * connection is clean and short-lived: nothing is left on the broker.
 *
 * @example
 * const logins = createBrokerLogins({ brokerUrl: 'mqtt://127.0.0.1:1883', topics: createTopics() });
 * const verdict = await logins.check('dash', password);
 */
export function createBrokerLogins(options: BrokerLoginOptions): BrokerLogins {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const { topics } = options;
  const filters = [topics.allEvents(), topics.allStatus(), topics.allConfigs()];

  const attempt = async (username: string | undefined, password: string | undefined): Promise<LoginVerdict> => {
    let client: MqttClient;
    try {
      client = await connectMqtt({
        url: options.brokerUrl,
        clientId: `fso-console-login-${randomBytes(6).toString('hex')}`,
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        clean: true,
        connectTimeoutMs: timeoutMs,
        reconnectPeriodMs: 0,
        ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
      });
    } catch (err) {
      return { ok: false, reason: reasonOf(err) };
    }
    try {
      const codes = await Promise.race([
        subscribeCodes(client, filters, 0),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no SUBACK')), timeoutMs).unref()),
      ]);
      const granted = (i: number): boolean => codes[i] !== undefined && codes[i] !== 0x80;
      return { ok: true, access: { trail: granted(0), fleet: granted(1), configs: granted(2) } };
    } catch {
      return { ok: false, reason: 'the broker did not answer the access check' };
    } finally {
      await endMqtt(client, true);
    }
  };

  return {
    check: (username, password) => attempt(username === '' ? undefined : username, password === '' ? undefined : password),
    probe: async () => {
      const verdict = await attempt(undefined, undefined);
      if (verdict.ok) return 'open';
      return verdict.reason === UNREACHABLE ? 'unreachable' : 'closed';
    },
  };
}
