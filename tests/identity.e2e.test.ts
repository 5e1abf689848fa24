import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, lstat, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import type { Recorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { parseAgentConfig } from '@fso/common';
import { createTempDir, readAuditLines, waitFor } from './helpers.js';
import type { AuditLine } from './helpers.js';

const run = promisify(execFile);

/** What a path holds, as the trail says it or as the disk has it. */
interface Held {
  kind: string;
  sha256: string | null;
}

/**
 * The tree the trail describes: its events replayed in order from an empty
 * tree. A rename moves the old path and everything below it (a directory
 * rename is one event).
 */
function replay(events: readonly AuditLine[]): Map<string, Held> {
  const tree = new Map<string, Held>();
  for (const e of events) {
    const p = String(e.path);
    const held = { kind: String(e.kind), sha256: (e.sha256 as string | null) ?? null };
    if (e.type === 'delete') tree.delete(p);
    else if (e.type === 'rename') {
      const from = String(e.oldPath);
      for (const [q, h] of [...tree]) {
        if (q !== from && !q.startsWith(`${from}/`)) continue;
        tree.delete(q);
        tree.set(p + q.slice(from.length), h);
      }
      tree.set(p, held);
    } else tree.set(p, held);
  }
  return tree;
}

/** Every path below `root` with its kind and, for a regular file, its sha256. */
async function onDisk(root: string): Promise<Map<string, Held>> {
  const tree = new Map<string, Held>();
  for (const name of await readdir(root, { recursive: true })) {
    const p = path.join(root, name);
    let stats;
    try {
      stats = await lstat(p);
    } catch {
      continue; // vanished while listed: the next look will not have it either
    }
    if (stats.isDirectory()) tree.set(p, { kind: 'directory', sha256: null });
    else if (stats.isSymbolicLink()) tree.set(p, { kind: 'symlink', sha256: null });
    else tree.set(p, { kind: 'file', sha256: createHash('sha256').update(await readFile(p)).digest('hex') });
  }
  return tree;
}

/** The paths where the two trees differ, as readable lines (empty when they agree). */
function differences(trail: ReadonlyMap<string, Held>, disk: ReadonlyMap<string, Held>, root: string): string[] {
  const out: string[] = [];
  for (const [p, d] of disk) {
    const t = trail.get(p);
    if (!t) out.push(`missing from the trail: ${path.relative(root, p)} (${d.kind})`);
    else if (t.kind !== d.kind || t.sha256 !== d.sha256) out.push(`differs: ${path.relative(root, p)} trail ${t.kind} ${t.sha256} disk ${d.kind} ${d.sha256}`);
  }
  for (const [p, t] of trail) if (!disk.has(p)) out.push(`in the trail, not on disk: ${path.relative(root, p)} (${t.kind})`);
  return out.sort();
}

describe('a name taken over by a new file: decided by identity (agent → broker → recorder → JSONL)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let broker: Broker;
  let recorder: Recorder;
  let agent: Agent;
  let watched: string;
  let auditDir: string;

  const events = async (): Promise<AuditLine[]> => (await readAuditLines(auditDir, 'events')).filter((l) => l.record === 'event');
  const rel = (p: unknown): string => path.relative(watched, String(p));
  /** The events after the first `skip`, as `type path [oldPath]`. */
  const summary = (all: readonly AuditLine[], skip: number): string[] =>
    all.slice(skip).map((e) => [e.type, rel(e.path), ...(e.oldPath ? [`from ${rel(e.oldPath)}`] : [])].join(' '));

  /**
   * Waits until the trail, replayed from the empty tree the agent started on,
   * is the disk: every path, kind and sha256. The time allowed grows with the
   * number of paths; on time-out the message lists what still differs.
   */
  const trailMatchesDisk = async (): Promise<AuditLine[]> => {
    const disk = await onDisk(watched);
    let last: string[] = [];
    try {
      return await waitFor(
        async () => {
          const all = await events();
          last = differences(replay(all), await onDisk(watched), watched);
          return last.length === 0 ? all : undefined;
        },
        'the trail replayed to equal the disk',
        20_000 + 20 * disk.size,
        100,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${last.slice(0, 40).join('\n')}`, { cause: err });
    }
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    watched = path.join(tmp.path, 'watched');
    auditDir = path.join(tmp.path, 'audit');
    await mkdir(watched);
    broker = await startBroker({ port: 0 });
    recorder = await startRecorder({ brokerUrl: broker.url, dir: auditDir, clientId: 'recorder-identity' });
    agent = await startAgent({
      agentId: 'log-01', brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), pairWindowMs: 100,
      initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched }] }, 'test'),
    });
    await agent.ready();
  });
  afterEach(async () => {
    await agent.close();
    await recorder.close();
    await broker.close();
    await tmp.cleanup();
  });

  it("logrotate's create mode reads as renames down the rotation and a create of the new log, not a truncate", async () => {
    await writeFile(path.join(watched, 'app.log.1'), 'rotated once before\n'.repeat(50));
    await writeFile(path.join(watched, 'app.log'), '');
    for (let i = 0; i < 120; i += 1) await appendFile(path.join(watched, 'app.log'), `line ${i} of a log that has lived a while\n`);
    const before = (await trailMatchesDisk()).length;

    // What logrotate does in its default (create) mode, as the shell runs it.
    await run('sh', ['-c', 'mv app.log.1 app.log.2 && mv app.log app.log.1 && : > app.log && echo after >> app.log'], { cwd: watched });

    const after = summary(await trailMatchesDisk(), before);
    expect(after.slice(0, 3)).toEqual(['rename app.log.2 from app.log.1', 'rename app.log.1 from app.log', 'create app.log']);
    // The new log's write may come as a modify of its own; nothing else.
    expect(after.slice(3).every((line) => line === 'modify app.log'), after.join('\n')).toBe(true);
  });

  it("logrotate's copytruncate mode reads as a create of the copy and a modify of the log", async () => {
    await writeFile(path.join(watched, 'app.log'), 'a log line\n'.repeat(200));
    const before = (await trailMatchesDisk()).length;

    await run('sh', ['-c', 'cp app.log app.log.1 && : > app.log'], { cwd: watched });

    const after = summary(await trailMatchesDisk(), before);
    expect(after).toContain('modify app.log');
    expect(after.filter((l) => !l.startsWith('modify app.log'))).toEqual(['create app.log.1']);
  });

  it('mv d d2; mkdir d reads as a rename of the directory and a create of the new one', async () => {
    await mkdir(path.join(watched, 'd', 'sub'), { recursive: true });
    await writeFile(path.join(watched, 'd', 'a.txt'), 'a');
    await writeFile(path.join(watched, 'd', 'sub', 'b.txt'), 'b');
    const before = (await trailMatchesDisk()).length;

    await rename(path.join(watched, 'd'), path.join(watched, 'd2'));
    await mkdir(path.join(watched, 'd'));
    const swapped = summary(await trailMatchesDisk(), before);
    expect(swapped).toEqual(['rename d2 from d', 'create d']);

    // Both are known under their names now: a change below either reads as what it is.
    await writeFile(path.join(watched, 'd2', 'a.txt'), 'a, changed');
    await writeFile(path.join(watched, 'd', 'new.txt'), 'new');
    const next = summary(await trailMatchesDisk(), before + swapped.length);
    expect(next.sort()).toEqual(['create d/new.txt', 'modify d2/a.txt']);
  });

  it('git checkout of another commit in a watched clone: the trail replays to the tree on disk', async () => {
    // A repository outside the watch with two commits far apart: renames, edits, deletes, new directories.
    const repo = path.join(tmp.path, 'repo');
    const git = (cwd: string, ...args: string[]): Promise<unknown> =>
      run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd });
    await mkdir(repo);
    await git(repo, 'init', '-q');
    for (let i = 0; i < 40; i += 1) {
      await mkdir(path.join(repo, `mod${i % 5}`), { recursive: true });
      await writeFile(path.join(repo, `mod${i % 5}`, `f${i}.ts`), `export const v${i} = ${i};\n`.repeat(i + 1));
    }
    await writeFile(path.join(repo, 'README.md'), '# one\n');
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'one');
    await run('sh', ['-c', 'git mv mod0 renamed0 && git mv mod1/f1.ts mod2/f1-moved.ts && git rm -q -r mod3 && mkdir -p new/deep && echo new > new/deep/n.ts && echo two > README.md && for i in 7 12 22; do echo changed >> mod2/f$i.ts; done'], { cwd: repo });
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', 'two');

    await git(watched, 'clone', '-q', '--no-hardlinks', repo, 'clone');
    const clone = path.join(watched, 'clone');
    const before = (await trailMatchesDisk()).length;

    await git(clone, 'checkout', '-q', 'HEAD~1');
    const back = await trailMatchesDisk();
    await git(clone, 'checkout', '-q', 'main');
    const forth = await trailMatchesDisk();
    // Both checkouts changed the work tree, and the trail followed (checked above, path by path).
    expect(back.length).toBeGreaterThan(before);
    expect(forth.length).toBeGreaterThan(back.length);
    expect(summary(forth, back.length)).toContain('create clone/new/deep/n.ts');
  });
});
