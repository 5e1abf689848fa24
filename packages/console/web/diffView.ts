// A diff message drawn for people: hunks with added lines green, removed
// red, context plain, and the agent's redaction markers highlighted.
import { h } from './dom.js';
import type { FsoDiff } from './types.js';

const SKIPPED: Record<string, string> = {
  binary: 'binary file: no text diff',
  'too-large': 'too large: the file or its patch is over the agent\'s diff limit',
  timeout: 'the diff took longer than the agent\'s diff.timeoutMs',
  unreadable: 'the agent could not read the file',
  nodiff: 'nodiff: this file\'s content never leaves its host',
};

const MARKER = /\[REDACTED:[^\]:]+:[0-9a-f]+\]/g;

/** One patch line, with each `[REDACTED:kind:hash]` in a highlighted mark. */
function lineWithMarkers(cls: string, text: string): HTMLElement {
  const line = h('div', { class: `dl ${cls}` });
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    if (m.index > last) line.append(text.slice(last, m.index));
    line.append(h('mark', { class: 'redacted', testid: 'redaction', title: 'a secret the agent redacted' }, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length || text === '') line.append(text.slice(last) || ' ');
  return line;
}

/**
 * Renders a diff: a header (+added −removed, redactions), then the patch
 * line by line, or why it was skipped.
 *
 * @example
 * panel.append(renderDiff(diff));
 */
export function renderDiff(diff: FsoDiff): HTMLElement {
  const redactions = (diff.redactions ?? []).map((r) => `${r.count}× ${r.kind}`).join(', ');
  const head = h('div', { class: 'diff-head' },
    h('span', { class: 'added' }, `+${diff.added}`), ' ', h('span', { class: 'removed' }, `−${diff.removed}`),
    redactions ? h('span', { class: 'redaction-note' }, ` · redacted: ${redactions}`) : null);
  if (diff.skipped || diff.patch === null) {
    const reason = diff.skipped ?? 'unknown';
    return h('div', { class: 'diff', testid: 'diff' }, head,
      h('p', { class: 'diff-skipped', testid: 'diff-skipped' }, `No patch: ${SKIPPED[reason] ?? reason}`));
  }
  const body = h('div', { class: 'diff-body' });
  let inHunk = false; // `--- a/x` is a header before the first hunk, a removed `-- x` line after it
  for (const text of diff.patch.replace(/\n$/, '').split('\n')) {
    if (!inHunk && (text.startsWith('+++') || text.startsWith('---'))) body.append(lineWithMarkers('file', text));
    else if (text.startsWith('@@')) {
      inHunk = true;
      body.append(lineWithMarkers('hunk', text));
    }
    else if (text.startsWith('+')) body.append(lineWithMarkers('add', text));
    else if (text.startsWith('-')) body.append(lineWithMarkers('del', text));
    else if (text.startsWith('\\')) body.append(lineWithMarkers('note', text));
    else body.append(lineWithMarkers('ctx', text));
  }
  return h('div', { class: 'diff', testid: 'diff' }, head, body);
}
