// The header's badge: the recorder's hash chain as the console last
// verified it (GET /api/verify), polled every few seconds.
import { api } from './api.js';
import { h } from './dom.js';
import type { VerifyReport } from './types.js';

/** How often the badge asks again. */
export const VERIFY_POLL_MS = 3_000;

/** The badge's text and tone for a verify report. */
export function badgeOf(report: VerifyReport): { text: string; tone: 'ok' | 'bad' | 'pending' } {
  if (report.result?.ok) return { text: `trail intact (${report.result.lines.toLocaleString()} line${report.result.lines === 1 ? '' : 's'})`, tone: 'ok' };
  const f = report.result?.failure;
  if (report.result && f) return { text: `broken at ${f.file}:${f.line}: ${f.reason}`, tone: 'bad' };
  if (report.error) return { text: `verify failed: ${report.error}`, tone: 'bad' };
  return { text: report.running ? 'verifying the trail…' : 'not verified yet', tone: 'pending' };
}

/**
 * Creates the badge and starts polling; `close()` stops it.
 *
 * @example
 * header.append(createIntegrityBadge().element);
 */
export function createIntegrityBadge(): { element: HTMLElement; close(): void } {
  const element = h('span', { class: 'badge pending', testid: 'integrity', title: 'the audit trail\'s hash chain, verified by the console' }, 'verifying the trail…');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const poll = async (): Promise<void> => {
    try {
      const { text, tone } = badgeOf(await api<VerifyReport>('/api/verify'));
      element.textContent = text;
      element.className = `badge ${tone}`;
      element.title = `the audit trail's hash chain, asked at ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      element.textContent = `verify unavailable: ${(err as Error).message}`;
      element.className = 'badge pending';
    }
    if (!closed) timer = setTimeout(() => void poll(), VERIFY_POLL_MS);
  };
  void poll();
  return {
    element,
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
  };
}
