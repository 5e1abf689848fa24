import type { AgentStatus, FsoAlert, FsoDiff, FsoEvent } from '@fso/common';
import { alertSchema } from '@fso/common';
import { describe, expect, it } from 'vitest';
import { createRuleEngine } from './engine.js';
import { parseRules } from './rules.js';

const T0 = Date.parse('2026-12-05T10:00:00.000Z');

/** An engine over `rules` (the YAML's `rules:` list) with a clock the test moves. */
function setup(rules: unknown[]) {
  let clock = T0;
  const alerts: FsoAlert[] = [];
  const ruleSet = parseRules({ rules }, 'test.yml');
  const engine = createRuleEngine({
    rules: ruleSet.rules,
    source: 'test',
    now: () => clock,
    emit: (alert) => alerts.push(alertSchema.parse(alert)),
  });
  return {
    engine,
    alerts,
    advance(ms: number) {
      clock += ms;
      engine.tick();
    },
    at: () => new Date(clock).toISOString(),
  };
}

let seq = 0;
function event(over: Partial<FsoEvent> & { observedAt: string }): FsoEvent {
  seq += 1;
  return {
    schema: 'fso.event/1', id: `ep-${seq}`, agentId: 'web-01', epoch: 'ep', seq, type: 'modify', path: '/srv/app/a.conf', root: '/srv/app',
    kind: 'file', size: 1, mtime: over.observedAt, sha256: null, important: false, origin: 'live', emittedAt: over.observedAt, ...over,
  } as FsoEvent;
}

function status(over: Partial<AgentStatus>): AgentStatus {
  return {
    schema: 'fso.status/1', agentId: 'web-01', state: 'online', hostname: 'h', version: '0', epoch: 'ep', lastSeq: 0,
    config: { revision: 1, state: 'applied', error: null }, watching: [], at: new Date(T0).toISOString(), ...over,
  };
}

describe('rule engine', () => {
  it('a mass delete of 10,000 files is one firing alert with the count, then one resolved', () => {
    const t = setup([{ id: 'mass-delete', when: 'change', match: { type: 'delete', path: '/srv/**' }, threshold: { count: 100, window: '1m' }, severity: 'critical' }]);
    for (let i = 0; i < 10_000; i++) t.engine.observe({ what: 'event', event: event({ type: 'delete', path: `/srv/app/f${i}`, observedAt: t.at() }) });
    expect(t.alerts).toHaveLength(1);
    expect(t.alerts[0]).toMatchObject({ rule: 'mass-delete', state: 'firing', severity: 'critical', key: 'web-01', count: 100, agentId: 'web-01' });
    expect(t.alerts[0]?.samples).toHaveLength(10);
    t.advance(30_000);
    expect(t.alerts).toHaveLength(1);
    t.advance(31_000);
    expect(t.alerts).toHaveLength(2);
    expect(t.alerts[1]).toMatchObject({ state: 'resolved', count: 10_000, id: t.alerts[0]?.id.replace(/firing$/, 'resolved') });
  });

  it('below the threshold within the window nothing fires; records are counted by their own time', () => {
    const t = setup([{ id: 'burst', when: 'change', threshold: { count: 3, window: '10s' } }]);
    // Three changes 20 s apart (an outbox backlog resent at once after an outage): not a burst.
    for (let i = 0; i < 3; i++) t.engine.observe({ what: 'event', event: event({ observedAt: new Date(T0 - 60_000 + i * 20_000).toISOString() }) });
    expect(t.alerts).toHaveLength(0);
    for (let i = 0; i < 3; i++) t.engine.observe({ what: 'event', event: event({ observedAt: new Date(T0 + i * 1000).toISOString() }) });
    expect(t.alerts.map((a) => a.state)).toEqual(['firing']);
    expect(t.alerts[0]?.count).toBe(3);
  });

  it('matches agent, type, path, important and origin, and groups by path without a threshold', () => {
    const t = setup([{ id: 'passwd', when: 'change', match: { agent: 'web-*', type: ['modify', 'delete'], path: '/etc/**', important: true, origin: 'scan' }, resolveAfter: '1m' }]);
    const base = { type: 'modify' as const, path: '/etc/passwd', important: true, origin: 'scan' as const, observedAt: t.at() };
    t.engine.observe({ what: 'event', event: event({ ...base, agentId: 'db-01' }) });
    t.engine.observe({ what: 'event', event: event({ ...base, type: 'create' }) });
    t.engine.observe({ what: 'event', event: event({ ...base, path: '/srv/passwd' }) });
    t.engine.observe({ what: 'event', event: event({ ...base, important: false }) });
    t.engine.observe({ what: 'event', event: event({ ...base, origin: 'live' }) });
    expect(t.alerts).toHaveLength(0);
    t.engine.observe({ what: 'event', event: event(base) });
    t.engine.observe({ what: 'event', event: event(base) });
    t.engine.observe({ what: 'event', event: event({ ...base, path: '/etc/shadow' }) });
    expect(t.alerts.map((a) => a.key)).toEqual(['web-01:/etc/passwd', 'web-01:/etc/shadow']);
    t.advance(61_000);
    expect(t.alerts.slice(2).map((a) => [a.key, a.state, a.count])).toEqual([['web-01:/etc/passwd', 'resolved', 2], ['web-01:/etc/shadow', 'resolved', 1]]);
  });

  it('matches who made the change: users (the login user too, through sudo), an executable allowlist; an unknown who matches no who condition', () => {
    const t = setup([
      { id: 'etc-not-root', when: 'change', match: { path: '/etc/**', notUser: 'root' } },
      { id: 'etc-not-pkg', when: 'change', match: { path: '/etc/**', notExe: ['/usr/bin/dpkg', '/usr/bin/apt*'] } },
      { id: 'alice', when: 'change', match: { user: ['alice', '2000'] } },
    ]);
    const who = (user: string, uid: number, exe: string | null, login?: [string, number]): FsoEvent['who'] => ({
      uid, user, gid: uid, pid: 42, exe, comm: 'x', source: 'fanotify', ...(login ? { auser: login[0], auid: login[1] } : {}),
    });
    const at = t.at();
    t.engine.observe({ what: 'event', event: event({ path: '/etc/a', who: who('root', 0, '/usr/bin/dpkg'), observedAt: at }) });
    t.engine.observe({ what: 'event', event: event({ path: '/etc/b', who: who('root', 0, '/usr/bin/apt-get'), observedAt: at }) });
    t.engine.observe({ what: 'event', event: event({ path: '/etc/c', who: null, whoMissing: 'process-gone', observedAt: at }) });
    t.engine.observe({ what: 'event', event: event({ path: '/etc/d', observedAt: at }) });
    expect(t.alerts).toHaveLength(0);
    // vim as root through sudo, logged in as alice: root's for notUser (no alert), alice's for user.
    t.engine.observe({ what: 'event', event: event({ path: '/etc/e', who: who('root', 0, '/usr/bin/vim.basic', ['alice', 2000]), observedAt: at }) });
    expect(t.alerts.map((a) => `${a.rule} ${a.key}`).sort()).toEqual(['alice web-01:/etc/e', 'etc-not-pkg web-01:/etc/e']);
    t.engine.observe({ what: 'event', event: event({ path: '/etc/f', who: who('mallory', 1001, '/usr/bin/cp'), observedAt: at }) });
    expect(t.alerts.filter((a) => a.key === 'web-01:/etc/f').map((a) => a.rule).sort()).toEqual(['etc-not-pkg', 'etc-not-root']);
    expect(t.alerts.at(-1)?.samples[0]?.who).toBe('mallory(1001) x[42] /usr/bin/cp');
  });

  it('who conditions are for change rules only', () => {
    expect(() => parseRules({ rules: [{ id: 'x', when: 'diff', match: { user: 'root' } }] }, 'test.yml')).toThrow(/rules\[0\] \(x\)\.match\.user: not a match field of a diff rule/);
  });

  it('a diff rule matches a patch regex and redactions', () => {
    const t = setup([
      { id: 'root-login', when: 'diff', match: { path: '**/sshd_config', patch: '^\\+\\s*PermitRootLogin\\s+yes', patchFlags: 'mi' } },
      { id: 'secret', when: 'diff', match: { redacted: true } },
    ]);
    const diff = (patch: string, redactions?: FsoDiff['redactions']): FsoDiff => ({
      schema: 'fso.diff/1', id: `d${(seq += 1)}`, agentId: 'web-01', epoch: 'ep', seq, eventId: 'e', path: '/etc/ssh/sshd_config', format: 'unified',
      patch, added: 1, removed: 0, skipped: null, observedAt: t.at(), emittedAt: t.at(), ...(redactions ? { redactions } : {}),
    } as FsoDiff);
    t.engine.observe({ what: 'diff', diff: diff('--- a\n+++ b\n@@ -1 +1 @@\n-PermitRootLogin no\n') });
    expect(t.alerts).toHaveLength(0);
    t.engine.observe({ what: 'diff', diff: diff('--- a\n+++ b\n@@ -1 +1 @@\n+permitrootlogin   YES\n', [{ kind: 'password', count: 1 }]) });
    expect(t.alerts.map((a) => a.rule).sort()).toEqual(['root-login', 'secret']);
  });

  it('an agent offline (or silent) for `for` fires once and resolves when it is back', () => {
    const t = setup([{ id: 'offline', when: 'agent-offline', for: '2m', severity: 'high' }]);
    t.engine.observe({ what: 'status', status: status({}), retained: false });
    t.advance(60_000);
    t.engine.observe({ what: 'status', status: status({ state: 'offline', at: t.at() }), retained: false });
    t.advance(60_000);
    expect(t.alerts).toHaveLength(0);
    t.advance(61_000);
    t.advance(60_000);
    expect(t.alerts).toHaveLength(1);
    expect(t.alerts[0]).toMatchObject({ state: 'firing', key: 'web-01', severity: 'high' });
    expect(t.alerts[0]?.summary).toMatch(/offline for 1[23]\ds/);
    t.engine.observe({ what: 'status', status: status({ at: t.at() }), retained: false });
    expect(t.alerts.map((a) => a.state)).toEqual(['firing', 'resolved']);
    // Online but silent (a hung agent: no heartbeat) fires too.
    t.advance(121_000);
    expect(t.alerts.map((a) => a.state)).toEqual(['firing', 'resolved', 'firing']);
    expect(t.alerts[2]?.summary).toMatch(/no status from agent web-01/);
  });

  it('a rejected config fires, a new rejected revision says so again, an applied one resolves', () => {
    const t = setup([{ id: 'config', when: 'config-rejected' }]);
    const rejected = (revision: number) => status({ config: { revision, state: 'rejected', error: `watch[0].path: not absolute (r${revision})` } });
    t.engine.observe({ what: 'status', status: rejected(7), retained: false });
    t.engine.observe({ what: 'status', status: rejected(7), retained: false });
    t.engine.observe({ what: 'status', status: rejected(8), retained: false });
    t.engine.observe({ what: 'status', status: status({ config: { revision: 9, state: 'applied', error: null } }), retained: false });
    expect(t.alerts.map((a) => [a.state, a.count])).toEqual([['firing', 1], ['firing', 2], ['resolved', 2]]);
    expect(t.alerts[0]?.summary).toContain('revision 7');
    expect(new Set(t.alerts.map((a) => a.id)).size).toBe(3);
  });

  it('a failed verify fires and a passing one resolves; gaps fire per agent', () => {
    const t = setup([{ id: 'trail', when: 'verify-failed', severity: 'critical' }, { id: 'gaps', when: 'gap' }]);
    t.engine.observe({ what: 'verify', ok: true, detail: 'intact' });
    t.engine.observe({ what: 'verify', ok: false, detail: 'events-2026-12-05.jsonl:3 hash mismatch' });
    t.engine.observe({ what: 'verify', ok: true, detail: 'intact' });
    t.engine.observe({ what: 'gap', agentId: 'web-01', at: t.at(), reason: 'watcher-overflow', messageId: 'g1' });
    expect(t.alerts.map((a) => [a.rule, a.state])).toEqual([['trail', 'firing'], ['trail', 'resolved'], ['gaps', 'firing']]);
    expect(t.alerts[0]?.summary).toContain('events-2026-12-05.jsonl:3');
  });

  it('incidents beyond the rule limit fold into one rate-limited incident', () => {
    const t = setup([{ id: 'any', when: 'change', limit: { incidents: 3, per: '1h' } }]);
    for (let i = 0; i < 50; i++) t.engine.observe({ what: 'event', event: event({ path: `/srv/f${i}`, observedAt: t.at() }) });
    expect(t.alerts.map((a) => a.key)).toEqual(['web-01:/srv/f0', 'web-01:/srv/f1', 'web-01:/srv/f2', '(rate-limited)']);
    t.advance(5 * 60_000 + 1);
    const folded = t.alerts.find((a) => a.key === '(rate-limited)' && a.state === 'resolved');
    expect(folded?.count).toBe(47);
  });

  it('repeat says a long incident again; reload keeps unchanged rules and resolves changed ones', () => {
    const rules = [{ id: 'a', when: 'change', repeat: '1m', resolveAfter: '10m' }, { id: 'b', when: 'change' }];
    const t = setup(rules);
    t.engine.observe({ what: 'event', event: event({ observedAt: t.at() }) });
    t.advance(61_000);
    expect(t.alerts.map((a) => [a.rule, a.id.split(':').pop()])).toEqual([['a', 'firing'], ['b', 'firing'], ['a', 'firing.1']]);
    t.engine.replaceRules(parseRules({ rules: [rules[0], { id: 'b', when: 'change', severity: 'high' }] }, 'test.yml').rules);
    expect(t.alerts.slice(3).map((a) => [a.rule, a.state])).toEqual([['b', 'resolved']]);
    expect(t.engine.firing().get('a')).toBe(1);
  });
});

describe('rules file', () => {
  it('names the rule and the field of every problem', () => {
    const bad = {
      targets: {},
      rules: [
        { id: 'ok', when: 'change' },
        { id: 'mass-delete', when: 'change', threshold: { count: 0, window: 'soon' } },
        { id: 'wrong-field', when: 'change', match: { patch: 'x' } },
        { id: 'off', when: 'agent-offline' },
        { id: 'ok', when: 'diff', match: { patch: '(' } },
        { id: 'hooked', when: 'diff', notify: ['nowhere'] },
      ],
    };
    let problems: readonly string[] = [];
    try {
      parseRules(bad, 'rules.yml');
    } catch (err) {
      problems = (err as { problems: readonly string[] }).problems;
    }
    const text = problems.join('\n');
    expect(text).toContain('rules[1] (mass-delete).threshold.count');
    expect(text).toContain('rules[1] (mass-delete).threshold.window: invalid duration');
    expect(text).toContain('rules[2] (wrong-field).match.patch: not a match field of a change rule');
    expect(text).toContain('rules[3] (off).for: an agent-offline rule needs `for`');
    expect(text).toContain('rules[4] (ok).id: duplicate rule id');
    expect(text).toContain('rules[4] (ok).match.patch: not a regular expression');
    expect(text).toContain('rules[5] (hooked).notify[0]: no target named "nowhere"');
    expect(problems).toHaveLength(7);
  });

  it('refuses unknown keys', () => {
    expect(() => parseRules({ rules: [{ id: 'x', when: 'change', threshhold: {} }] }, 'r.yml')).toThrow(/rules\[0\] \(x\)/);
  });
});
