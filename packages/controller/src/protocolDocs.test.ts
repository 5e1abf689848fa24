/**
 * docs/protocol.md and docs/schemas/ are for clients not written in
 * TypeScript; these tests keep them true to @fso/common so they cannot rot.
 * (They live here because the controller is the package that publishes
 * configs by that contract; scripts/genSchemas.mjs does the generation.)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as common from '@fso/common';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);
const docPath = fileURLToPath(new URL('docs/protocol.md', root));

interface GenSchemas {
  SCHEMAS_DIR: string;
  generateSchemas(common: Record<string, unknown>): Map<string, string>;
  staleSchemaFiles(files: Map<string, string>, dir?: string): Promise<string[]>;
}
// The script is plain JS run by node; loaded by URL so it needs no type declarations.
const loadScript = async (): Promise<GenSchemas> => (await import(new URL('scripts/genSchemas.mjs', root).href)) as GenSchemas;

/** The fenced block after each `<!-- example: NAME -->` marker. */
function examples(doc: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of doc.matchAll(/<!-- example: ([\w-]+) -->\s*```\w*\n([\s\S]*?)```/g)) {
    found.set(match[1] ?? '', match[2] ?? '');
  }
  return found;
}

const schemas: Record<string, { parse(value: unknown): unknown }> = {
  event: common.eventSchema,
  diff: common.diffSchema,
  'gap-message': common.gapMessageSchema,
  status: common.statusSchema,
  config: common.agentConfigSchema,
  ack: common.ackSchema,
  gap: common.gapRecordSchema,
  alert: common.alertSchema,
};

describe('docs/schemas', () => {
  it('match what scripts/genSchemas.mjs generates from the zod schemas (run `pnpm schemas` to update)', async () => {
    const script = await loadScript();
    const files = script.generateSchemas(common);
    expect([...files.keys()].sort()).toEqual(Object.keys(schemas).map((n) => `${n}.schema.json`).sort());
    expect(await script.staleSchemaFiles(files)).toEqual([]);
  });

  it('make defaulted config fields optional and keep the config strict', async () => {
    const config = JSON.parse((await loadScript()).generateSchemas(common).get('config.schema.json') ?? '{}') as {
      required: string[];
      additionalProperties: boolean;
      properties: { watch: { items: { required: string[] } } };
    };
    expect(config.required).toEqual(['schema', 'revision', 'watch']);
    expect(config.properties.watch.items.required).toEqual(['path']);
    expect(config.additionalProperties).toBe(false);
  });
});

describe('docs/protocol.md', () => {
  it('has a valid example of every message, with no misspelt field', async () => {
    const found = examples(await readFile(docPath, 'utf8'));
    for (const [name, schema] of Object.entries(schemas)) {
      const text = found.get(name);
      expect(text, `example of ${name}`).toBeDefined();
      const value: unknown = JSON.parse(text ?? '');
      // Parsing strips unknown keys (and fills config defaults): equality means every field is known.
      expect(schema.parse(value), `example of ${name}`).toEqual(value);
    }
  });

  it('shows audit lines that verify by the hash chain rule it states', async () => {
    const lines = (examples(await readFile(docPath, 'utf8')).get('audit-lines') ?? '').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    let prev = '0'.repeat(64);
    for (const line of lines) {
      const match = /,"hash":"([0-9a-f]{64})"\}$/.exec(line);
      expect(match, line).not.toBeNull();
      const text0 = `${line.slice(0, match?.index)}}`;
      expect(createHash('sha256').update(text0, 'utf8').digest('hex')).toBe(match?.[1]);
      const { prevHash, ...fields } = JSON.parse(text0) as Record<string, unknown>;
      expect(prevHash).toBe(prev);
      expect(JSON.stringify({ ...fields, prevHash })).toBe(text0);
      prev = match?.[1] ?? '';
    }
  });

  it('names every topic as @fso/common builds it', async () => {
    const doc = await readFile(docPath, 'utf8');
    const t = common.createTopics();
    const id = '{agentId}';
    for (const topic of [
      t.event(id, '{type}' as common.EventType),
      t.diffs(id),
      t.status(id),
      t.config(id),
      t.ack(id),
      t.defaultConfig(),
      t.all(),
      t.allEvents(),
      t.allStatus(),
    ]) {
      expect(doc).toContain(`\`${topic}\``);
    }
  });
});
