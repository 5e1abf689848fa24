#!/usr/bin/env node
/**
 * Writes docs/schemas/*.schema.json (JSON Schema 2020-12) from the zod
 * schemas of @fso/common, for clients not written in TypeScript.
 *
 *   pnpm schemas              # builds common, then runs this script
 *   node scripts/genSchemas.mjs [--check]
 *
 * `--check` writes nothing and exits 1 when a file is missing or stale.
 * packages/controller/src/protocolDocs.test.ts runs the same check against
 * common's sources, so the files cannot rot.
 *
 * Every schema is generated for zod's input side (`io: 'input'`): what
 * FSO's validators accept. So fields with defaults are optional in the
 * config schema, and message schemas allow extra fields (receivers ignore
 * them), while the config stays strict (`additionalProperties: false`).
 * zod 4 schemas carry `toJSONSchema()` (the same converter as
 * `z.toJSONSchema`), so this script needs no zod import of its own.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Where the files go. */
export const SCHEMAS_DIR = fileURLToPath(new URL('../docs/schemas/', import.meta.url));

/** One generated file per message (name → export of @fso/common, title, description). */
export const SCHEMA_FILES = [
  {
    name: 'event',
    schema: 'eventSchema',
    title: 'fso.event/1',
    description: 'One observed change of one path, on fso/agents/{agentId}/events/{type} (QoS 1, not retained).',
  },
  {
    name: 'diff',
    schema: 'diffSchema',
    title: 'fso.diff/1',
    description: 'Unified diff of an important file, after its event, on fso/agents/{agentId}/diffs (QoS 1, not retained).',
  },
  {
    name: 'gap-message',
    schema: 'gapMessageSchema',
    title: 'fso.gap/1',
    description:
      "An agent's announcement that its watcher may have missed changes (inotify queue overflow), on fso/agents/{agentId}/gaps (QoS 1, not retained); sequenced like events and diffs.",
  },
  {
    name: 'status',
    schema: 'statusSchema',
    title: 'fso.status/1',
    description: 'Agent status, retained on fso/agents/{agentId}/status (QoS 1); the last will publishes it with state "offline".',
  },
  {
    name: 'config',
    schema: 'agentConfigSchema',
    title: 'fso.config/1',
    description:
      'Agent config, retained on fso/agents/{agentId}/config or fso/config/default (QoS 1). Strict: unknown keys are an error. Fields with a default may be left out.',
  },
  {
    name: 'ack',
    schema: 'ackSchema',
    title: 'fso.ack/1',
    description: "Recorder acknowledgement, retained on fso/agents/{agentId}/ack (QoS 1): every message of `epoch` up to `seq` is fsync'd in the audit files.",
  },
  {
    name: 'alert',
    schema: 'alertSchema',
    title: 'fso.alert/1',
    description:
      'An alert of fso-alert, on fso/alerts/{ruleId} (QoS 1, not retained): a rule\'s incident firing (again) or resolved. The recorder writes it into the audit trail as an `alert` line.',
  },
  {
    name: 'gap',
    schema: 'gapRecordSchema',
    title: 'gap audit record',
    description:
      "A gap line of DIR/events-YYYY-MM-DD.jsonl: a seq range of an agent that can never arrive (written by the recorder), or an agent's fso.gap/1 message (a time window its watcher may have missed). The line also carries prevHash and hash, see docs/protocol.md.",
  },
];

/**
 * The schema files' contents, by file name (`event.schema.json` → text),
 * from a module namespace that exports common's zod schemas.
 *
 * @param {Record<string, unknown>} common `@fso/common` (its dist, or its sources under vitest)
 * @returns {Map<string, string>}
 */
export function generateSchemas(common) {
  const files = new Map();
  for (const { name, schema, title, description } of SCHEMA_FILES) {
    const zodSchema = common[schema];
    if (typeof zodSchema?.toJSONSchema !== 'function') throw new TypeError(`@fso/common does not export a zod schema ${schema}`);
    const { $schema, ...rest } = zodSchema.toJSONSchema({ io: 'input' });
    const json = { $schema, title, description, ...rest };
    files.set(`${name}.schema.json`, `${JSON.stringify(json, null, 2)}\n`);
  }
  return files;
}

/**
 * The generated files that differ from those in `dir` (missing ones included).
 *
 * @param {Map<string, string>} files from {@link generateSchemas}
 * @param {string} [dir]
 * @returns {Promise<string[]>} file names
 */
export async function staleSchemaFiles(files, dir = SCHEMAS_DIR) {
  const stale = [];
  for (const [name, text] of files) {
    const onDisk = await readFile(path.join(dir, name), 'utf8').catch((err) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (onDisk !== text) stale.push(name);
  }
  return stale;
}

async function run(argv) {
  const commonDist = fileURLToPath(new URL('../packages/common/dist/index.js', import.meta.url));
  const common = await import(pathToFileURL(commonDist).href).catch((err) => {
    throw new Error(`cannot load ${commonDist}: build it first (pnpm --filter @fso/common build)`, { cause: err });
  });
  const files = generateSchemas(common);
  if (argv.includes('--check')) {
    const stale = await staleSchemaFiles(files);
    for (const name of stale) process.stderr.write(`docs/schemas/${name} is out of date: run pnpm schemas\n`);
    return stale.length === 0 ? 0 : 1;
  }
  await mkdir(SCHEMAS_DIR, { recursive: true });
  for (const [name, text] of files) await writeFile(path.join(SCHEMAS_DIR, name), text);
  process.stdout.write(`wrote ${[...files.keys()].map((n) => `docs/schemas/${n}`).join(', ')}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  run(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`genSchemas: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
