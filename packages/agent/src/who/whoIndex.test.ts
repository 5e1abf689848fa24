import { describe, expect, it } from 'vitest';
import { FAN, WhoIndex } from './whoIndex.js';
import type { WhoRecord } from './whoIndex.js';

const rec = (mask: number, path: string, at: number, pid: number, oldPath: string | null = null): WhoRecord => ({
  mask, path, oldPath, pid, uid: pid, euid: pid, gid: pid, auid: null, ppid: 1, exe: `/bin/p${pid}`, comm: `p${pid}`, procError: null, at,
});

describe('WhoIndex: which kernel record explains a change', () => {
  it('a create is its creator, not a later writer; a modify is the last writer', () => {
    const index = new WhoIndex();
    index.add(rec(FAN.CREATE, '/w/a', 1000, 10));
    index.add(rec(FAN.MODIFY | FAN.CLOSE_WRITE, '/w/a', 1001, 11));
    expect(index.pick('create', '/w/a', 1002)?.pid).toBe(10);
    expect(index.pick('modify', '/w/a', 1002)?.pid).toBe(11);
    index.add(rec(FAN.MODIFY, '/w/a', 1500, 12));
    expect(index.pick('modify', '/w/a', 1501)?.pid).toBe(12);
  });

  it('a name taken over by a rename (sed -i) is a modify by the renamer; the old name is its delete', () => {
    const index = new WhoIndex();
    index.add(rec(FAN.CREATE, '/w/sedX', 1000, 20));
    index.add(rec(FAN.RENAME, '/w/a.conf', 1001, 20, '/w/sedX'));
    expect(index.pick('modify', '/w/a.conf', 1002)?.pid).toBe(20);
    expect(index.pick('delete', '/w/sedX', 1002)?.pid).toBe(20);
  });

  it('a rename must name the old path when the kernel gave it; the two halves of an old kernel work too', () => {
    const index = new WhoIndex();
    index.add(rec(FAN.RENAME, '/w/b', 1000, 30, '/w/a'));
    expect(index.pick('rename', '/w/b', 1001, '/w/a')?.pid).toBe(30);
    expect(index.pick('rename', '/w/b', 1001, '/w/other')).toBeUndefined();
    index.add(rec(FAN.MOVED_FROM, '/w/c', 2000, 31));
    index.add(rec(FAN.MOVED_TO, '/w/d', 2000, 31));
    expect(index.pick('rename', '/w/d', 2001, '/w/c')?.pid).toBe(31);
    expect(index.pick('delete', '/w/c', 2001)?.pid).toBe(31);
  });

  it('records older than the slack before the change belong to earlier changes; an attribute change only explains what nothing else does', () => {
    const index = new WhoIndex();
    index.add(rec(FAN.MODIFY, '/w/a', 1000, 40));
    expect(index.pick('modify', '/w/a', 10_000)).toBeUndefined();
    index.add(rec(FAN.ATTRIB, '/w/a', 10_000, 41));
    expect(index.pick('modify', '/w/a', 10_001)?.pid).toBe(41);
    index.add(rec(FAN.MODIFY, '/w/a', 9_999, 42));
    expect(index.pick('modify', '/w/a', 10_001)?.pid).toBe(42);
    expect(index.pick('delete', '/w/a', 10_001)).toBeUndefined();
  });

  it('two writers read in one batch: the change seen before the second is the first writer\'s; one seen before either read, the first read after', () => {
    const index = new WhoIndex();
    index.add(rec(FAN.MODIFY, '/w/a', 1000, 50));
    index.add(rec(FAN.MODIFY, '/w/a', 1000.5, 51));
    expect(index.pick('modify', '/w/a', 1000.2)?.pid).toBe(50);
    expect(index.pick('modify', '/w/a', 1001)?.pid).toBe(51);
    expect(index.pick('modify', '/w/a', 999)?.pid).toBe(50);
  });

  it('is bounded: paths untouched for keepMs and past maxPaths are dropped, oldest first', () => {
    const index = new WhoIndex({ keepMs: 1000, maxPaths: 3 });
    for (let i = 0; i < 5; i++) index.add(rec(FAN.CREATE, `/w/${i}`, 100 * i, i));
    index.prune(500);
    expect(index.size).toBe(3);
    expect(index.pick('create', '/w/0', 0)).toBeUndefined();
    expect(index.pick('create', '/w/4', 400)?.pid).toBe(4);
    index.prune(5000);
    expect(index.size).toBe(0);
  });
});
