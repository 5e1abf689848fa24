import { FILE_HEADERS_ONLY, applyPatch, diffArrays, formatPatch, structuredPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import { lineDiff } from './lineDiff.js';
import type { DiffArrays, LineDiffInput } from './lineDiff.js';

const arrays: DiffArrays = (a, b, options) => diffArrays(Array.from(a), Array.from(b), options);

const run = (oldText: string, newText: string, more: Partial<LineDiffInput> = {}) =>
  lineDiff({ oldText, newText, oldName: 'a/f', newName: 'b/f', context: 3, maxPatchBytes: 64 << 20, deadline: Date.now() + 30_000, ...more }, arrays);

/** `count` lines of about 100 bytes; line i reads `tag` when i % every === 0 (the bench's files). */
const text = (count: number, tag: string, every: number): string =>
  Array.from({ length: count }, (_, i) => `${i % every === 0 ? tag : 'a'} line ${String(i).padStart(8, '0')} `.padEnd(99, i % 2 ? 'x' : 'y') + '\n').join('');

/** A deterministic pseudo-random generator (mulberry32). */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const counts = (patch: string): { added: number; removed: number } => {
  const body = patch.split('\n').slice(2);
  return { added: body.filter((l) => l.startsWith('+')).length, removed: body.filter((l) => l.startsWith('-')).length };
};

describe('lineDiff', () => {
  it("gives jsdiff's own patch for small edits, line endings and missing final newlines", () => {
    const cases: Array<[string, string]> = [
      ['', ''],
      ['', 'a\nb\n'],
      ['a\nb\n', ''],
      ['a\nb\nc\n', 'a\nB\nc\n'],
      ['a\nb', 'a\nb\n'],
      ['a\nb\n', 'a\nb'],
      ['a\nb', 'a\nc'],
      ['x', 'x'],
      ['a\r\nb\r\n', 'a\r\nc\r\n'],
      ['\n\n\n', '\n\n'],
      [text(40, 'a', 1), text(40, 'a', 1).replace('a line 00000020', 'b line 00000020')],
      [text(40, 'a', 1), text(40, 'a', 1).replace('a line 00000005', 'b').replace('a line 00000030', 'c')],
      [text(40, 'a', 1), text(40, 'a', 1).replace('a line 00000005', 'b').replace('a line 00000011', 'c')],
      [text(40, 'a', 1), text(40, 'a', 1).replace('a line 00000005', 'b').replace('a line 00000012', 'c')],
    ];
    for (const [before, after] of cases) {
      for (const context of [0, 1, 3]) {
        const expected = formatPatch(structuredPatch('a/f', 'b/f', before, after, undefined, undefined, { context })!, FILE_HEADERS_ONLY);
        const result = run(before, after, { context });
        expect(result, JSON.stringify([before.slice(0, 40), after.slice(0, 40), context])).toEqual({ outcome: 'patch', patch: expected, ...counts(expected) });
      }
    }
  });

  it('makes patches that apply, for random edits of texts with repeated lines', () => {
    const next = random(42);
    for (let round = 0; round < 300; round++) {
      const alphabet = 2 + Math.floor(next() * 30);
      const pick = (): string => `l${Math.floor(next() * alphabet)}`;
      const before = Array.from({ length: Math.floor(next() * 400) }, pick);
      const after = before.flatMap((l) => {
        const r = next();
        if (r < 0.1) return [];
        if (r < 0.2) return [pick(), l];
        if (r < 0.3) return [pick()];
        return [l];
      });
      const join = (lines: string[]): string => lines.join('\n') + (next() < 0.5 ? '\n' : '');
      const oldText = join(before);
      const newText = join(after);
      const result = run(oldText, newText, { context: Math.floor(next() * 4) });
      if (result.outcome !== 'patch') throw new Error(`round ${round}: ${result.outcome}`);
      expect(applyPatch(oldText, result.patch), `round ${round}`).toBe(newText);
      expect(counts(result.patch)).toEqual({ added: result.added, removed: result.removed });
    }
  });

  // How fast is the bench's question (`pnpm bench --only diffs`), not a unit test's: these check the outcome.
  it.each([
    { what: 'a 1 MB file rewritten line by line (100% changed): all removed, all added', count: 10_486, every: 1, changed: 10_486 },
    { what: 'a 10 MB file with 1% of its lines changed: the minimal patch', count: 104_858, every: 100, changed: 1049 },
  ])('diffs $what', ({ count, every, changed }) => {
    const before = text(count, 'a', every);
    const after = text(count, 'b', every);
    const result = run(before, after);
    expect(result).toMatchObject({ outcome: 'patch', added: changed, removed: changed });
    if (result.outcome === 'patch') expect(applyPatch(before, result.patch)).toBe(after);
  });

  it('anchors on unique lines when the edit is too long for Myers, and the patch still applies', () => {
    // Moved blocks and scattered edits in 60,000 lines: far beyond the bounded Myers.
    const base = Array.from({ length: 60_000 }, (_, i) => `line ${i}${i % 7 === 0 ? '' : ' {'}`);
    const next = random(7);
    const edited = base.map((l) => (next() < 0.05 ? `${l} changed` : l));
    const moved = [...edited.slice(30_000, 40_000), ...edited.slice(0, 30_000), ...edited.slice(40_000), '}', '}'];
    const before = `${base.join('\n')}\n`;
    const after = `${moved.join('\n')}\n`;
    const result = run(before, after);
    expect(result.outcome).toBe('patch');
    if (result.outcome === 'patch') {
      expect(applyPatch(before, result.patch)).toBe(after);
      // Not a rewrite of everything: the unchanged lines mostly stay context.
      expect(result.removed).toBeLessThan(25_000);
    }
  });

  it('gives the line counts without building a patch over maxPatchBytes', () => {
    const before = text(10_486, 'a', 1);
    const after = text(10_486, 'b', 1);
    expect(run(before, after, { maxPatchBytes: 1 << 20 })).toEqual({ outcome: 'too-large', added: 10_486, removed: 10_486 });
    // Multi-byte text: measured in UTF-8 bytes, not in characters.
    expect(run('', 'é\n'.repeat(400), { maxPatchBytes: 1000 })).toEqual({ outcome: 'too-large', added: 400, removed: 0 });
    expect(run('', 'e\n'.repeat(200), { maxPatchBytes: 1000 })).toMatchObject({ outcome: 'patch', added: 200 });
  });

  it('gives up at the deadline', () => {
    expect(run(text(1000, 'a', 1), text(1000, 'b', 2), { deadline: Date.now() - 1 })).toEqual({ outcome: 'timeout' });
  });
});
