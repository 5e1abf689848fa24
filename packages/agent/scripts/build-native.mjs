#!/usr/bin/env node
// Builds the who-data addon (native/fanotify.c → build/Release/fso_fanotify.node) at `pnpm install`,
// from source and offline: node-gyp against the headers of the Node.js that runs this (the
// Debian nodejs package ships them under /usr/include/node), never a download. The addon is
// optional: where it cannot build (not Linux, no compiler, no headers) this says why and exits 0,
// and the agent runs without it (`who: null`, one log line).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, '..');
const skip = (why) => {
  process.stderr.write(`@fso/agent: who-data addon not built (${why}); the agent runs without it (who: null)\n`);
  process.exit(0);
};
if (process.platform !== 'linux') skip(`fanotify is Linux only, this is ${process.platform}`);
if (process.env.FSO_SKIP_NATIVE === '1') skip('FSO_SKIP_NATIVE=1');
// The headers of this very Node.js: <prefix>/include/node/node_api.h.
const nodedir = path.resolve(path.dirname(process.execPath), '..');
if (!existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) skip(`no Node.js headers under ${nodedir}/include/node`);
let gyp;
try {
  gyp = createRequire(path.join(pkg, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
} catch {
  skip('node-gyp is not installed');
}
const run = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: pkg, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (run.status !== 0) {
  process.stderr.write(run.stdout + run.stderr);
  skip(`node-gyp exited with ${run.status ?? run.signal}`);
}
process.stderr.write('@fso/agent: who-data addon built (build/Release/fso_fanotify.node)\n');
