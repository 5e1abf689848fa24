import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, runCli, waitFor } from '../../../tests/helpers.js';
import { main } from './cli.js';

const BIN = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await runCli(main, argv);
  return { code, out: stdout, err: stderr };
}

const VALID = `rules:
  - id: passwd
    when: change
    match: { path: /etc/passwd }
  - id: offline
    when: agent-offline
    for: 5m
`;

describe('fso-alert', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir('fso-alert-cli-');
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('--check: 0 and a summary for a valid file; 2 naming the rule and field for an invalid one', async () => {
    const file = path.join(tmp.path, 'rules.yml');
    await writeFile(file, VALID);
    const ok = await run(['--rules', file, '--check']);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.out).toContain('2 rules (passwd, offline), 0 targets');

    await writeFile(file, `${VALID}  - id: hook\n    when: change\n    notify: [ops]\n  - id: bad\n    when: diff\n    match: { patch: "(" }\n`);
    const bad = await run(['--rules', file, '--check']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('rules[2] (hook).notify[0]: no target named "ops"');
    expect(bad.err).toContain('rules[3] (bad).match.patch: not a regular expression');

    await writeFile(file, 'rules: [ {id: x, when: change}\n');
    expect(await run(['--rules', file, '--check'])).toMatchObject({ code: 2, err: expect.stringContaining('not YAML') });
    expect(await run(['--rules', path.join(tmp.path, 'missing.yml'), '--check'])).toMatchObject({ code: 2, err: expect.stringContaining('cannot read') });
    await writeFile(file, 'targets:\n  hook: { type: webhook, url: "http://127.0.0.1:1/x", secret: hunter2 }\nrules: []\n');
    const plain = await run(['--rules', file, '--check']);
    expect(plain.code).toBe(2);
    expect(plain.err).toContain('targets.hook.secret: a secret never sits in the rules file: use secretFile or secretEnv');
    expect(plain.err).not.toContain('hunter2');
  });

  describe('the built bin', () => {
    let broker: Broker;
    beforeEach(async () => {
      broker = await startBroker({ port: 0 });
    });
    afterEach(async () => {
      await broker.close();
    });

    it('reloads on SIGHUP, refuses an invalid file (the old rules keep running), and stops cleanly on SIGTERM', async () => {
      expect(existsSync(BIN), `${BIN} (run pnpm build)`).toBe(true);
      const file = path.join(tmp.path, 'rules.yml');
      await writeFile(file, VALID);
      const child = spawn(process.execPath, [BIN, '--rules', file, '--broker', broker.url, '--metrics-port', '0'], {
        env: { ...process.env, FSO_LOG_FORMAT: 'json', FSO_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      child.stdout.on('data', (d: Buffer) => (log += d.toString()));
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        await waitFor(() => log.includes('connected and subscribed'), `"connected and subscribed" (log: ${log})`, 20_000);
        const metricsUrl = await waitFor(() => /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log)?.[1], 'the metrics URL in the log');
        const ready = await fetch(`${metricsUrl}/readyz`);
        expect(ready.status).toBe(200);

        await writeFile(file, `${VALID}  - id: broken\n    when: change\n    threshold: { count: 0, window: 1m }\n`);
        child.kill('SIGHUP');
        await waitFor(() => log.includes('rules reload refused'), 'the refused reload in the log');
        expect(log).toContain('rules[2] (broken).threshold.count');
        const rules = async (): Promise<string | undefined> => /^fso_alert_rules (\d+)$/m.exec(await (await fetch(`${metricsUrl}/metrics`)).text())?.[1];
        expect(await rules()).toBe('2');

        await writeFile(file, `${VALID}  - id: third\n    when: gap\n`);
        child.kill('SIGHUP');
        await waitFor(async () => (await rules()) === '3', 'three rules after a valid reload');
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});
