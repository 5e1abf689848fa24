import { describe, expect, it } from 'vitest';
import { describeWho, whoSchema } from './schemas.js';

describe('describeWho: who made a change on one line', () => {
  const base = whoSchema.parse({ uid: 1000, user: 'alice', gid: 1000, pid: 4242, exe: '/usr/bin/vim.basic', comm: 'vim', source: 'fanotify' });
  it('names the user, the command, its pid and its executable', () => {
    expect(describeWho(base)).toBe('alice(1000) vim[4242] /usr/bin/vim.basic');
  });
  it('adds the login user when it is another (sudo), and leaves out what is unknown', () => {
    expect(describeWho({ ...base, uid: 0, user: 'root', auid: 1000, auser: 'alice' })).toBe('root(0) login alice(1000) vim[4242] /usr/bin/vim.basic');
    expect(describeWho({ ...base, auid: 1000, auser: 'alice' })).toBe('alice(1000) vim[4242] /usr/bin/vim.basic');
    expect(describeWho({ ...base, user: null, exe: null, comm: null })).toBe('uid(1000) ?[4242]');
  });
});
