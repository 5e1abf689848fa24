import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAN } from './whoIndex.js';
import type { WhoRecord } from './whoIndex.js';
import type { FanotifyAddon } from './whoSource.js';

const load = (): FanotifyAddon | undefined => {
  try {
    return createRequire(import.meta.url)('../../build/Release/fso_fanotify.node') as FanotifyAddon;
  } catch {
    return undefined;
  }
};
const addon = process.getuid?.() === 0 ? load() : undefined;

/**
 * The addon itself, on real processes (root; .ci/run builds it): what the
 * reader names when the directories are gone, or renamed, before their
 * events are read. The agent around it is in tests/who.e2e.
 */
describe.runIf(addon !== undefined)('the fanotify reader: directories gone or renamed before their events are read', () => {
  let root: string | undefined;
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('a watched tree renamed and removed at once (mv a b && rm -rf b): every delete under its new name, by rm', async () => {
    const fan = addon as FanotifyAddon & Required<Pick<FanotifyAddon, 'remember'>>;
    root = mkdtempSync('/tmp/fso-fanotify-moved-');
    const a = path.join(root, 'a');
    const dirs = Array.from({ length: 40 }, (_, i) => path.join(a, `s${i}`));
    for (const d of dirs) {
      mkdirSync(d, { recursive: true });
      for (let j = 0; j < 5; j++) writeFileSync(path.join(d, `f${j}`), 'x');
    }
    const records: WhoRecord[] = [];
    let drained: ((caughtUp: number) => void) | undefined;
    const handle = fan.open((batch, caughtUp) => {
      records.push(...batch);
      if (caughtUp !== null) drained?.(caughtUp);
    });
    try {
      fan.mark(handle, root);
      fan.setRoots(handle, [root]);
      // As the agent's directory watcher does for every directory it watches.
      for (const d of [a, ...dirs]) fan.remember(handle, d);
      execFileSync('/bin/sh', ['-c', `mv ${a} ${root}/b && rm -rf ${root}/b`]);
      const finished = Date.now();
      // Everything queued by then is read once a batch says the reader caught up past it.
      await new Promise<void>((resolve) => {
        drained = (caughtUp) => (caughtUp >= finished ? resolve() : fan.sync(handle));
        fan.sync(handle);
      });
    } finally {
      fan.close(handle);
    }
    const deletes = records.filter((r) => (r.mask & FAN.DELETE) !== 0);
    expect(deletes).toHaveLength(40 * 5 + 40 + 1);
    const misnamed = deletes.filter((r) => !r.path.startsWith(`${root}/b`) || r.comm !== 'rm').map((r) => `${r.path} ${r.comm}`);
    expect(misnamed, `${misnamed.length} deletes not named under b/ by rm`).toEqual([]);
  });
});
