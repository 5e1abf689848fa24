import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string): string => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// Tests resolve workspace packages to their sources (the trpc habit), so a
// change is tested without a rebuild; tests that spawn the bins use dist/.
export default defineConfig({
  resolve: {
    alias: {
      '@fso/common': src('common'),
      '@fso/broker': src('broker'),
      '@fso/agent': src('agent'),
      '@fso/controller': src('controller'),
      '@fso/audit-recorder': src('audit-recorder'),
      '@fso/audit-trail': src('audit-trail'),
      '@fso/console': src('console'),
      '@fso/alerts': src('alerts'),
    },
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
