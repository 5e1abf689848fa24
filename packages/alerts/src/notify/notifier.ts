import type { FsoAlert } from '@fso/common';

/** The kinds of notification target a rules file can name. */
export const NOTIFIER_TYPES = ['webhook', 'syslog', 'email'] as const;
export type NotifierType = (typeof NOTIFIER_TYPES)[number];

/**
 * One notification target, made from the rules file's `targets` entry.
 * `send` is one attempt: it resolves when the receiver took the alert and
 * rejects (a {@link NotifyError}) when it did not, within the target's
 * timeout. Retries and queueing are the dispatcher's, not the notifier's.
 */
export interface Notifier {
  /** The target's name in the rules file. */
  readonly name: string;
  readonly type: NotifierType;
  send(alert: FsoAlert): Promise<void>;
  /** Releases sockets and timers; a second call returns the same promise. */
  close(): Promise<void>;
}

/** What the dispatcher reports of each delivery, for metrics and logs. */
export type NotifyOutcome = 'sent' | 'retried' | 'failed' | 'dropped';
