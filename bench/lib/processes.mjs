// Child processes of the benchmark: each in its own process group, every one
// killed (group and all) in a finally or on exit, with the tail of its stderr
// kept for the error message when it dies or never gets ready.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MOSQUITTO = '/usr/sbin/mosquitto';

/**
 * The bin of a workspace package, as built by `pnpm build`. BENCH_PACKAGES_ROOT
 * points at another checkout's root instead (before/after figures of a patch).
 */
export const binOf = (pkg) => path.join(process.env.BENCH_PACKAGES_ROOT ?? REPO, 'packages', pkg, 'dist', 'cli.js');

const live = new Set();
const tempDirs = new Set();

/** Kills every child still running (SIGKILL to its group) and removes every temp dir: the last resort on exit. */
// BENCH_ECHO=regex: the parts' log lines it matches are copied to stderr (for looking into a run).
const ECHO = process.env.BENCH_ECHO ? new RegExp(process.env.BENCH_ECHO) : undefined;

export function killAllNow() {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
  for (const child of live) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}
process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    process.stderr.write(`bench: ${signal}: stopping every child, removing temp dirs\n`);
    killAllNow();
    process.exit(130);
  });
}

/**
 * Spawns `command args` in its own process group. `lines` receives every
 * stderr line (parsed JSON when it is JSON); the last 40 are kept for errors.
 */
export function startProcess(name, command, args, { env = {}, ipc = false, onLine } = {}) {
  const child = spawn(command, args, {
    detached: true,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
  });
  live.add(child);
  const tail = [];
  const waiters = new Set();
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      exited = { code, signal };
      for (const w of waiters) w.reject(new Error(`${name} exited (${signal ?? code}) before ${w.what}\n${tail.join('\n')}`));
      waiters.clear();
      resolve(exited);
    });
  });
  child.on('error', (err) => tail.push(`spawn error: ${err.message}`));
  const onText = (line) => {
    if (ECHO && ECHO.test(line)) process.stderr.write(`${name}: ${line}\n`);
    tail.push(line);
    if (tail.length > 40) tail.shift();
    let json;
    if (line.startsWith('{')) {
      try {
        json = JSON.parse(line);
      } catch {
        json = undefined;
      }
    }
    onLine?.(line, json);
    for (const w of waiters) {
      if (w.match(line, json)) {
        waiters.delete(w);
        w.resolve({ line, json, at: Date.now() });
      }
    }
  };
  createInterface({ input: child.stderr }).on('line', onText);
  createInterface({ input: child.stdout }).on('line', onText);
  return {
    name,
    child,
    pid: child.pid,
    get exited() {
      return exited;
    },
    exitPromise,
    tail: () => tail.join('\n'),
    /** Resolves with the first line (from now on) `match(line, json)` accepts. */
    waitForLine(match, what, timeoutMs = 30_000) {
      if (exited) return Promise.reject(new Error(`${name} has exited (${exited.signal ?? exited.code}) before ${what}\n${tail.join('\n')}`));
      return new Promise((resolve, reject) => {
        const waiter = { match, what, resolve, reject };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${name}: no ${what} within ${timeoutMs} ms\n${tail.join('\n')}`));
        }, timeoutMs);
        waiter.resolve = (v) => (clearTimeout(timer), resolve(v));
        waiter.reject = (e) => (clearTimeout(timer), reject(e));
        waiters.add(waiter);
      });
    },
    /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when it has exited. */
    async stop(graceMs = 10_000) {
      if (exited) return exited;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return exitPromise;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }, graceMs);
      const result = await exitPromise;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Starts `node args` (a bin or a bench helper) the same way. */
export function startNode(name, args, options = {}) {
  return startProcess(name, process.execPath, args, options);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`. */
export async function waitForPort(port, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => (socket.destroy(), resolve(false)));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A temp dir for one run; `cleanup()` removes it (safe to call twice). */
export async function tempDir(prefix) {
  const dir = await mkdtemp(path.join(os.tmpdir(), `fso-bench-${prefix}-`));
  tempDirs.add(dir);
  return {
    path: dir,
    cleanup: async () => {
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      tempDirs.delete(dir);
    },
  };
}

/**
 * Runs `body(track)`; whatever `track(resource)` was given (anything with
 * `stop()` or `cleanup()`) is released in reverse order afterwards, even when
 * the body throws.
 */
export async function withResources(body) {
  const resources = [];
  const track = (resource) => (resources.push(resource), resource);
  try {
    return await body(track);
  } finally {
    for (const r of resources.reverse()) {
      try {
        if (r.stop) await r.stop();
        else if (r.cleanup) await r.cleanup();
      } catch (err) {
        process.stderr.write(`bench: cleanup failed: ${err.message}\n`);
      }
    }
  }
}

/** VmRSS and VmHWM of a live process, in bytes (from /proc). */
export async function procMemory(pid) {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peakRss: kb('VmHWM') };
}

/** CPU seconds (user + system) a live process has used so far, from /proc/PID/stat (clock ticks of 1/100 s). */
export async function procCpuSeconds(pid) {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state: utime and stime are the 12th and 13th of them.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Number of inotify watches a process holds (lines `inotify wd:` of /proc/PID/fdinfo/*). */
export async function inotifyWatches(pid) {
  let count = 0;
  for (const fd of await readdir(`/proc/${pid}/fdinfo`)) {
    const text = await readFile(`/proc/${pid}/fdinfo/${fd}`, 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (line.startsWith('inotify wd:')) count += 1;
  }
  return count;
}
