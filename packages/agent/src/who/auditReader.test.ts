import { describe, expect, it } from 'vitest';
import { auditFields, auditString, directoryKey, recordsOf } from './auditReader.js';
import { FAN } from './whoIndex.js';

// Lines as auditd 3.0 (log_format ENRICHED) wrote them on this machine for `sed -i s/hi/ho/ /tmp/aud/y`.
const GS = '\x1d';
const SYSCALL = `type=SYSCALL msg=audit(1796524581.990:7): arch=c000003e syscall=82 success=yes exit=0 a0=560cbaabb080 a1=7ffd7782faeb a2=5609da6068cc a3=7f893d176528 items=5 ppid=26018 pid=26022 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm="sed" exe="/usr/bin/sed" key="fso-web-01"${GS}ARCH=x86_64 SYSCALL=rename AUID="unset" UID="root"`;
const PATHS = [
  'item=0 name="/tmp/aud/" inode=2244658 dev=fe:00 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT',
  'item=1 name="/tmp/aud/" inode=2244658 dev=fe:00 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT',
  'item=2 name="/tmp/aud/sedlk9By3" inode=2244676 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=DELETE',
  'item=3 name="/tmp/aud/y" inode=2244675 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=DELETE',
  'item=4 name="/tmp/aud/y" inode=2244676 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE',
].map((p) => auditFields(`type=PATH msg=audit(1796524581.990:7): ${p}${GS}OUID="root" OGID="root"`));

describe('auditd records as who-data records', () => {
  it('reads quoted, bare and enriched fields; an unset auid is null', () => {
    const f = auditFields(SYSCALL);
    expect(f).toMatchObject({ pid: '26022', ppid: '26018', uid: '0', comm: '"sed"', exe: '"/usr/bin/sed"', key: '"fso-web-01"', SYSCALL: 'rename' });
    const [r] = recordsOf({ serial: '7', atMs: 1, fields: f, cwd: '/work', paths: PATHS }, 1);
    expect(r).toMatchObject({ pid: 26022, ppid: 26018, uid: 0, euid: 0, gid: 0, auid: null, exe: '/usr/bin/sed', comm: 'sed', procError: null });
  });

  it('decodes hex only where the kernel did not quote: a file named 4A4B stays 4A4B', () => {
    expect(auditString('"4A4B"')).toBe('4A4B');
    expect(auditString('4A4B')).toBe('JK');
    expect(auditString('"(null)"')).toBe('(null)');
    expect(auditString('(null)')).toBeNull();
  });

  it('a rename over a file (sed -i) is one rename, old name to new, the replaced file not a delete of its own', () => {
    const records = recordsOf({ serial: '7', atMs: 1, fields: auditFields(SYSCALL), cwd: '/work', paths: PATHS }, 1);
    expect(records.map((r) => [r.mask, r.path, r.oldPath])).toEqual([[FAN.RENAME, '/tmp/aud/y', '/tmp/aud/sedlk9By3']]);
  });

  it('a create, a delete, a write and an attribute change; relative names against the cwd; hex-encoded names decoded', () => {
    const base = (syscall: string, paths: string[]) =>
      recordsOf({ serial: '9', atMs: 1, fields: auditFields(`type=SYSCALL msg=audit(1.0:9): syscall=1 pid=7 uid=1000 gid=1000 euid=1000 auid=1000 comm=6D7920746F6F6C exe="/opt/my tool" key="k"${GS}SYSCALL=${syscall}`), cwd: '/srv/app', paths: paths.map((p) => auditFields(p)) }, 1);
    expect(base('openat', ['item=0 name="new.txt" inode=5 nametype=CREATE']).map((r) => [r.mask, r.path, r.comm])).toEqual([[FAN.CREATE, '/srv/app/new.txt', 'my tool']]);
    expect(base('unlinkat', ['item=0 name="/srv/app/old.txt" inode=6 nametype=DELETE'])[0]?.mask).toBe(FAN.DELETE);
    expect(base('openat', ['item=0 name="/srv/app/a.txt" inode=8 nametype=NORMAL'])[0]?.mask).toBe(FAN.MODIFY);
    expect(base('fchmodat', ['item=0 name="/srv/app/a.txt" inode=8 nametype=NORMAL'])[0]?.mask).toBe(FAN.ATTRIB);
    // A name with a space is hex-encoded by the kernel.
    expect(base('openat', [`item=0 name=${Buffer.from('/srv/app/a b.txt').toString('hex').toUpperCase()} inode=9 nametype=CREATE`])[0]?.path).toBe('/srv/app/a b.txt');
  });

  it("rm -rf's unlinkat(dirfd, name): the name is of the PARENT's directory, known by device and inode, not of the cwd", () => {
    // As auditd wrote them here for `cd / && rm -rf /tmp/audt/x` (x holding f2): the parent's name is "/", its inode x's.
    const fields = auditFields(`type=SYSCALL msg=audit(1796531095.714:38614): arch=c000003e syscall=263 success=yes exit=0 a0=4 a1=556fb2e1abf0 a2=0 items=2 ppid=17759 pid=17767 auid=4294967295 uid=0 gid=0 euid=0 comm="rm" exe="/usr/bin/rm" key="probe"${GS}ARCH=x86_64 SYSCALL=unlinkat`);
    const paths = [
      'item=0 name="/" inode=2203677 dev=fe:00 mode=040755 ouid=0 ogid=0 rdev=00:00 nametype=PARENT',
      'item=1 name="f2" inode=2203682 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=DELETE',
    ].map((p) => auditFields(`type=PATH msg=audit(1796531095.714:38614): ${p}`));
    const event = { serial: '38614', atMs: 1, fields, cwd: '/', paths };
    // dev fe:00 is major 254, minor 0: stat's dev 65024.
    const watched = new Map([[directoryKey(65024, 2203677), '/tmp/audt/x']]);
    expect(recordsOf(event, 1, (key) => watched.get(key)).map((r) => [r.mask, r.path])).toEqual([[FAN.DELETE, '/tmp/audt/x/f2']]);
    // A directory the agent does not watch: the cwd, as before (a wrong name, so no event matches it: no-record).
    expect(recordsOf(event, 1).map((r) => r.path)).toEqual(['/f2']);
  });

  it('a relative name with a directory part is of the directory holding its last part (sub/file), and a rename across two directories keeps each name with its own', () => {
    const at = 'type=PATH msg=audit(1796531095.714:9): ';
    const syscall = (name: string) => auditFields(`type=SYSCALL msg=audit(1796531095.714:9): syscall=83 pid=7 uid=0 gid=0 euid=0 comm="x" exe="/usr/bin/x" key="k"${GS}SYSCALL=${name}`);
    const watched = new Map([[directoryKey(65024, 11), '/w/sub'], [directoryKey(65024, 12), '/w/x'], [directoryKey(65024, 13), '/w/y']]);
    // `cd /w && mkdir sub/d2`: auditd names the PARENT `sub/` (inode 11) and the child `sub/d2`.
    const mkdir = { serial: '9', atMs: 1, fields: syscall('mkdir'), cwd: '/w', paths: ['item=0 name="sub/" inode=11 dev=fe:00 nametype=PARENT', 'item=1 name="sub/d2" inode=20 dev=fe:00 nametype=CREATE'].map((p) => auditFields(at + p)) };
    expect(recordsOf(mkdir, 1, (key) => watched.get(key)).map((r) => r.path)).toEqual(['/w/sub/d2']);
    expect(recordsOf(mkdir, 1).map((r) => r.path)).toEqual(['/w/sub/d2']);
    // `cd /w && mv x/a.tmp y/a`, replacing y/a: one rename, old name to new, no delete of x/a.
    const mv = {
      serial: '9', atMs: 1, fields: syscall('rename'), cwd: '/w',
      paths: [
        'item=0 name="x/" inode=12 dev=fe:00 nametype=PARENT',
        'item=1 name="y/" inode=13 dev=fe:00 nametype=PARENT',
        'item=2 name="x/a.tmp" inode=5 dev=fe:00 nametype=DELETE',
        'item=3 name="y/a" inode=6 dev=fe:00 nametype=DELETE',
        'item=4 name="y/a" inode=5 dev=fe:00 nametype=CREATE',
      ].map((p) => auditFields(at + p)),
    };
    expect(recordsOf(mv, 1, (key) => watched.get(key)).map((r) => [r.mask, r.path, r.oldPath])).toEqual([[FAN.RENAME, '/w/y/a', '/w/x/a.tmp']]);
  });
});
