/**
 * The systemd units of docs/systemd/: systemd itself accepts them
 * (`systemd-analyze verify` prints no warning about them), they keep the
 * sandbox docs/systemd/README.md describes, and every flag of an
 * `ExecStart=` is one the built bin accepts (a renamed flag would leave a
 * unit that fails at start). Needs `pnpm build` (the bins' --help) and
 * systemd-analyze on PATH; without it these tests fail, never skip.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const UNITS = ['fso-agent.service', 'fso-audit-record.service', 'fso-broker.service'] as const;
type UnitName = (typeof UNITS)[number];

/** A unit's directives, by key, every value in order (a key may repeat); continuation lines joined. */
type Unit = Map<string, string[]>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  const lines = text.replace(/\\\n\s*/g, ' ').split('\n');
  for (const line of lines) {
    if (/^\s*([#;]|\[|$)/.test(line)) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    unit.set(key, [...(unit.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error(`${command} is not on PATH (Debian: apt-get install systemd)`));
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

const units = new Map<UnitName, Unit>();
const get = (name: UnitName, key: string): string | undefined => units.get(name)?.get(key)?.at(-1);

beforeAll(async () => {
  for (const name of UNITS) units.set(name, parseUnit(await readFile(path.join(REPO, 'docs/systemd', name), 'utf8')));
});

describe('docs/systemd units', () => {
  it.each(UNITS)('%s passes systemd-analyze verify without a warning', async (name) => {
    const { code, stdout, stderr } = await run('systemd-analyze', ['verify', path.join('docs/systemd', name)]);
    expect(code, stderr).toBe(0);
    // Lines about other units of this machine are not ours to judge.
    expect(`${stdout}${stderr}`.split('\n').filter((l) => l.includes(name))).toEqual([]);
  });

  it.each(UNITS)('%s is sandboxed: no new privileges, read-only system, private /tmp, few address families and system calls', (name) => {
    expect(get(name, 'User')).toBe('fso');
    expect(get(name, 'NoNewPrivileges')).toBe('yes');
    expect(get(name, 'ProtectSystem')).toBe('strict');
    expect(get(name, 'PrivateTmp')).toBe('yes');
    expect(get(name, 'RestrictAddressFamilies')).toBe('AF_INET AF_INET6 AF_UNIX');
    expect(get(name, 'SystemCallFilter')).toBe('@system-service');
    expect(get(name, 'Restart')).toBe('on-failure');
    expect(Number(get(name, 'LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    // Node's JIT needs writable and executable memory: this setting kills it at start.
    expect(units.get(name)?.has('MemoryDenyWriteExecute')).toBe(false);
    expect(get(name, 'ExecStart')).toMatch(/^\/usr\/bin\/node \/opt\/fso\/packages\/[a-z-]+\/dist\/cli\.js /);
  });

  it('lets the agent read what it watches, and nothing more; the recorder and broker keep no capability', () => {
    expect(get('fso-agent.service', 'CapabilityBoundingSet')).toBe('CAP_DAC_READ_SEARCH');
    expect(get('fso-agent.service', 'AmbientCapabilities')).toBe('CAP_DAC_READ_SEARCH');
    expect(get('fso-agent.service', 'ProtectHome')).toBe('read-only');
    for (const name of ['fso-audit-record.service', 'fso-broker.service'] as const) {
      expect(get(name, 'CapabilityBoundingSet')).toBe('');
      expect(get(name, 'ProtectHome')).toBe('yes');
    }
  });

  it('gives the agent and the recorder their broker password as a credential, and the broker URL from an environment file', () => {
    for (const name of ['fso-agent.service', 'fso-audit-record.service'] as const) {
      expect(get(name, 'EnvironmentFile')).toMatch(/^\/etc\/fso\/[a-z]+\.env$/);
      const credential = get(name, 'LoadCredential')?.split(':')[0];
      expect(credential).toBe('broker-password');
      expect(get(name, 'ExecStart')).toContain(`--password-file %d/${credential}`);
    }
    expect(get('fso-broker.service', 'ExecStart')).toContain(`--tls-key %d/${get('fso-broker.service', 'LoadCredential')?.split(':')[0]}`);
  });

  it.each(UNITS)('%s passes only flags its bin accepts', async (name) => {
    const exec = get(name, 'ExecStart') ?? '';
    const [, script, subcommand] = /^\/usr\/bin\/node \/opt\/fso\/(\S+) (?:([a-z]+) )?/.exec(exec) ?? [];
    expect(script, exec).toBeDefined();
    const help = await run(process.execPath, [path.join(REPO, script ?? ''), ...(subcommand ? [subcommand] : []), '--help']);
    expect(help.code, `${script} --help (run pnpm build first): ${help.stderr}`).toBe(0);
    const flags = [...exec.matchAll(/\s(--[a-z][a-z-]*)/g)].map(([, flag]) => flag ?? '');
    expect(flags.length).toBeGreaterThan(2);
    for (const flag of flags) expect(help.stdout, `${name}: ${flag}`).toMatch(new RegExp(`${flag}[ ,<]`));
  });
});
