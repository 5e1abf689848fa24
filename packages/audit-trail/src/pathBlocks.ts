import { globMatcher } from './tail.js';

/** The index's distinct directories (with their trailing `/`) and names, as [id, text]. */
export interface PathParts {
  dirs: ReadonlyArray<readonly [number, string]>;
  names: ReadonlyArray<readonly [number, string]>;
}

/**
 * Paths whose directory is one of `dirs` and whose name is one of `names`
 * (undefined: any), or exactly the [dirId, nameId] `pairs`. A search is a
 * list of disjoint blocks; an empty list matches nothing.
 */
export interface PathBlock {
  dirs?: number[];
  names?: number[];
  pairs?: Array<[number, number]>;
}

/** The ids of `items` that pass; undefined when all of them do (any). */
function pick(items: ReadonlyArray<readonly [number, string]>, test: (text: string) => boolean, except?: ReadonlySet<number>): number[] | undefined {
  const ids = items.filter(([id, text]) => !except?.has(id) && test(text)).map(([id]) => id);
  return ids.length === items.length ? undefined : ids;
}

const nonEmpty = (block: PathBlock): boolean => block.dirs?.length !== 0 && block.names?.length !== 0;

/**
 * The paths that contain `text`. A name holds no `/`: a text without one is
 * in the directory or in the name; a text with one is in the directory, or
 * spans both, its last `/` being the directory's last.
 */
export function textBlocks(text: string, parts: PathParts): PathBlock[] {
  const inDir = parts.dirs.filter(([, dir]) => dir.includes(text)).map(([id]) => id);
  const inDirSet = new Set(inDir);
  const cut = text.lastIndexOf('/') + 1;
  const spans: PathBlock =
    cut === 0
      ? { dirs: pick(parts.dirs, () => true, inDirSet), names: pick(parts.names, (name) => name.includes(text)) }
      : { dirs: pick(parts.dirs, (dir) => dir.endsWith(text.slice(0, cut)), inDirSet), names: pick(parts.names, (name) => name.startsWith(text.slice(cut))) };
  return [{ dirs: inDir.length === parts.dirs.length ? undefined : inDir }, spans].filter(nonEmpty);
}

/** Glob characters after which a name pattern is not matched on its own the same way (extglobs, escapes). */
const NOT_SPLITTABLE = /[\\()!+@|]/;

/** The index of the glob's last `/` when it splits it into a directory part and a plain name pattern; -1 otherwise. */
function nameSplit(glob: string): number {
  const last = glob.lastIndexOf('/');
  const name = glob.slice(last + 1);
  if (last === -1 || name === '' || name.includes('**') || NOT_SPLITTABLE.test(glob)) return -1;
  let depth = 0;
  for (const c of glob.slice(0, last)) {
    if (c === '{' || c === '[') depth += 1;
    else if (c === '}' || c === ']') depth = Math.max(0, depth - 1);
  }
  return depth === 0 ? last : -1;
}

/** Names no glob spells: a sample of "any name" under a directory. */
const SAMPLE_NAMES = ['\u0001', '\u0002\u0002'];

/**
 * The paths that match `glob` (picomatch, dot: true) as blocks, for the two
 * shapes that split exactly at a path's last `/`, or undefined for any other
 * (the caller then tests every distinct path). Every decision is the whole
 * glob's, on a directory plus a name: the shapes only tell that a path's
 * match is its directory's times its name's, so thousands of directories and
 * names are tested instead of millions of paths.
 * - `DIRGLOB/NAME` where NAME has no `/` and no `**`: NAME's pattern matches
 *   no `/`, so the glob's last `/` is the path's last;
 * - `**` alone: every path but those with a `.` or `..` segment;
 * - `G/**`: a path under a directory that matches (picomatch's `**` takes
 *   any name but `.` and `..`), or one that matches G itself (when
 *   picomatch lets `/**` match nothing, which it does not after a wildcard).
 */
export function globBlocks(glob: string, parts: PathParts): PathBlock[] | undefined {
  const whole = globMatcher(glob);
  const split = nameSplit(glob);
  if (split !== -1) return product(whole, parts, globMatcher(glob.slice(split + 1)));
  // Every path (picomatch's `**` takes any segment but `.` and `..`): a directory's times a name's too.
  if (glob === '**') return product(whole, parts, () => true);
  if (!glob.endsWith('/**') || glob.length <= 3 || glob.slice(0, -3).endsWith('**')) return undefined;
  const base = glob.slice(0, -3);
  const baseSplit = nameSplit(base);
  if (baseSplit === -1) return undefined;
  const under = parts.dirs.filter(([, dir]) => SAMPLE_NAMES.every((name) => whole(dir + name)));
  const firstUnder = under[0]?.[1];
  const blocks: PathBlock[] = [];
  if (firstUnder !== undefined) blocks.push({ dirs: under.length === parts.dirs.length ? undefined : under.map(([id]) => id), names: pick(parts.names, (name) => whole(firstUnder + name)) });
  const underIds = new Set(under.map(([id]) => id));
  blocks.push(...product(whole, { dirs: parts.dirs.filter(([id]) => !underIds.has(id)), names: parts.names }, globMatcher(base.slice(baseSplit + 1))));
  return blocks.filter(nonEmpty);
}

/**
 * The block of paths `whole` matches among `parts` when a match is a
 * directory's times a name's: names that `namePattern` could match, checked
 * with the whole glob on one directory; directories checked with one name.
 */
function product(whole: (path: string) => boolean, parts: PathParts, namePattern: (name: string) => boolean): PathBlock[] {
  for (const [, sample] of parts.names.filter(([, name]) => namePattern(name))) {
    const dirs = parts.dirs.filter(([, dir]) => whole(dir + sample));
    const first = dirs[0]?.[1];
    if (first === undefined) continue;
    const names = pick(parts.names, (name) => whole(first + name));
    return [{ dirs: dirs.length === parts.dirs.length ? undefined : dirs.map(([id]) => id), names }].filter(nonEmpty);
  }
  return [];
}
