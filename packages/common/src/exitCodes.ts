/**
 * The exit codes of every FSO command line (`fso-agent`, `fso-broker`,
 * `fso-audit`, `fso-controller`): one map, so a code means the same thing
 * whichever bin returns it. `fso-controller`'s are documented in
 * docs/protocol.md; a bin uses only the ones that apply to it.
 *
 * @example
 * if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
 */
export const EXIT = {
  ok: 0,
  /** The command failed: could not start, rejected by an agent, verify found tampering, an unexpected error. */
  failed: 1,
  /** Bad usage or bad input (flags, config file, agent id); nothing was done. */
  usage: 2,
  /** No answer within the time allowed (`fso-controller`: no status for the pushed revision). */
  timeout: 3,
  /** The broker could not be reached, or stopped answering. */
  unreachable: 4,
  /** Interrupted (SIGINT/SIGTERM) before finishing; 128 + SIGINT, as a shell reports it. */
  interrupted: 130,
} as const;

/** One of {@link EXIT}'s codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
