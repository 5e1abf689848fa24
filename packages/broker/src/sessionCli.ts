/** `fso-broker session list|release`: the client ids a broker's data dir binds to their logins. */
import { Command, Option } from 'commander';
import { Level } from 'level';
import { errorCode } from '@fso/common';
import { readClientIds, writeClientIds } from './clientIds.js';
import type { ClientIdBinding } from './clientIds.js';
import type { UserCliIo } from './userCli.js';
import { BrokerStorageError, UserCommandError } from './errors.js';

/**
 * Runs `edit` while holding the data dir's database lock, so no broker runs
 * with it meanwhile: a running broker keeps the bindings in memory and would
 * write the released one back.
 *
 * @throws {BrokerStorageError} when a broker is using the data dir.
 */
async function whileStopped<T>(dataDir: string, edit: () => Promise<T>): Promise<T> {
  const db = new Level(dataDir, { createIfMissing: false });
  let locked = true;
  try {
    await db.open();
  } catch (err) {
    // classic-level wraps the reason: LEVEL_DATABASE_NOT_OPEN with cause LEVEL_LOCKED.
    if (errorCode((err as Error).cause) === 'LEVEL_LOCKED') {
      // No cause on the reason: BrokerStorageError words its message from the innermost cause.
      throw new BrokerStorageError(dataDir, new Error('a running broker is using it: stop the broker, release, then start it again'));
    }
    locked = false; // no database there (yet): nothing can be running with it
  }
  try {
    return await edit();
  } finally {
    if (locked) await db.close();
  }
}

const describe = (b: ClientIdBinding): string => `${b.owner} (${b.via}${b.agentId === undefined ? '' : `, agent ${b.agentId}`}) since ${b.since}`;

/** Adds the `session` command (list, release) to `program`. */
export function addSessionCommands(program: Command, io: UserCliIo): void {
  const session = program
    .command('session')
    .description('the client ids bound to their first login (persistent sessions, agent ids) in a data dir');
  const dataDirOption = (): Option => new Option('--data-dir <dir>', "the broker's data dir").makeOptionMandatory();

  session
    .command('list')
    .description('list client ids with the login that owns them')
    .addOption(dataDirOption())
    .option('--json', 'print JSON')
    .action(async (opts: { dataDir: string; json?: boolean }) => {
      const bindings = await readClientIds(opts.dataDir);
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(bindings, null, 2)}\n`);
        return;
      }
      for (const b of bindings) io.stdout.write(`${b.clientId}  ${describe(b)}\n`);
    });

  session
    .command('release')
    .description('let another login use a client id; stop the broker first (removing a user from the auth file releases its ids by itself)')
    .addOption(dataDirOption())
    .requiredOption('--client-id <id>', 'the client id to release')
    .action(async (opts: { dataDir: string; clientId: string }) => {
      await whileStopped(opts.dataDir, async () => {
        const bindings = await readClientIds(opts.dataDir);
        const released = bindings.find((b) => b.clientId === opts.clientId);
        if (!released) throw new UserCommandError(`client id ${opts.clientId} is not bound in ${opts.dataDir}`);
        await writeClientIds(opts.dataDir, bindings.filter((b) => b !== released));
        io.stdout.write(`released client id ${opts.clientId}, owned by ${describe(released)}\n`);
      });
    });
}
