import { describe, expect, it } from 'vitest';
import { watchSpecSchema } from '@fso/common';
import { createWatchFilter } from './filters.js';

const spec = (extra: Record<string, unknown>) => watchSpecSchema.parse({ path: '/srv/app', ...extra });

describe('createWatchFilter', () => {
  it('excludes globs and prunes excluded directories', () => {
    const f = createWatchFilter(spec({ exclude: ['**/*.swp', '**/node_modules/**'] }));
    expect(f.ignores('/srv/app/a.swp', false)).toBe(true);
    expect(f.ignores('/srv/app/x/node_modules', true)).toBe(true);
    expect(f.ignores('/srv/app/x/node_modules/y.js', false)).toBe(true);
    expect(f.ignores('/srv/app/x/main.js', false)).toBe(false);
    expect(f.ignores('/srv/app', true)).toBe(false);
    expect(f.ignores('/srv/other/a', false)).toBe(true);
  });

  it('applies include to files only, and reports editor temp names by default', () => {
    const f = createWatchFilter(spec({ include: ['**/*.conf'] }));
    expect(f.ignores('/srv/app/sub', true)).toBe(false);
    expect(f.ignores('/srv/app/sub/a.conf', false)).toBe(false);
    expect(f.ignores('/srv/app/sub/a.txt', false)).toBe(true);
    expect(f.reportsDirectory('/srv/app/sub')).toBe(false);
    const all = createWatchFilter(spec({}));
    expect(all.ignores('/srv/app/.a.conf.swp', false)).toBe(false);
    expect(all.ignores('/srv/app/a.conf~', false)).toBe(false);
  });

  it('marks important files and filters event types', () => {
    const f = createWatchFilter(spec({ important: ['**/*.conf'], events: ['create', 'delete'] }));
    expect(f.isImportant('/srv/app/etc/x.conf')).toBe(true);
    expect(f.isImportant('/srv/app/etc/x.txt')).toBe(false);
    expect(f.reportsEventType('create')).toBe(true);
    expect(f.reportsEventType('modify')).toBe(false);
  });
});
