// Headless Chromium for the console's browser tests: Debian's /usr/bin/chromium
// driven by playwright-core (which never downloads a browser of its own).
import { access, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';

/** Where CI installs Chromium (`apt-get install chromium`). */
export const CHROMIUM = process.env.FSO_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches headless Chromium; fails (never skips) when it is not installed,
 * so a CI without it goes red instead of green with nothing tested.
 */
export async function launchChromium(): Promise<Browser> {
  try {
    await access(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} is missing: the console's browser tests need Chromium (apt-get install chromium), or FSO_CHROMIUM=/path/to/chromium`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A page in a fresh context (its own cookies), with every page error and dialog recorded. */
export interface TestPage {
  page: Page;
  context: BrowserContext;
  /** Uncaught errors thrown in the page. */
  errors: string[];
  /** Messages of every alert/confirm/prompt the page opened (each is dismissed). */
  dialogs: string[];
}

/** Opens `url` in a new context of `browser`, 1400×820. */
export async function openPage(browser: Browser, url: string): Promise<TestPage> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 820 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const dialogs: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(url);
  return { page, context, errors, dialogs };
}

/** Logs in through the form and waits for the header and the live connection. */
export async function logIn(page: Page, user: { username: string; password: string }): Promise<void> {
  await page.getByTestId('login-username').fill(user.username);
  await page.getByTestId('login-password').fill(user.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('user').waitFor({ timeout: 10_000 });
  await page.locator('[data-testid=link].online').waitFor({ timeout: 10_000 });
}

/** A temp folder for the tests' screenshots. */
export async function screenshotDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'fso-console-shots-'));
}

/** A computed CSS property of the element `locator` finds (the root tsconfig has no DOM lib, hence the cast). */
export async function computedStyle(locator: Locator, property: string): Promise<string> {
  return locator.evaluate((el, prop) => {
    const view = (el as unknown as { ownerDocument: { defaultView: { getComputedStyle(e: unknown): Record<string, string> } } }).ownerDocument.defaultView;
    return view.getComputedStyle(el)[prop] ?? '';
  }, property);
}

/** Runs `fn` on a fresh page logged in as `user`, and closes its context whatever happens. */
export async function asUser(browser: Browser, url: string, user: { username: string; password: string }, fn: (page: Page) => Promise<void>): Promise<void> {
  const { page, context } = await openPage(browser, url);
  try {
    await logIn(page, user);
    await fn(page);
  } finally {
    await context.close();
  }
}
