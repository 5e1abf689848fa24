// Test support (kept out of the build by tsconfig.json).
import { startBroker } from '@fso/broker';

/** A real FSO broker on a free port, for tests. */
export interface TestBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the real embedded broker (@fso/broker, Aedes) on 127.0.0.1, port 0.
 * Tests resolve @fso/broker to its sources (vitest.config.ts); the recorder
 * itself never depends on it.
 */
export async function startTestBroker(): Promise<TestBroker> {
  const broker = await startBroker({ port: 0 });
  return { url: broker.url, port: broker.port, close: () => broker.close() };
}
