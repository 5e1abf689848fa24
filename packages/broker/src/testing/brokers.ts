// Test support for this package's tests (kept out of the build by tsconfig.json).
import { startBroker } from '../broker.js';
import type { Broker, BrokerOptions } from '../broker.js';

/** Brokers on port 0 that a test closes in `afterEach`. */
export interface TestBrokers {
  start(options?: BrokerOptions): Promise<Broker>;
  closeAll(): Promise<void>;
}

export function createTestBrokers(): TestBrokers {
  const open: Broker[] = [];
  return {
    start: async (options = {}) => {
      const broker = await startBroker({ port: 0, ...options });
      open.push(broker);
      return broker;
    },
    closeAll: async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    },
  };
}
