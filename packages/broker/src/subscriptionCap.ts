/** A bound on the subscriptions one client holds (every filter costs aedes memory and matching work). */
import type { Client } from 'aedes';

/** Counts each client's subscriptions against a cap. */
export interface SubscriptionCap {
  /**
   * True when `client` may hold `filter`: it holds it already (a resubscribe)
   * or holds fewer than the cap; then `filter` is counted as held.
   */
  admit(client: Client, filter: string): boolean;
  /** Forgets `filters` the client unsubscribed from. */
  release(client: Client, filters: readonly string[]): void;
}

/**
 * A cap of `max` subscriptions per client. Counted at authorization (aedes
 * authorizes a SUBSCRIBE's filters before it adds any, and again when it
 * restores a persistent session's), so one packet cannot slip past it.
 */
export function createSubscriptionCap(max: number): SubscriptionCap {
  const held = new WeakMap<Client, Set<string>>();
  return {
    admit: (client, filter) => {
      let filters = held.get(client);
      if (!filters) {
        filters = new Set();
        held.set(client, filters);
      }
      if (filters.has(filter)) return true;
      if (filters.size >= max) return false;
      filters.add(filter);
      return true;
    },
    release: (client, filters) => {
      const mine = held.get(client);
      for (const filter of filters) mine?.delete(filter);
    },
  };
}
