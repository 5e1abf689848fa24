// The console's web app in a real browser (headless Chromium) against a real
// stack: broker with logins and WebSocket, recorder, agent web-01, console.
import { spawnSync } from 'node:child_process';
import { realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asUser, computedStyle, launchChromium, logIn, openPage, screenshotDir } from './browser.js';
import type { TestPage } from './browser.js';
import { CONSOLE_AGENT, CONSOLE_USERS, startConsoleStack } from './consoleStack.js';
import type { ConsoleStack } from './consoleStack.js';

let stack: ConsoleStack;
let browser: Browser;
let shots: string;
/** FSO_SCREENSHOT=1 writes docs/console.png from the live view. */
const DOCS_SHOT = process.env.FSO_SCREENSHOT === '1' ? fileURLToPath(new URL('../docs/console.png', import.meta.url)) : undefined;

beforeAll(async () => {
  browser = await launchChromium();
  stack = await startConsoleStack();
  shots = await screenshotDir();
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

describe('console in a browser, as the viewer', () => {
  let viewer: TestPage;
  beforeAll(async () => {
    viewer = await openPage(browser, stack.console.url);
  });
  afterAll(async () => {
    await viewer?.context.close();
  });

  it('refuses a wrong password with the broker\'s reason, then logs in', async () => {
    const { page } = viewer;
    await page.getByTestId('login-username').fill(CONSOLE_USERS.viewer.username);
    await page.getByTestId('login-password').fill('wrong');
    await page.getByTestId('login-submit').click();
    await expect.poll(() => page.getByTestId('login-error').textContent(), { timeout: 10_000 }).toBe('bad username or password');
    await logIn(page, CONSOLE_USERS.viewer);
    expect(await page.getByTestId('user').textContent()).toBe(CONSOLE_USERS.viewer.username);
  });

  it('shows web-01 online in the fleet, and the trail intact in the header', async () => {
    const { page } = viewer;
    await page.getByTestId('tab-fleet').click();
    const row = page.locator(`[data-testid=fleet-row][data-agent="${CONSOLE_AGENT}"]`);
    await expect.poll(() => row.getByTestId('fleet-state').textContent(), { timeout: 10_000 }).toBe('online');
    expect(await row.getByTestId('fleet-config').textContent()).toMatch(/^rev 0 · applied/);
    await expect.poll(() => page.getByTestId('integrity').textContent(), { timeout: 15_000 }).toMatch(/^trail intact \(\d[\d,]* lines?\)$/);
    await page.screenshot({ path: path.join(shots, 'fleet.png') });
  });

  it('shows a written file\'s event in the live view within a second of the write', async () => {
    const { page } = viewer;
    await page.getByTestId('tab-live').click();
    await page.getByTestId('view-live').waitFor();
    const latencies: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      const name = `latency-${i}.txt`;
      const row = page.locator('[data-testid=live-row]', { hasText: name });
      const start = Date.now();
      await writeFile(path.join(stack.watched, name), `${i}\n`);
      await row.first().waitFor({ timeout: 10_000 });
      latencies.push(Date.now() - start);
    }
    // The issue's figure: an event on screen within 1 s of the write. Printed, so a slow run shows by how much.
    process.stdout.write(`console live latency, write → row (ms): ${latencies.join(', ')}\n`);
    expect(Math.min(...latencies)).toBeLessThanOrEqual(1_000);
    expect(latencies.filter((ms) => ms > 1_000).length).toBeLessThanOrEqual(1);
  });

  it('shows who made a change: in the row, and user, process and executable in its detail', async () => {
    const { page } = viewer;
    const file = path.join(stack.watched, 'who-wrote-this.txt');
    // Written by a process of its own (the agent runs in this one, and leaves its own writes out), alive a moment after.
    const writer = spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(file)}, 'x\\n'); setTimeout(() => {}, 200)`]);
    expect(writer.status).toBe(0);
    const row = page.locator('[data-testid=live-row].t-create', { hasText: 'who-wrote-this.txt' }).first();
    await row.waitFor({ timeout: 10_000 });
    const root = process.getuid?.() === 0;
    // As root the agent names the writer, else it says why it cannot.
    expect(await row.textContent()).toContain(root ? `root(0) node[${writer.pid}]` : 'who: not-root');
    await row.click();
    const meta = page.getByTestId('live-detail').locator('dl.meta-list');
    await expect.poll(() => meta.textContent()).toContain(root ? 'userroot (0)' : 'whounknown (not-root)');
    if (root) expect(await meta.textContent()).toContain(`exe${await realpath(process.execPath)}`);
  });

  it('opens an important file\'s diff with added and removed lines coloured', async () => {
    const { page } = viewer;
    const file = path.join(stack.watched, 'nginx.conf');
    await writeFile(file, 'worker_processes 1;\nlisten 80;\npassword = hunter2-secret-value\n');
    // The create's diff (all three lines added) first, so the modify below is the second write's alone.
    await page.locator('[data-testid=live-row].t-diff', { hasText: 'nginx.conf' }).filter({ hasText: '+3 −0' }).first().waitFor({ timeout: 10_000 });
    await writeFile(file, 'worker_processes 4;\nlisten 80;\npassword = another-secret-value\n');
    await page.locator('[data-testid=live-row].t-diff', { hasText: 'nginx.conf' }).filter({ hasText: '+2 −2' }).first().waitFor({ timeout: 10_000 });
    // A click on the event (not the diff row) opens the diff that belongs to it (agentId + eventId).
    await page.locator('[data-testid=live-row].t-modify', { hasText: 'nginx.conf' }).first().click();
    const diff = page.getByTestId('live-detail').getByTestId('diff');
    await diff.waitFor({ timeout: 10_000 });
    const added = diff.locator('.dl.add', { hasText: 'worker_processes 4;' });
    const removed = diff.locator('.dl.del', { hasText: 'worker_processes 1;' });
    await expect.poll(() => added.count()).toBe(1);
    await expect.poll(() => removed.count()).toBe(1);
    // Green and red, not merely classed.
    expect(await computedStyle(added, 'backgroundColor')).toBe('rgb(230, 246, 234)');
    expect(await computedStyle(removed, 'backgroundColor')).toBe('rgb(253, 236, 234)');
    expect(await diff.locator('.dl.ctx', { hasText: 'listen 80;' }).count()).toBe(1);
    // The agent redacted the password; the marker stands out.
    const marks = diff.getByTestId('redaction');
    await expect.poll(() => marks.count()).toBeGreaterThanOrEqual(2);
    expect(await marks.first().textContent()).toMatch(/^\[REDACTED:[^:\]]+:[0-9a-f]+\]$/);
    expect(await diff.textContent()).not.toContain('hunter2');
    await page.screenshot({ path: path.join(shots, 'live-diff.png') });
  });

  it('says why a diff was skipped', async () => {
    const { page } = viewer;
    await writeFile(path.join(stack.watched, 'blob.conf'), Buffer.from([0, 1, 2, 0, 255, 0]));
    const row = page.locator('[data-testid=live-row].t-diff', { hasText: 'blob.conf' }).first();
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('.c-info').textContent()).toBe('skipped: binary');
    await row.click();
    await expect.poll(() => page.getByTestId('live-detail').getByTestId('diff-skipped').textContent()).toBe('No patch: binary file: no text diff');
  });

  it('shows a file name made of HTML as text: no element, no script', async () => {
    const { page, dialogs, errors } = viewer;
    const name = '<img src=x onerror=alert(1)>.txt';
    await writeFile(path.join(stack.watched, name), 'html in a name\n');
    const row = page.locator('[data-testid=live-row]', { hasText: name }).first();
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('.c-path').textContent()).toBe(path.join(stack.watched, name));
    await row.click();
    await expect.poll(() => page.getByTestId('live-detail').locator('h3').textContent()).toBe(path.join(stack.watched, name));
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('filters the live stream by path glob and type, and pauses while counting what arrives', async () => {
    const { page } = viewer;
    await page.getByTestId('live-path').fill('**/*.conf');
    await expect.poll(async () => (await page.locator('[data-testid=live-row]:visible .c-path').allTextContents()).every((p) => p.endsWith('.conf'))).toBe(true);
    await page.getByTestId('live-path').fill('');
    await page.getByTestId('live-type').selectOption('diff');
    await expect.poll(async () => (await page.locator('[data-testid=live-row]:visible .c-type').allTextContents()).every((t) => t === 'diff')).toBe(true);
    await page.getByTestId('live-type').selectOption('');
    await page.getByTestId('live-pause').click();
    await writeFile(path.join(stack.watched, 'while-paused.txt'), 'x\n');
    await expect.poll(() => page.getByTestId('live-held').textContent(), { timeout: 10_000 }).toMatch(/^paused · [1-9]\d* new$/);
    expect(await page.locator('[data-testid=live-row]', { hasText: 'while-paused.txt' }).count()).toBe(0);
    await page.getByTestId('live-pause').click();
    await page.locator('[data-testid=live-row]', { hasText: 'while-paused.txt' }).first().waitFor({ timeout: 5_000 });
  });

  it('searches the trail a page at a time, opens a path\'s history with its diffs, and shows the tree', async () => {
    const { page } = viewer;
    for (let i = 0; i < 60; i += 1) await writeFile(path.join(stack.watched, `page-${String(i).padStart(2, '0')}.txt`), `${i}\n`);
    await page.getByTestId('tab-search').click();
    await page.getByTestId('search-type').selectOption('create');
    await page.getByTestId('search-path').fill('**/page-*.txt');
    await page.getByTestId('search-last-24h').click();
    const range = page.getByTestId('search-range');
    // The recorder writes as the events come: search again until all 60 are in the trail.
    await expect.poll(async () => {
      await page.getByTestId('search-submit').click();
      return range.textContent();
    }, { timeout: 20_000, interval: 300 }).toBe('1–50 of 60');
    expect(await page.getByTestId('search-row').count()).toBe(50);
    await page.getByTestId('search-next').click();
    await expect.poll(() => range.textContent()).toBe('51–60 of 60');
    expect(await page.getByTestId('search-row').count()).toBe(10);
    expect(await page.getByTestId('search-next').isDisabled()).toBe(true);
    await page.getByTestId('search-prev').click();
    await expect.poll(() => range.textContent()).toBe('1–50 of 60');

    // A bad parameter is shown next to its field.
    await page.getByTestId('search-until').fill('2000-01-01T00:00:00');
    await page.getByTestId('search-submit').click();
    await expect.poll(() => page.getByTestId('error-until').textContent()).toMatch(/must be after since$/);
    await page.getByTestId('search-until').fill('');

    // History: every event and diff of nginx.conf, oldest first, diffs drawn.
    await page.getByTestId('search-type').selectOption('');
    await page.getByTestId('search-path').fill('**/nginx.conf');
    await page.getByTestId('search-submit').click();
    await page.getByTestId('search-path-link').first().click();
    const history = page.getByTestId('history');
    await history.getByTestId('history-item').first().waitFor({ timeout: 10_000 });
    const kinds = (await history.getByTestId('history-item').locator('strong').allTextContents());
    expect(kinds[0]).toBe('create');
    expect(kinds).toEqual(expect.arrayContaining(['modify', 'diff']));
    expect(await history.locator('.dl.add', { hasText: 'worker_processes 4;' }).count()).toBe(1);

    // The tree the trail replays.
    await page.getByTestId('tree-agent').fill(CONSOLE_AGENT);
    await page.getByTestId('tree-under').fill(stack.watched);
    await page.getByTestId('tree-submit').click();
    await expect.poll(async () => (await page.getByTestId('tree-row').allTextContents()).some((t) => t.includes(path.join(stack.watched, 'nginx.conf'))), { timeout: 10_000 }).toBe(true);
    await page.screenshot({ path: path.join(shots, 'search.png'), fullPage: true });

    // The picture in docs/: the live view after all of the above, nginx.conf's diff open.
    // The row is far down by now: find it through the path filter, select it, clear the filter.
    await page.getByTestId('tab-live').click();
    await page.getByTestId('live-path').fill('**/nginx.conf');
    await page.locator('[data-testid=live-row].t-modify', { hasText: 'nginx.conf' }).first().click();
    await page.getByTestId('live-detail').getByTestId('diff').waitFor();
    await page.getByTestId('live-path').fill('');
    if (DOCS_SHOT) await page.screenshot({ path: DOCS_SHOT });
  });
});

describe('console in a browser: configs', () => {
  it('as the controller: no live stream, a valid config applied, an invalid one refused field by field', async () => {
    await asUser(browser, stack.console.url, CONSOLE_USERS.controller, async (page) => {
      await page.getByTestId('tab-live').click();
      expect(await page.getByTestId('view-live').getByTestId('no-access').textContent()).toContain('may not read the agents\' events and diffs');
      await page.getByTestId('tab-search').click();
      await page.getByTestId('view-search').getByTestId('no-access').waitFor({ state: 'visible' });

      await page.getByTestId('tab-config').click();
      await page.getByTestId(`config-target-${CONSOLE_AGENT}`).click();
      const editor = page.getByTestId('config-editor');
      const verdict = page.getByTestId('config-verdict');
      // Revision left at 0 on purpose: the page bumps it past the one in force.
      await editor.fill(JSON.stringify({ schema: 'fso.config/1', revision: 0, watch: [{ path: stack.watched, important: ['**/*.conf'], exclude: ['**/*.swp'] }] }));
      await page.getByTestId('config-push').click();
      await expect.poll(() => verdict.textContent(), { timeout: 20_000 }).toBe(`${CONSOLE_AGENT}: revision 1 applied`);
      expect(await page.getByTestId('config-note').textContent()).toBe('revision set to 1 (the current one was 0)');
      await expect.poll(() => page.getByTestId('config-json').textContent(), { timeout: 10_000 }).toContain('**/*.swp');
      await expect.poll(() => page.getByTestId('config-status').textContent()).toContain('revision 1 applied');

      await editor.fill(JSON.stringify({ schema: 'fso.config/1', revision: 5, watch: [{ path: 'relative/dir' }] }));
      await page.getByTestId('config-push').click();
      const issue = page.locator('[data-testid=config-issue][data-path="watch.0.path"]');
      await issue.waitFor({ timeout: 10_000 });
      expect(await issue.textContent()).toMatch(/^watch\.0\.path .+/);
      expect(await verdict.isHidden()).toBe(true);
      await page.screenshot({ path: path.join(shots, 'config-controller.png'), fullPage: true });
    });
  });

  it('as the viewer: the config as recorded in the trail, and a push refused by the broker', async () => {
    await asUser(browser, stack.console.url, CONSOLE_USERS.viewer, async (page) => {
      await page.getByTestId('tab-config').click();
      await page.getByTestId(`config-target-${CONSOLE_AGENT}`).click();
      await expect.poll(() => page.getByTestId('config-source').textContent(), { timeout: 10_000 }).toMatch(/^as recorded in the trail \(events-.+\.jsonl:\d+/);
      await page.getByTestId('config-push').click();
      await expect.poll(() => page.getByTestId('config-verdict').textContent(), { timeout: 20_000 }).toBe('refused by the broker (your role may not push configs)');
      await page.screenshot({ path: path.join(shots, 'config-viewer.png'), fullPage: true });
    });
  });
});
