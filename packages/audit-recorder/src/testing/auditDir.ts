import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { auditFileName, GENESIS_HASH, sealLine } from '@fso/audit-trail';
import type { AuditFileKind } from '@fso/audit-trail';

/** Every record of one kind in `dir`, files in day order, parsed. */
export async function readKind(dir: string, kind: AuditFileKind): Promise<Array<Record<string, unknown>>> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(`${kind}-`)).sort();
  const records: Array<Record<string, unknown>> = [];
  for (const name of names) {
    const text = await readFile(path.join(dir, name), 'utf8');
    for (const line of text.split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
  }
  return records;
}

/** Writes sealed, chained files of one kind: `days` maps a day to its records' fields. */
export async function writeChain(
  dir: string,
  kind: AuditFileKind,
  days: Record<string, Array<Record<string, unknown>>>,
): Promise<string> {
  let prev = GENESIS_HASH;
  for (const day of Object.keys(days).sort()) {
    const lines = (days[day] ?? []).map((fields) => {
      const sealed = sealLine(fields, prev);
      prev = sealed.hash;
      return sealed.text;
    });
    await writeFile(path.join(dir, auditFileName(kind, day)), `${lines.join('\n')}\n`, { mode: 0o600 });
  }
  return prev;
}
