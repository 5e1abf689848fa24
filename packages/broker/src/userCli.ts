/** `fso-broker user add|remove|list`: manage the auth file. */
import { Command, Option } from 'commander';
import { FSO_ROLES } from '@fso/common';
import type { FsoRole } from '@fso/common';
import { UserCommandError } from './errors.js';
import { USERNAME_PATTERN, checkRole, readAuthFile, withUser, withoutUser, writeAuthFile } from './authFile.js';
import { hashPassword } from './passwords.js';

/** Where the user commands read and write, so tests can run them in-process. */
export interface UserCliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** Shortest password `user add` accepts. */
export const MIN_PASSWORD_LENGTH = 8;
/** Longest stdin read for a password. */
const MAX_PASSWORD_INPUT = 4096;

/** The password: `FSO_PASSWORD`, else a hidden prompt on a terminal, else all of stdin less one final newline. */
async function readPassword(io: UserCliIo): Promise<string> {
  const fromEnv = io.env.FSO_PASSWORD;
  let password: string;
  if (fromEnv !== undefined) {
    password = fromEnv;
  } else if (io.stdin.isTTY && io.stdin.setRawMode) {
    password = await promptHidden(io, 'password: ');
    if ((await promptHidden(io, 'again: ')) !== password) throw new UserCommandError('the passwords differ');
  } else {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of io.stdin) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += buffer.length;
      if (size > MAX_PASSWORD_INPUT) throw new UserCommandError(`the password on stdin is longer than ${MAX_PASSWORD_INPUT} bytes`);
      chunks.push(buffer);
    }
    password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new UserCommandError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters (give it on stdin or in FSO_PASSWORD)`);
  }
  return password;
}

/** Reads one line from a terminal without echoing it. */
function promptHidden(io: UserCliIo, prompt: string): Promise<string> {
  const input = io.stdin;
  io.stderr.write(prompt);
  input.setRawMode?.(true);
  input.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      input.off('data', onData);
      input.setRawMode?.(false);
      input.pause();
      io.stderr.write('\n');
    };
    const onData = (data: Buffer | string): void => {
      for (const ch of data.toString()) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish();
          reject(new UserCommandError('cancelled'));
          return;
        }
        value = ch === '\u007f' || ch === '\b' ? [...value].slice(0, -1).join('') : value + ch;
      }
    };
    input.on('data', onData);
  });
}

/** Adds the `user` command (add, remove, list) to `program`. */
export function addUserCommands(program: Command, io: UserCliIo): void {
  const user = program.command('user').description('manage the users of an auth file (passwords are stored as scrypt hashes)');
  const authOption = (): Option => new Option('--auth <file>', 'the auth file (created 0600 by add)').makeOptionMandatory();

  user
    .command('add')
    .description('add a user, or replace its role and password; the password comes from stdin or FSO_PASSWORD, never a flag')
    .addOption(authOption())
    .requiredOption('--username <name>', 'login name')
    .addOption(new Option('--role <role>', 'what it may do').choices(FSO_ROLES).makeOptionMandatory())
    .option('--agent-id <id>', 'for role agent: the agent it speaks for (its MQTT client id must be this)')
    .action(async (opts: { auth: string; username: string; role: FsoRole; agentId?: string }) => {
      if (!USERNAME_PATTERN.test(opts.username)) throw new UserCommandError(`invalid username: it must match ${USERNAME_PATTERN.source}`);
      const roleProblem = checkRole(opts.role, opts.agentId);
      if (roleProblem) throw new UserCommandError(roleProblem);
      const data = await readAuthFile(opts.auth, 'empty');
      const password = await hashPassword(await readPassword(io));
      const { data: next, replaced } = withUser(data, {
        username: opts.username,
        role: opts.role,
        ...(opts.agentId === undefined ? {} : { agentId: opts.agentId }),
        password,
      });
      await writeAuthFile(opts.auth, next);
      const agent = opts.agentId === undefined ? '' : `, agent ${opts.agentId}`;
      io.stdout.write(`${replaced ? 'updated' : 'added'} user ${opts.username} (${opts.role}${agent}) in ${opts.auth}\n`);
    });

  user
    .command('remove')
    .description('remove a user (a running broker drops its connections on SIGHUP)')
    .addOption(authOption())
    .requiredOption('--username <name>', 'login name')
    .action(async (opts: { auth: string; username: string }) => {
      const next = withoutUser(await readAuthFile(opts.auth), opts.username);
      if (!next) throw new UserCommandError(`no user ${opts.username} in ${opts.auth}`);
      await writeAuthFile(opts.auth, next);
      io.stdout.write(`removed user ${opts.username} from ${opts.auth}\n`);
    });

  user
    .command('list')
    .description('list users with role and agent id (never the hashes)')
    .addOption(authOption())
    .option('--json', 'print JSON')
    .action(async (opts: { auth: string; json?: boolean }) => {
      const users = (await readAuthFile(opts.auth)).users.map((u) => ({ username: u.username, role: u.role, agentId: u.agentId ?? null }));
      if (opts.json) {
        io.stdout.write(`${JSON.stringify(users, null, 2)}\n`);
        return;
      }
      const rows = [['USERNAME', 'ROLE', 'AGENT'], ...users.map((u) => [u.username, u.role, u.agentId ?? '-'])];
      const widths = [0, 1].map((col) => Math.max(...rows.map((r) => (r[col] as string).length)));
      for (const row of rows) io.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()}\n`);
    });
}
