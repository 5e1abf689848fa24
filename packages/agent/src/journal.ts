import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import { Baseline, baselineFileName } from './baseline.js';
import type { Entry } from './baseline.js';

/**
 * One change to a root's baseline. The journal of these is written in the
 * same fsync'd group as the outbox entries of the events they explain, so
 * after a crash the baseline is exactly as far as the published events:
 * never ahead (a lost event), never behind (a repeated one).
 */
export type BaselineOp = ['set', string, Entry] | ['del', string] | ['mv', string, string];

/** A journal line: the root, then the op. */
export type JournalLine = [string, ...BaselineOp];

/** The journal file in a state dir. */
export const JOURNAL_FILE = 'baseline.journal';

/** Applies one op to a baseline. `mv` of a path that is gone is a no-op, so replays are idempotent. */
export function applyOp(baseline: Baseline, op: BaselineOp): void {
  if (op[0] === 'set') baseline.set(op[1], op[2]);
  else if (op[0] === 'del') baseline.delete(op[1]);
  else baseline.move(op[1], op[2]);
}

/**
 * Folds the journal into the per-root baseline snapshots and removes it.
 * Runs at start, before any watcher; safe to run again after a crash midway
 * (snapshots are written atomically, ops are idempotent).
 */
export async function foldJournal(stateDir: string, log: Logger): Promise<number> {
  const file = path.join(stateDir, JOURNAL_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return 0;
    throw err;
  }
  const byRoot = new Map<string, BaselineOp[]>();
  let count = 0;
  const lines = text.split('\n');
  // The last line may be torn (a crash mid-write): it was never fsync'd with its events.
  if (!text.endsWith('\n')) lines.pop();
  for (const line of lines) {
    if (line === '') continue;
    let parsed: JournalLine;
    try {
      parsed = JSON.parse(line) as JournalLine;
    } catch {
      log.warn({ file }, 'skipping a corrupt baseline journal line');
      continue;
    }
    const [root, ...op] = parsed;
    const ops = byRoot.get(root) ?? [];
    ops.push(op as BaselineOp);
    byRoot.set(root, ops);
    count += 1;
  }
  for (const [root, ops] of byRoot) {
    const snapshot = path.join(stateDir, baselineFileName(root));
    const baseline = (await Baseline.load(snapshot, log)) ?? new Baseline();
    for (const op of ops) applyOp(baseline, op);
    await baseline.save(snapshot);
  }
  await rm(file, { force: true });
  if (count > 0) log.info({ ops: count, roots: byRoot.size }, 'baseline journal folded into the snapshots');
  return count;
}
