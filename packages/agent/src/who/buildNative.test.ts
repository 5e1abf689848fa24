import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('../..', import.meta.url));

/** A copy of what `pnpm install` builds the addon from (its sources, binding.gyp, the script, node-gyp), in a temp dir. */
async function copyOfPackage(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fso-native-'));
  await cp(path.join(pkg, 'native'), path.join(dir, 'native'), { recursive: true });
  await cp(path.join(pkg, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
  await cp(path.join(pkg, 'binding.gyp'), path.join(dir, 'binding.gyp'));
  await writeFile(path.join(dir, 'package.json'), '{"name":"native-copy","private":true}\n');
  await symlink(path.join(pkg, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

describe.runIf(process.platform === 'linux')('the who-data addon builds from source at install (node-gyp, Node.js headers, no download)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await copyOfPackage();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds and loads, offline: node-gyp finds the headers of the Node.js that runs it', () => {
    // No registry, no proxy: a download attempt would fail the build.
    const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9' };
    const run = spawnSync(process.execPath, ['scripts/build-native.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/who-data addon built/);
    const load = spawnSync(process.execPath, ['-e', "const a = require('./build/Release/fso_fanotify.node'); console.log(Object.keys(a).sort().join(','))"], { cwd: dir, encoding: 'utf8' });
    expect(load.stdout.trim()).toBe('close,forget,mark,open,remember,setRoots,sync');
  }, 150_000);

  it('a build that cannot compile says why and exits 0: pnpm install goes on, the agent runs without it', () => {
    const run = spawnSync(process.execPath, ['scripts/build-native.mjs'], { cwd: dir, env: { ...process.env, CC: '/bin/false', CXX: '/bin/false' }, encoding: 'utf8', timeout: 120_000 });
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/who-data addon not built \(node-gyp exited with \d+\); the agent runs without it/);
    expect(existsSync(path.join(dir, 'build', 'Release', 'fso_fanotify.node'))).toBe(false);
  }, 150_000);
});
