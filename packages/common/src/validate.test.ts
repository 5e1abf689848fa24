import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES, parseJson } from './validate.js';

describe('parseJson', () => {
  it('parses JSON objects and says why anything else fails', () => {
    expect(parseJson('{"a":[1,{"b":2}]}')).toEqual({ ok: true, value: { a: [1, { b: 2 }] } });
    expect(parseJson('{nope')).toMatchObject({ ok: false, error: expect.stringContaining('not JSON') });
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH} levels without recursing (a 20,000-deep bomb)`, () => {
    const ok = `${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}`;
    expect(parseJson(ok).ok).toBe(true);
    const deep = `{"schema":"x","pad":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
    expect(parseJson(deep)).toEqual({ ok: false, error: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` });
  });

  it('refuses a payload over the size bound unparsed', () => {
    expect(parseJson(Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20))).toMatchObject({ ok: false, error: expect.stringContaining('exceeds') });
  });
});
