import { describe, expect, it } from 'vitest';
import { createTopics } from '@fso/common';
import { filterCovers, permissionsOf } from './acl.js';
import type { Identity } from './acl.js';

const topics = createTopics('fso');
const as = (role: Identity['role'], agentId?: string): ReturnType<typeof permissionsOf> =>
  permissionsOf({ username: 'u', role, agentId, via: 'password' }, topics);

describe('filterCovers', () => {
  it.each([
    ['fso/#', 'fso/#', true],
    ['fso/#', 'fso', true],
    ['fso/#', 'fso/agents/a/status', true],
    ['fso/#', 'fsox/a', false],
    ['fso/#', '#', false],
    ['fso/agents/+/status', 'fso/agents/web-01/status', true],
    ['fso/agents/+/status', 'fso/agents/+/status', true],
    ['fso/agents/+/status', 'fso/agents/#', false],
    ['fso/agents/+/status', 'fso/agents/+/+', false],
    ['fso/agents/+/status', 'fso/agents/a/status/x', false],
    ['fso/agents/+/events/#', 'fso/agents/+/events', true],
    ['fso/agents/+/events/#', 'fso/agents/a/events/modify', true],
    ['fso/agents/+/events/#', 'fso/agents/#', false],
    ['fso/agents/a/config', 'fso/agents/+/config', false],
    ['fso/agents/a/config', 'fso/agents/a/config', true],
    ['fso/agents/a/config', 'fso/agents/a', false],
  ])('%s covers %s: %s', (allowed, filter, expected) => {
    expect(filterCovers(allowed, filter)).toBe(expected);
  });
});

describe('permissionsOf', () => {
  it('lets an agent publish its own events, diffs, gaps and status only', () => {
    const agent = as('agent', 'web-01');
    for (const topic of [topics.event('web-01', 'create'), topics.diffs('web-01'), topics.gaps('web-01'), topics.status('web-01')]) {
      expect(agent.mayPublish(topic)).toBe(true);
    }
    for (const topic of [
      topics.event('web-02', 'create'),
      topics.gaps('web-02'),
      topics.status('web-02'),
      topics.config('web-01'),
      topics.ack('web-01'),
      topics.defaultConfig(),
      'fso/agents/web-01/events/bogus',
      'fso/agents/web-01/status/extra',
      'other/agents/web-01/status',
      '$SYS/x',
    ]) {
      expect(agent.mayPublish(topic), topic).toBe(false);
    }
  });

  it('lets an agent subscribe to its config, its acks and the default config only', () => {
    const agent = as('agent', 'web-01');
    for (const f of [topics.config('web-01'), topics.ack('web-01'), topics.defaultConfig()]) expect(agent.maySubscribe(f)).toBe(true);
    for (const f of ['fso/#', '#', topics.config('web-02'), topics.allConfigs(), topics.allEvents(), 'fso/agents/web-01/#', '$SYS/#']) {
      expect(agent.maySubscribe(f), f).toBe(false);
    }
  });

  it('lets a controller publish configs and read status and configs', () => {
    const controller = as('controller');
    expect(controller.mayPublish(topics.config('any-agent'))).toBe(true);
    expect(controller.mayPublish(topics.defaultConfig())).toBe(true);
    expect(controller.mayPublish(topics.status('a'))).toBe(false);
    expect(controller.mayPublish(topics.ack('a'))).toBe(false);
    for (const f of [topics.allStatus(), topics.allConfigs(), topics.defaultConfig(), topics.status('a')]) expect(controller.maySubscribe(f)).toBe(true);
    for (const f of [topics.all(), topics.allEvents(), topics.diffs('a'), topics.ack('a')]) expect(controller.maySubscribe(f), f).toBe(false);
  });

  it('lets a recorder read everything under the prefix and publish acks only', () => {
    const recorder = as('recorder');
    expect(recorder.maySubscribe(topics.all())).toBe(true);
    expect(recorder.maySubscribe('#')).toBe(false);
    expect(recorder.maySubscribe('$SYS/#')).toBe(false);
    expect(recorder.mayPublish(topics.ack('web-01'))).toBe(true);
    expect(recorder.mayPublish(topics.event('web-01', 'create'))).toBe(false);
    expect(recorder.mayPublish(topics.config('web-01'))).toBe(false);
  });

  it('lets a viewer read events, diffs, gaps and status and publish nothing', () => {
    const viewer = as('viewer');
    for (const f of [topics.allEvents(), topics.diffs('+'), topics.gaps('+'), topics.allStatus(), topics.event('a', 'modify'), topics.diffs('a')]) {
      expect(viewer.maySubscribe(f), f).toBe(true);
    }
    for (const f of [topics.all(), topics.allConfigs(), topics.ack('a')]) expect(viewer.maySubscribe(f), f).toBe(false);
    expect(viewer.mayReceive(topics.config('a'))).toBe(false);
    for (const t of [topics.config('a'), topics.defaultConfig(), topics.ack('a'), topics.status('a')]) expect(viewer.mayPublish(t)).toBe(false);
  });

  it('lets an alerter read what rules need and publish alerts only; viewers and controllers read alerts', () => {
    const alerter = as('alerter');
    for (const f of [topics.allEvents(), topics.diffs('+'), topics.gaps('+'), topics.allStatus(), topics.allAlerts()]) expect(alerter.maySubscribe(f), f).toBe(true);
    for (const f of [topics.all(), topics.allConfigs(), topics.ack('a'), topics.defaultConfig()]) expect(alerter.maySubscribe(f), f).toBe(false);
    expect(alerter.mayPublish(topics.alerts('mass-delete'))).toBe(true);
    expect(alerter.mayPublish('fso/alerts/bad rule')).toBe(false);
    expect(alerter.mayPublish('fso/alerts/a/b')).toBe(false);
    for (const t of [topics.event('a', 'create'), topics.status('a'), topics.config('a'), topics.defaultConfig(), topics.ack('a')]) expect(alerter.mayPublish(t), t).toBe(false);
    expect(as('viewer').maySubscribe(topics.allAlerts())).toBe(true);
    expect(as('controller').maySubscribe(topics.allAlerts())).toBe(true);
    for (const role of ['agent', 'viewer', 'controller', 'recorder'] as const) expect(as(role).mayPublish(topics.alerts('x')), role).toBe(false);
  });

  it('follows the topic prefix', () => {
    const other = permissionsOf({ username: 'u', role: 'agent', agentId: 'a', via: 'token' }, createTopics('site/fso'));
    expect(other.mayPublish('site/fso/agents/a/status')).toBe(true);
    expect(other.mayPublish('fso/agents/a/status')).toBe(false);
  });
});
