// A whole stack behind the console, for its API and browser tests: the real
// broker with logins and a WebSocket listener, the real recorder and one real
// agent on temp folders, and the console serving the built web app.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startAgent } from '@fso/agent';
import type { Agent } from '@fso/agent';
import { startRecorder } from '@fso/audit-recorder';
import type { Recorder } from '@fso/audit-recorder';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { parseAgentConfig } from '@fso/common';
import type { FsoRole } from '@fso/common';
import { startConsole } from '@fso/console';
import type { Console } from '@fso/console';
import { writeTestAuthFile } from '../packages/broker/src/testing/auth.js';
import { createTempDir } from './helpers.js';

export const CONSOLE_AGENT = 'web-01';

/** One login of each role the console meets. */
export const CONSOLE_USERS = {
  agent: { username: CONSOLE_AGENT, password: 'pw-console-agent-51c0', role: 'agent', agentId: CONSOLE_AGENT },
  recorder: { username: 'recorder', password: 'pw-console-recorder-9a2e', role: 'recorder' },
  controller: { username: 'ops', password: 'pw-console-controller-7d13', role: 'controller' },
  viewer: { username: 'dash', password: 'pw-console-viewer-c4e8', role: 'viewer' },
} as const satisfies Record<string, { username: string; password: string; role: FsoRole; agentId?: string }>;

export interface ConsoleStack {
  broker: Broker;
  recorder: Recorder;
  agent: Agent;
  console: Console;
  /** The agent's watched directory. */
  watched: string;
  auditDir: string;
  close(): Promise<void>;
}

/**
 * Starts broker (auth, ws), recorder, agent `web-01` (important: `**\/*.conf`) and the console, all on free ports;
 * the console searches through its index unless `index` is false.
 */
export async function startConsoleStack(options: { webRoot?: string; index?: boolean } = {}): Promise<ConsoleStack> {
  const tmp = await createTempDir('fso-console-');
  const root = tmp.path;
  const watched = path.join(root, 'watched');
  const auditDir = path.join(root, 'audit');
  await mkdir(watched, { recursive: true });
  const passwordFile = async (user: { username: string; password: string }): Promise<string> => {
    const file = path.join(root, `${user.username}.password`);
    await writeFile(file, user.password, { mode: 0o600 });
    return file;
  };
  const authFile = await writeTestAuthFile(root, Object.values(CONSOLE_USERS));
  const broker = await startBroker({ port: 0, wsPort: 0, auth: { authFile } });
  const recorder = await startRecorder({
    brokerUrl: broker.url, dir: auditDir, username: CONSOLE_USERS.recorder.username, passwordFile: await passwordFile(CONSOLE_USERS.recorder),
  });
  const agent = await startAgent({
    agentId: CONSOLE_AGENT, brokerUrl: broker.url, stateDir: path.join(root, 'agent-state'), pairWindowMs: 100,
    // As the fso-agent bin runs by default: as root, fanotify names who made each change.
    who: 'auto',
    username: CONSOLE_USERS.agent.username, passwordFile: await passwordFile(CONSOLE_USERS.agent),
    initialConfig: parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }] }, 'test'),
  });
  await agent.ready();
  const consoleServer = await startConsole({
    auditDir, brokerUrl: broker.url, wsUrl: broker.wsUrl as string, port: 0, verifyIntervalMs: 500,
    ...(options.index === false ? {} : { indexDir: path.join(root, 'console-index') }),
    ...(options.webRoot === undefined ? {} : { webRoot: options.webRoot }),
  });
  let closing: Promise<void> | undefined;
  return {
    broker, recorder, agent, console: consoleServer, watched, auditDir,
    close: () => {
      closing ??= (async () => {
        await consoleServer.close();
        await agent.close();
        await recorder.close();
        await broker.close();
        await tmp.cleanup();
      })();
      return closing;
    },
  };
}
