import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import { Baseline, baselineFileName } from '../watch/baseline.js';
import type { Entry } from '../watch/baseline.js';

/**
 * One change to a root's baseline. The journal of these is written in the
 * same fsync'd group as the outbox entries of the events they explain, so
 * after a crash the baseline is exactly as far as the published events:
 * never ahead (a lost event), never behind (a repeated one).
 */
export type BaselineOp = ['set', string, Entry] | ['del', string] | ['mv', string, string];

/**
 * A journal line: the seq of the event the op belongs to (null for an op
 * with no event, e.g. a silent first-start record), the root, the op.
 * The journal is written just before the outbox; an op whose event never
 * reached the outbox (a crash between the two writes) is dropped at the
 * fold, so the restart scan reports that change again instead of losing it.
 */
export interface JournalLine {
  s: number | null;
  r: string;
  o: BaselineOp;
}

/** The journal line of one op. */
export function journalLine(seq: number | null, root: string, op: BaselineOp): string {
  return JSON.stringify({ s: seq, r: root, o: op } satisfies JournalLine);
}

/** The journal file in a state dir. */
export const JOURNAL_FILE = 'baseline.journal';

/** Applies one op to a baseline. `mv` of a path that is gone is a no-op, so replays are idempotent. */
export function applyOp(baseline: Baseline, op: BaselineOp): void {
  if (op[0] === 'set') baseline.set(op[1], op[2]);
  else if (op[0] === 'del') baseline.delete(op[1]);
  else baseline.move(op[1], op[2]);
}

/**
 * Folds the journal into the per-root baseline snapshots and removes it;
 * ops of events past `durableSeq` (not in the outbox) are left out.
 * Runs at start, before any watcher; safe to run again after a crash midway
 * (snapshots are written atomically, ops are idempotent).
 */
export async function foldJournal(stateDir: string, log: Logger, durableSeq = Number.POSITIVE_INFINITY): Promise<number> {
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
  let dropped = 0;
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
    if (parsed.s !== null && parsed.s > durableSeq) {
      dropped += 1;
      continue;
    }
    const ops = byRoot.get(parsed.r) ?? [];
    ops.push(parsed.o);
    byRoot.set(parsed.r, ops);
    count += 1;
  }
  if (dropped > 0) log.warn({ dropped, durableSeq }, 'dropped baseline ops whose events never reached the outbox; the scan reports those changes again');
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
