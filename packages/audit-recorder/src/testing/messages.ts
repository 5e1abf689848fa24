import type { AgentConfigInput, AgentStatus, FsoDiff, FsoEvent, FsoGap } from '@fso/common';

const at = (ms = Date.now()): string => new Date(ms).toISOString();

/** The fields every sequenced message starts with (DESIGN.md's order). */
const sequenced = <S extends string>(schema: S, agentId: string, epoch: string, seq: number) => ({ schema, id: `${epoch}-${seq}`, agentId, epoch, seq });

/** A valid event message. */
export function makeEvent(agentId: string, epoch: string, seq: number, overrides: Partial<FsoEvent> = {}): FsoEvent {
  return {
    ...sequenced('fso.event/1', agentId, epoch, seq),
    type: 'modify',
    path: `/srv/app/file-${seq}.conf`,
    root: '/srv/app',
    kind: 'file',
    size: 2048,
    mtime: at(),
    sha256: '3f2a'.padEnd(64, '0'),
    important: true,
    origin: 'live',
    observedAt: at(),
    emittedAt: at(),
    ...overrides,
  };
}

/** A valid diff message. */
export function makeDiff(agentId: string, epoch: string, seq: number, overrides: Partial<FsoDiff> = {}): FsoDiff {
  return {
    ...sequenced('fso.diff/1', agentId, epoch, seq),
    eventId: `${epoch}-${seq - 1}`,
    path: '/srv/app/x.conf',
    format: 'unified',
    patch: '--- a/x.conf\n+++ b/x.conf\n@@ -1 +1 @@\n-a\n+b\n',
    added: 1,
    removed: 1,
    skipped: null,
    observedAt: at(),
    emittedAt: at(),
    ...overrides,
  };
}

/** A valid gap message (an agent's watcher overflowed). */
export function makeGap(agentId: string, epoch: string, seq: number, overrides: Partial<FsoGap> = {}): FsoGap {
  return {
    ...sequenced('fso.gap/1', agentId, epoch, seq),
    reason: 'watcher-overflow',
    roots: ['/srv/app'],
    since: at(Date.now() - 2000),
    until: at(),
    notifications: 16_384,
    observedAt: at(),
    emittedAt: at(),
    ...overrides,
  };
}

/** A valid status message. */
export function makeStatus(agentId: string, epoch: string, lastSeq: number, overrides: Partial<AgentStatus> = {}): AgentStatus {
  return {
    schema: 'fso.status/1',
    agentId,
    state: 'online',
    hostname: 'host-1',
    version: '0.1.0',
    epoch,
    lastSeq,
    config: { revision: 7, state: 'applied', error: null },
    watching: [{ path: '/srv/app', ready: true, entries: 3 }],
    at: at(),
    ...overrides,
  };
}

/** A valid agent config. */
export function makeConfig(revision: number): AgentConfigInput {
  return { schema: 'fso.config/1', revision, watch: [{ path: '/srv/app', important: ['**/*.conf'] }] };
}
