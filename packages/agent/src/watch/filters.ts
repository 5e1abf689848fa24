import path from 'node:path';
import picomatch from 'picomatch';
import type { EventType, WatchSpec } from '@fso/common';

/** The compiled patterns of one watch spec; paths are absolute, matched relative to the root. */
export interface WatchFilter {
  /** True when the watcher must not look at `absPath` at all (excluded, or a file outside `include`). */
  ignores(absPath: string, isDirectory: boolean | undefined): boolean;
  /** True when a change of this directory is reported (directories are always traversed). */
  reportsDirectory(absPath: string): boolean;
  isImportant(absPath: string): boolean;
  reportsEventType(type: EventType): boolean;
}

const matcherOptions = { dot: true } as const;

/** Compiles a watch spec's include / exclude / important globs (picomatch, dotfiles matched). */
export function createWatchFilter(spec: WatchSpec): WatchFilter {
  const root = path.resolve(spec.path);
  const include = picomatch(spec.include, matcherOptions);
  const exclude = spec.exclude.length > 0 ? picomatch(spec.exclude, matcherOptions) : () => false;
  const important = spec.important.length > 0 ? picomatch(spec.important, matcherOptions) : () => false;
  const events = new Set(spec.events);
  const prefix = root.endsWith(path.sep) ? root : `${root}${path.sep}`;
  // Asked for every directory entry listed and every path a notification names
  // (a burst's worth): a normalized path under the root is sliced, not resolved
  // (anything unusual: `.`, `..`, `//`, a trailing `/`, goes the slow way).
  const unusual = /\/\.\.?(\/|$)|\/\/|\/$/;
  const relative = (absPath: string): string | null => {
    if (path.sep === '/' && absPath.startsWith(prefix) && absPath.length > prefix.length && !unusual.test(absPath)) {
      return absPath.slice(prefix.length);
    }
    const rel = path.relative(root, absPath);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
    return rel.split(path.sep).join('/');
  };
  return {
    ignores(absPath, isDirectory) {
      const rel = relative(absPath);
      if (rel === null) return absPath !== root;
      if (exclude(rel)) return true;
      // `**/node_modules/**` names the contents; prune the directory itself too.
      if (isDirectory !== false && exclude(`${rel}/\u0000`)) return true;
      if (isDirectory === undefined || isDirectory) return false;
      return !include(rel);
    },
    reportsDirectory(absPath) {
      const rel = relative(absPath);
      return rel !== null && include(rel) && !exclude(rel);
    },
    isImportant(absPath) {
      const rel = relative(absPath);
      return rel !== null && important(rel);
    },
    reportsEventType: (type) => events.has(type),
  };
}
