import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorCode, parseAgentConfig, writeFileAtomic } from '@fso/common';
import type { AgentConfig, Logger } from '@fso/common';
import { StateDirError } from './errors.js';

/** The agent's own directory: epoch, outbox, baselines, saved config, diff contents. */
export interface StateDir {
  readonly dir: string;
  /** Minted when the state dir is created, kept for its lifetime (DESIGN.md `epoch`). */
  readonly epoch: string;
  /** Path of a file or folder inside the state dir. */
  resolve(...parts: string[]): string;
  /** The last applied config and where it came from, or null. */
  loadConfig(): Promise<SavedConfig | null>;
  saveConfig(saved: SavedConfig): Promise<void>;
}

/** A config as kept in the state dir. */
export interface SavedConfig {
  source: 'agent' | 'default' | 'saved' | 'cli';
  config: AgentConfig;
}

function mintEpoch(): string {
  // Time-ordered and unique: base36 milliseconds plus 48 random bits.
  return `${Date.now().toString(36)}${randomBytes(6).toString('hex')}`;
}

/** Opens (creating 0700 if needed) the state dir and its epoch. */
export async function openStateDir(dir: string, log: Logger): Promise<StateDir> {
  const root = path.resolve(dir);
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
    await chmod(root, 0o700);
  } catch (err) {
    throw new StateDirError(root, `cannot create: ${(err as Error).message}`, { cause: err });
  }
  const epochFile = path.join(root, 'epoch');
  let epoch: string;
  try {
    epoch = (await readFile(epochFile, 'utf8')).trim();
    if (!/^[0-9a-z]{8,40}$/.test(epoch)) throw new StateDirError(root, `epoch file holds ${JSON.stringify(epoch)}`);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err instanceof StateDirError ? err : new StateDirError(root, 'cannot read epoch', { cause: err });
    epoch = mintEpoch();
    await writeFileAtomic(epochFile, `${epoch}\n`);
    log.info({ epoch, dir: root }, 'new state dir, new epoch');
  }
  const configFile = path.join(root, 'config.json');
  return {
    dir: root,
    epoch,
    resolve: (...parts) => path.join(root, ...parts),
    async loadConfig() {
      let text: string;
      try {
        text = await readFile(configFile, 'utf8');
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return null;
        throw new StateDirError(root, 'cannot read saved config', { cause: err });
      }
      try {
        const saved = JSON.parse(text) as { source?: unknown; config?: unknown };
        const source = saved.source === 'agent' || saved.source === 'default' ? saved.source : 'cli';
        return { source, config: parseAgentConfig(saved.config, configFile) };
      } catch (err) {
        log.warn({ err, file: configFile }, 'saved config is unusable, ignoring it');
        return null;
      }
    },
    saveConfig: (saved) => writeFileAtomic(configFile, `${JSON.stringify(saved, null, 2)}\n`),
  };
}
