import { TAIL_TYPES, parseSince } from '@fso/audit-trail';
import type { AuditQuery } from '@fso/audit-trail';
import { z } from 'zod';
import { BadRequestError } from './errors.js';

/** The largest page the API returns: a huge result is paged, never loaded whole. */
export const MAX_PAGE = 1_000;

const text = (max: number) => z.string().min(1, 'must not be empty').max(max, `at most ${max} characters`);
// `since`/`until`: an ISO time, or a duration back from now (`24h`), as `fso-audit query` takes them.
const time = (name: string) =>
  z.string().transform((value, ctx) => {
    try {
      return parseSince(value).getTime();
    } catch {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is neither an ISO time nor a duration like 24h` });
      return z.NEVER;
    }
  }).describe(name);
const whole = (min: number, max: number) => z.string().regex(/^\d+$/, 'a whole number').transform(Number).pipe(z.number().int().min(min).max(max));

const agent = text(256);
const searchSchema = z.strictObject({
  agent: agent.optional(),
  type: z.enum(TAIL_TYPES as [string, ...string[]], { message: `one of ${TAIL_TYPES.join(', ')}` }).optional(),
  path: text(4096).optional(),
  text: text(4096).optional(),
  since: time('since').optional(),
  until: time('until').optional(),
  limit: whole(0, MAX_PAGE).optional(),
  offset: whole(0, 100_000_000).optional(),
});
const historySchema = z.strictObject({ path: text(4096), agent: agent.optional() });
const treeSchema = z.strictObject({ agent, under: text(4096).optional(), until: time('until').optional() });

function parse<T extends z.ZodType>(schema: T, params: URLSearchParams): z.output<T> {
  const raw: Record<string, string> = {};
  for (const [key, value] of params) {
    if (key in raw) throw new BadRequestError('given more than once', key);
    raw[key] = value;
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.path.length ? issue.path.join('.') : issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : undefined;
  throw new BadRequestError(issue?.code === 'unrecognized_keys' ? 'not a parameter of this query' : (issue?.message ?? 'invalid'), field);
}

/** `GET /api/records`'s parameters as a query of the trail; throws {@link BadRequestError} with the parameter named. */
export function searchQuery(params: URLSearchParams): AuditQuery {
  const q = parse(searchSchema, params);
  if (q.since !== undefined && q.until !== undefined && q.since >= q.until) throw new BadRequestError('must be after since', 'until');
  return { ...q, limit: q.limit ?? 100, offset: q.offset ?? 0 };
}

/** `GET /api/history`'s parameters. */
export function historyQuery(params: URLSearchParams): { path: string; agent?: string } {
  return parse(historySchema, params);
}

/** `GET /api/tree`'s parameters. */
export function treeQuery(params: URLSearchParams): { agent: string; under?: string; until?: number } {
  return parse(treeSchema, params);
}
