import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { EXIT } from './exitCodes.js';

describe('EXIT', () => {
  it('holds exactly the codes docs/protocol.md documents for fso-controller (the contract)', async () => {
    const doc = await readFile(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
    const paragraph = /`fso-controller` exit codes:([\s\S]*?)\n\n/.exec(doc)?.[1];
    expect(paragraph, 'docs/protocol.md has no "`fso-controller` exit codes:" paragraph').toBeDefined();
    const documented = [...(paragraph ?? '').matchAll(/`(\d+)`/g)].map((m) => Number(m[1]));
    expect(documented.sort((a, b) => a - b)).toEqual(Object.values(EXIT).sort((a, b) => a - b));
    expect(EXIT).toEqual({ ok: 0, failed: 1, usage: 2, timeout: 3, unreachable: 4, interrupted: 130 });
  });
});
