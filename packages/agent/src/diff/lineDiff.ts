/**
 * The line diff behind every patch, in time near-linear in the file (issue 5,
 * "Measure it"): jsdiff's Myers alone is O(N·D), so a 1 MB file rewritten
 * from end to end (D = 20,000 lines) or a 10 MB file with 1% of its lines
 * changed ran into `diff.timeoutMs` and gave no patch.
 *
 * 1. Each distinct line becomes an integer, so comparing two lines is one
 *    integer comparison, not a string one.
 * 2. The common prefix and suffix are matched directly.
 * 3. jsdiff's Myers runs on the ids with a bounded edit length: a usual edit
 *    gives jsdiff's minimal diff.
 * 4. Beyond that bound, lines that occur once on each side anchor the diff
 *    (the patience diff of Bram Cohen, `git diff --patience`): the longest
 *    run of them in the same order is matched, and each stretch between two
 *    anchors is diffed again the same way. A stretch that shares no line
 *    with the other side is a block of removed lines and a block of added
 *    ones, found in linear time: a 100%-changed file costs O(N).
 *
 * The result is a valid unified diff that may be longer than the minimal
 * one when a stretch without unique lines exceeds the bound (its lines are
 * then shown removed and added). The size of the patch is known before it
 * is written: a patch over `maxPatchBytes` is never built.
 *
 * `lineDiff` runs in the diff worker thread, whose source is a string (see
 * diffWorker.ts): it must stay self-contained, with no reference to
 * anything outside its body but globals (`Buffer`, `Date`, typed arrays)
 * and its arguments. The worker embeds it with `lineDiff.toString()`.
 */

/** One change object of jsdiff's `diffArrays`, as far as {@link lineDiff} reads it. */
export interface ArrayChange {
  count?: number;
  added: boolean;
  removed: boolean;
}

/** jsdiff's `diffArrays`, passed in (the worker loads jsdiff by URL). */
export type DiffArrays = (
  oldArr: Int32Array,
  newArr: Int32Array,
  options: { maxEditLength: number; timeout: number },
) => ArrayChange[] | undefined;

/** Input of {@link lineDiff}. */
export interface LineDiffInput {
  oldText: string;
  newText: string;
  /** After `--- ` and `+++ ` (e.g. `a/srv/app.conf`). */
  oldName: string;
  newName: string;
  /** Context lines around each change. */
  context: number;
  /** A patch over this many UTF-8 bytes is `too-large` (with its line counts). */
  maxPatchBytes: number;
  /** `Date.now()` value after which the diff gives up (`timeout`). */
  deadline: number;
}

/** What {@link lineDiff} made: a patch, or its line counts when it is too large. */
export type LineDiffOutcome =
  | { outcome: 'patch'; patch: string; added: number; removed: number }
  | { outcome: 'too-large'; added: number; removed: number }
  | { outcome: 'timeout' };

/**
 * The unified diff of two texts, formatted like jsdiff's
 * `formatPatch(structuredPatch(...), FILE_HEADERS_ONLY)`.
 *
 * @example
 * lineDiff({ oldText: 'a\n', newText: 'b\n', oldName: 'a/f', newName: 'b/f', context: 3, maxPatchBytes: 1 << 20, deadline: Date.now() + 1000 }, diffArrays);
 * // { outcome: 'patch', patch: '--- a/f\n+++ b/f\n@@ -1,1 +1,1 @@\n-a\n+b\n', added: 1, removed: 1 }
 */
export function lineDiff(input: LineDiffInput, diffArrays: DiffArrays): LineDiffOutcome {
  // Myers on a stretch of n + m lines may cost up to this / (n + m) edit steps: bounded work per stretch.
  const MYERS_WORK = 4_000_000;
  const NO_NEWLINE = '\\ No newline at end of file';
  const { context, deadline } = input;

  /** Lines without their `\n`; `eol` false when the last one has none. */
  const split = (text: string): { lines: string[]; eol: boolean } => {
    if (text === '') return { lines: [], eol: true };
    const lines = text.split('\n');
    const eol = lines[lines.length - 1] === '';
    if (eol) lines.pop();
    return { lines, eol };
  };
  const oldSide = split(input.oldText);
  const newSide = split(input.newText);
  const oldLines = oldSide.lines;
  const newLines = newSide.lines;
  const nA = oldLines.length;
  const nB = newLines.length;

  // A last line without `\n` differs from the same text with one (as in jsdiff):
  // its key ends with `\n`, which no other key contains.
  const idOf = new Map<string, number>();
  const intern = (lines: string[], eol: boolean): Int32Array => {
    const ids = new Int32Array(lines.length);
    for (let i = 0; i < lines.length; i++) {
      const key = !eol && i === lines.length - 1 ? `${lines[i]}\n` : (lines[i] as string);
      let id = idOf.get(key);
      if (id === undefined) {
        id = idOf.size;
        idOf.set(key, id);
      }
      ids[i] = id;
    }
    return ids;
  };
  const A = intern(oldLines, oldSide.eol);
  const B = intern(newLines, newSide.eol);
  const distinct = Math.max(1, idOf.size);
  idOf.clear();
  if (Date.now() > deadline) return { outcome: 'timeout' };

  /** match[i]: the new line old line i is kept as, or -1 when it is removed. Increasing where set. */
  const match = new Int32Array(nA).fill(-1);
  const countA = new Int32Array(distinct);
  const countB = new Int32Array(distinct);
  const whereB = new Int32Array(distinct);
  let timedOut = false;

  /** Bounded Myers on a stretch; false when it needs more edits than the bound. */
  function myers(a0: number, a1: number, b0: number, b1: number): boolean {
    const size = a1 - a0 + (b1 - b0);
    const maxEditLength = Math.min(size, Math.max(64, Math.floor(MYERS_WORK / size)));
    const timeout = deadline - Date.now();
    if (timeout <= 0) {
      timedOut = true;
      return true;
    }
    const changes = diffArrays(A.subarray(a0, a1), B.subarray(b0, b1), { maxEditLength, timeout });
    if (!changes) {
      if (Date.now() > deadline) timedOut = true;
      return false;
    }
    let i = a0;
    let j = b0;
    for (const change of changes) {
      const count = change.count ?? 0;
      if (change.removed) i += count;
      else if (change.added) j += count;
      else for (let k = 0; k < count; k++) match[i++] = j++;
    }
    return true;
  }

  /**
   * Matches the lines unique on both sides, longest run in order first
   * (patience sorting); pushes the stretches between them. False when the
   * stretch has no such line.
   */
  function anchor(a0: number, a1: number, b0: number, b1: number, stack: number[]): boolean {
    for (let i = a0; i < a1; i++) countA[A[i] as number]!++;
    for (let j = b0; j < b1; j++) {
      const id = B[j] as number;
      countB[id]!++;
      whereB[id] = j;
    }
    const anchorsA: number[] = [];
    for (let i = a0; i < a1; i++) {
      const id = A[i] as number;
      if (countA[id] === 1 && countB[id] === 1) anchorsA.push(i);
    }
    for (let i = a0; i < a1; i++) countA[A[i] as number] = 0;
    for (let j = b0; j < b1; j++) countB[B[j] as number] = 0;
    if (anchorsA.length === 0) return false;
    // Longest increasing subsequence of the anchors' new positions, in O(k log k).
    const tails: number[] = [];
    const previous = new Int32Array(anchorsA.length);
    for (let k = 0; k < anchorsA.length; k++) {
      const pos = whereB[A[anchorsA[k] as number] as number] as number;
      let lo = 0;
      let hi = tails.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((whereB[A[anchorsA[tails[mid] as number] as number] as number] as number) < pos) lo = mid + 1;
        else hi = mid;
      }
      previous[k] = lo > 0 ? (tails[lo - 1] as number) : -1;
      tails[lo] = k;
    }
    const chosen: number[] = [];
    for (let k = tails[tails.length - 1] as number; k >= 0; k = previous[k] as number) chosen.push(k);
    chosen.reverse();
    let fromA = a0;
    let fromB = b0;
    for (const k of chosen) {
      const i = anchorsA[k] as number;
      const j = whereB[A[i] as number] as number;
      match[i] = j;
      stack.push(fromA, i, fromB, j);
      fromA = i + 1;
      fromB = j + 1;
    }
    stack.push(fromA, a1, fromB, b1);
    return true;
  }

  /** True when no line of the old stretch occurs in the new one: nothing to match. */
  function disjoint(a0: number, a1: number, b0: number, b1: number): boolean {
    for (let j = b0; j < b1; j++) countB[B[j] as number] = 1;
    let shared = false;
    for (let i = a0; i < a1 && !shared; i++) shared = countB[A[i] as number] === 1;
    for (let j = b0; j < b1; j++) countB[B[j] as number] = 0;
    return !shared;
  }

  const stack: number[] = [0, nA, 0, nB];
  let first = true;
  while (stack.length > 0) {
    if (timedOut || Date.now() > deadline) return { outcome: 'timeout' };
    let b1 = stack.pop() as number;
    let b0 = stack.pop() as number;
    let a1 = stack.pop() as number;
    let a0 = stack.pop() as number;
    while (a0 < a1 && b0 < b1 && A[a0] === B[b0]) match[a0++] = b0++;
    while (a0 < a1 && b0 < b1 && A[a1 - 1] === B[b1 - 1]) match[--a1] = --b1;
    if (a0 === a1 || b0 === b1 || disjoint(a0, a1, b0, b1)) continue;
    // The whole middle gets a chance at the minimal diff; the stretches between anchors are small or anchored again.
    if (first || a1 - a0 + (b1 - b0) <= 256) {
      if (myers(a0, a1, b0, b1)) continue;
    }
    first = false;
    if (!anchor(a0, a1, b0, b1, stack)) myers(a0, a1, b0, b1);
  }
  if (timedOut) return { outcome: 'timeout' };

  // Change blocks: old [i0, i1) removed, new [j0, j1) added, as flat quadruples.
  const blocks: number[] = [];
  let added = 0;
  let removed = 0;
  for (let i = 0, j = 0; i < nA || j < nB; ) {
    if (i < nA && match[i] === j) {
      i++;
      j++;
      continue;
    }
    const i0 = i;
    const j0 = j;
    while (i < nA && match[i] === -1) i++;
    j = i < nA ? (match[i] as number) : nB;
    blocks.push(i0, i, j0, j);
    removed += i - i0;
    added += j - j0;
  }

  // Hunks: blocks at most 2 × context lines apart share one (jsdiff's rule).
  const hunks: number[] = []; // first block, last block (indexes into blocks / 4)
  for (let k = 0; k < blocks.length / 4; k++) {
    const last = hunks.length - 1;
    if (hunks.length > 0 && (blocks[4 * k] as number) - (blocks[4 * (hunks[last] as number) + 1] as number) <= 2 * context) hunks[last] = k;
    else hunks.push(k, k);
  }

  // Size first, in UTF-16 units (never more than the UTF-8 bytes): a patch too large is never built.
  const header = `--- ${input.oldName}\n+++ ${input.newName}\n`;
  let units = header.length;
  const oldEolMissing = !oldSide.eol;
  const newEolMissing = !newSide.eol;
  const spans: number[] = []; // per hunk: oldStart, oldEnd, newStart, newEnd
  const hunkHeaders: string[] = [];
  for (let h = 0; h < hunks.length; h += 2) {
    const firstBlock = 4 * (hunks[h] as number);
    const lastBlock = 4 * (hunks[h + 1] as number);
    const before = Math.min(context, blocks[firstBlock] as number);
    const after = Math.min(context, nA - (blocks[lastBlock + 1] as number));
    const oldStart = (blocks[firstBlock] as number) - before;
    const newStart = (blocks[firstBlock + 2] as number) - before;
    const oldEnd = (blocks[lastBlock + 1] as number) + after;
    const newEnd = (blocks[lastBlock + 3] as number) + after;
    spans.push(oldStart, oldEnd, newStart, newEnd);
    const oldCount = oldEnd - oldStart;
    const newCount = newEnd - newStart;
    // Unified diff: a range of no lines names the line before it.
    const hunkHeader = `@@ -${oldCount === 0 ? oldStart : oldStart + 1},${oldCount} +${newCount === 0 ? newStart : newStart + 1},${newCount} @@\n`;
    hunkHeaders.push(hunkHeader);
    units += hunkHeader.length;
    for (let i = oldStart; i < oldEnd; i++) units += (oldLines[i] as string).length + 2;
    for (let b = firstBlock; b <= lastBlock; b += 4) {
      for (let j = blocks[b + 2] as number; j < (blocks[b + 3] as number); j++) units += (newLines[j] as string).length + 2;
    }
    if (units > input.maxPatchBytes) return { outcome: 'too-large', added, removed };
  }

  const out: string[] = [header];
  const line = (prefix: string, text: string, eolMissing: boolean): void => {
    out.push(eolMissing ? `${prefix}${text}\n${NO_NEWLINE}\n` : `${prefix}${text}\n`);
  };
  for (let h = 0; h < hunks.length; h += 2) {
    const oldStart = spans[2 * h] as number;
    const oldEnd = spans[2 * h + 1] as number;
    out.push(hunkHeaders[h / 2] as string);
    let i = oldStart;
    for (let b = 4 * (hunks[h] as number); b <= 4 * (hunks[h + 1] as number); b += 4) {
      const [i0, i1, j0, j1] = blocks.slice(b, b + 4) as [number, number, number, number];
      for (; i < i0; i++) line(' ', oldLines[i] as string, oldEolMissing && i === nA - 1);
      for (; i < i1; i++) line('-', oldLines[i] as string, oldEolMissing && i === nA - 1);
      for (let j = j0; j < j1; j++) line('+', newLines[j] as string, newEolMissing && j === nB - 1);
    }
    for (; i < oldEnd; i++) line(' ', oldLines[i] as string, oldEolMissing && i === nA - 1);
  }
  const patch = out.join('');
  if (Buffer.byteLength(patch) > input.maxPatchBytes) return { outcome: 'too-large', added, removed };
  return { outcome: 'patch', patch, added, removed };
}
