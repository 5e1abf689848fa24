import { isoFromMs } from '@fso/common';
import type { AgentConfig, FsoDiff, FsoEvent, Logger, Topics, WatchSpec } from '@fso/common';
import type { Differ } from '../diff/differ.js';
import { createWatchFilter } from '../watch/filters.js';
import type { WatchFilter } from '../watch/filters.js';
import type { Publisher, Unstamped } from './publisher.js';
import type { Change } from '../watch/reconciler.js';
import type { WatchSink } from '../watch/rootWatcher.js';
import type { WhoAnswer, WhoSource } from '../who/whoSource.js';

/** Options of {@link createChangePublisher}. */
export interface ChangePublisherOptions {
  publisher: Publisher;
  differ: Differ;
  topics: Topics;
  agentId: string;
  log: Logger;
  /** The config in force; before the first one is applied, the one being applied. An important file's diff follows its `diff` options. */
  configInForce(): AgentConfig | undefined;
  /** The config last handed over to be applied (it may not be in force yet). Keeping and moving content for diffs follows its `diff` options. */
  newestConfig(): AgentConfig | undefined;
  /** Who made each change (`--who`); none: events carry no `who`. */
  who?: WhoSource;
}

/** The sink part that turns one root's changes into messages, journal entries and content kept for diffs. */
export type ChangeSink = Required<Pick<WatchSink, 'change' | 'move' | 'recorded' | 'unreported'>>;

/** Turns what the watchers see into event and diff messages (DESIGN.md: an event, then for an important file its diff). */
export interface ChangePublisher {
  /**
   * Publishes a change's event message and, for an important file, computes
   * and publishes its diff. A promise when the event waits for its who-data:
   * the emitter waits for it before the next change, so events keep their order.
   */
  publish(change: Change, filter: WatchFilter, root: string): void | Promise<void>;
  /** The sink of one root's watcher, but for its state and notifications (not the change pipeline's business). */
  sink(root: string, spec: WatchSpec): ChangeSink;
  /** Waits for the diffs in flight to be published (or to fail). A second call returns the same promise. */
  close(): Promise<void>;
}

/**
 * Creates the change publisher. Synchronous: the agent creates it between
 * its MQTT client and the client's connect listener, where an await would
 * miss the connect.
 *
 * @example
 * const changes = createChangePublisher({ publisher, differ, topics, agentId, log, configInForce, newestConfig });
 * const watcher = await startRootWatcher({ ...options, sink: changes.sink(root, spec) });
 */
export function createChangePublisher(options: ChangePublisherOptions): ChangePublisher {
  const { publisher, differ, topics, agentId, log } = options;
  const diffsInFlight = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  const publish = (change: Change, filter: WatchFilter, root: string): void | Promise<void> => {
    const answer = options.who?.lookup(change);
    if (answer instanceof Promise) return answer.then((who) => send(change, filter, root, who));
    send(change, filter, root, answer);
  };

  const send = (change: Change, filter: WatchFilter, root: string, who: WhoAnswer | undefined): void => {
    const important = filter.isImportant(change.path) || (change.oldPath !== undefined && filter.isImportant(change.oldPath));
    const observedAt = isoFromMs(change.observedAtMs);
    const event: Unstamped<FsoEvent> = {
      schema: 'fso.event/1',
      type: change.type,
      path: change.path,
      ...(change.oldPath !== undefined ? { oldPath: change.oldPath } : {}),
      root,
      kind: change.kind,
      size: change.size,
      mtime: change.mtimeMs === null ? null : isoFromMs(change.mtimeMs),
      sha256: change.sha256,
      hashSkipped: change.hashSkipped,
      important,
      origin: change.origin,
      ...who,
      observedAt,
    };
    // The baseline ops go to the journal in the same fsync as the event (the publisher's guarantee).
    const eventId = publisher.publish(topics.event(agentId, change.type), event, { root, ops: change.ops });
    if (!important || change.kind !== 'file' || change.type === 'rename') return;
    const diffOptions = options.configInForce()?.diff;
    if (!diffOptions) return;
    const running = differ
      .diff({ path: change.path, change: change.type, options: diffOptions })
      .then((result) => {
        const diff: Unstamped<FsoDiff> = {
          schema: 'fso.diff/1', eventId, path: change.path, format: 'unified',
          patch: result.patch, added: result.added, removed: result.removed, skipped: result.skipped, redactions: result.redactions, observedAt,
        };
        publisher.publish(topics.diffs(agentId), diff);
      })
      .catch((err: unknown) => log.error({ err, path: change.path }, 'diff failed'))
      .finally(() => diffsInFlight.delete(running));
    diffsInFlight.add(running);
  };

  const sink = (root: string, spec: WatchSpec): ChangeSink => {
    // Content is kept for important files only: a rename of two unimportant paths has none to move
    // (asking the store cost a failed rename(2) per renamed file).
    const patterns = createWatchFilter(spec);
    return {
      change: (change, filter) => publish(change, filter, root),
      move: (oldPath, newPath) => {
        if (!patterns.isImportant(oldPath) && !patterns.isImportant(newPath)) return;
        differ.rename(oldPath, newPath, options.newestConfig()?.diff.nodiff).catch((err: unknown) => log.warn({ err }, 'cannot move saved content'));
      },
      unreported: (ops) => publisher.journal(root, ops),
      recorded: (p, entry, filter) => {
        publisher.journal(root, [['set', p, entry]]);
        const diffOptions = options.newestConfig()?.diff;
        if (entry.kind === 'file' && filter.isImportant(p)) {
          differ.remember(p, diffOptions?.maxFileBytes ?? 0, diffOptions?.nodiff).catch((err: unknown) => log.warn({ err, path: p }, 'cannot keep content for diffs'));
        }
      },
    };
  };

  return {
    publish,
    sink,
    close() {
      closing ??= Promise.all([...diffsInFlight]).then(() => undefined);
      return closing;
    },
  };
}
