// Test support for this package's tests (kept out of the build by tsconfig.json).
import type { FsoAlert } from '@fso/common';

let serial = 0;

/** A valid firing alert of rule `mass-delete` with a unique id; `over` replaces any field. */
export function testAlert(over: Partial<FsoAlert> = {}): FsoAlert {
  serial += 1;
  return {
    schema: 'fso.alert/1', id: `mass-delete:web-01-${serial}:firing`, rule: 'mass-delete', state: 'firing', severity: 'critical',
    key: 'web-01', summary: 'mass delete: 100 matching changes on web-01', agentId: 'web-01', path: '/srv/app', count: 100,
    firstAt: '2026-12-05T10:00:00.000Z', lastAt: '2026-12-05T10:00:01.000Z', samples: [], source: 'test', at: '2026-12-05T10:00:01.100Z',
    ...over,
  };
}

/** The error `promise` rejects with; fails when it resolves (a send or a build that should have been refused). */
export const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => {
      throw new Error('it resolved; it should have been refused');
    },
    (err: unknown) => err,
  );
