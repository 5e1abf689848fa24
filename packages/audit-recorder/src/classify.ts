import {
  agentConfigSchema,
  alertSchema,
  diffSchema,
  eventSchema,
  gapMessageSchema,
  MAX_SMALL_PAYLOAD_BYTES,
  formatIssues,
  parseJson,
  parseTopic,
  statusSchema,
} from '@fso/common';
import type { AgentStatus, ParsedTopic } from '@fso/common';
import { RECORDER_FIELDS } from './ledger.js';

/** Longest payload text kept in a rejected record. */
export const REJECTED_PAYLOAD_CHARS = 4096;

/** A valid message, to be recorded in the events or diffs file. */
export interface RecordEntry {
  type: 'record';
  file: 'events' | 'diffs';
  record: 'event' | 'diff' | 'gap' | 'status' | 'config' | 'alert';
  topic: string;
  receivedAt: string;
  retained: boolean;
  /** The message's own fields, in their order (`{ cleared: true }` for a cleared config). */
  fields: Record<string, unknown>;
  agentId?: string;
  epoch?: string;
  seq?: number;
  /** An alert's `id`: the recorder writes one id once. */
  alertId?: string;
  /** A status's `outbox.lost`: seq ranges its agent gave up (outbox full), to be written as gaps. */
  lost?: ReadonlyArray<{ fromSeq: number; toSeq: number }>;
}

/** A message that failed validation, to be recorded in the rejected file. */
export interface RejectedEntry {
  type: 'rejected';
  topic: string;
  reason: string;
  /** The payload as UTF-8, cut to {@link REJECTED_PAYLOAD_CHARS}. */
  payload: string;
  payloadBytes: number;
  retained: boolean;
  receivedAt: string;
}

/** A seq range that can never arrive, to be recorded as a `gap` record. */
export interface GapEntry {
  type: 'gap';
  agentId: string;
  epoch: string;
  fromSeq: number;
  toSeq: number;
  reason: string;
  topic: string;
  receivedAt: string;
  /** True when the range was announced (it may lie beyond every seq seen); false when closing an epoch. */
  announced: boolean;
}

/** What the writer takes from its queue. */
export type Inbound = RecordEntry | RejectedEntry | GapEntry;

/** One MQTT message as received. */
export interface IncomingMessage {
  topic: string;
  payload: Buffer;
  retained: boolean;
  receivedAt: string;
}

/**
 * Turns one MQTT message into what the recorder writes: a record, a
 * rejected record (with the reason), or undefined for the recorder's own
 * `ack` output, which it ignores.
 */
export function classifyMessage(message: IncomingMessage, prefix: string): Inbound | undefined {
  const { topic, payload, retained, receivedAt } = message;
  const reject = (reason: string): RejectedEntry => ({
    type: 'rejected',
    topic,
    reason,
    // Decode only what can be kept: a huge payload is never converted whole.
    payload: payload.subarray(0, REJECTED_PAYLOAD_CHARS * 4).toString('utf8').slice(0, REJECTED_PAYLOAD_CHARS),
    payloadBytes: payload.length,
    retained,
    receivedAt,
  });
  const parsed = parseTopic(topic, prefix);
  if (!parsed) return reject('not a known FSO topic');
  if (parsed.kind === 'ack') return undefined;
  const isConfig = parsed.kind === 'config' || parsed.kind === 'defaultConfig';
  const base = { type: 'record' as const, topic, receivedAt, retained };
  if (payload.length === 0) {
    // An empty retained payload deletes the retained config (MQTT-3.3.1-10): the config was cleared.
    return isConfig ? { ...base, file: 'events', record: 'config', fields: { cleared: true } } : reject('empty payload');
  }
  // Only a diff carries bulk; anything else this large is not an FSO message.
  if (parsed.kind !== 'diff' && payload.length > MAX_SMALL_PAYLOAD_BYTES) {
    return reject(`payload of ${payload.length} bytes exceeds ${MAX_SMALL_PAYLOAD_BYTES} for a ${parsed.kind} message`);
  }
  const json = parseJson(payload);
  if (!json.ok) return reject(json.error);
  const value = json.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return reject('payload is not a JSON object');
  const fields = value as Record<string, unknown>;
  const reserved = RECORDER_FIELDS.find((key) => Object.hasOwn(fields, key));
  if (reserved) return reject(`field "${reserved}" is reserved for the recorder`);
  const problem = validate(parsed, fields);
  if (problem) return reject(problem);
  switch (parsed.kind) {
    case 'event':
    case 'diff':
    case 'gap':
      return {
        ...base,
        file: parsed.kind === 'diff' ? 'diffs' : 'events',
        record: parsed.kind,
        fields,
        agentId: parsed.agentId,
        epoch: fields.epoch as string,
        seq: fields.seq as number,
      };
    case 'alert':
      return { ...base, file: 'events', record: 'alert', fields, alertId: fields.id as string };
    case 'status': {
      // Validated by statusSchema above.
      const { epoch, outbox } = fields as Pick<AgentStatus, 'epoch' | 'outbox'>;
      return { ...base, file: 'events', record: 'status', fields, agentId: parsed.agentId, epoch, lost: outbox?.lost };
    }
    default:
      return { ...base, file: 'events', record: 'config', fields };
  }
}

/** Why `fields` is not a valid message for its topic, or undefined when it is. */
function validate(parsed: Exclude<ParsedTopic, { kind: 'ack' }>, fields: Record<string, unknown>): string | undefined {
  const result =
    parsed.kind === 'event'
      ? eventSchema.safeParse(fields)
      : parsed.kind === 'diff'
        ? diffSchema.safeParse(fields)
        : parsed.kind === 'gap'
          ? gapMessageSchema.safeParse(fields)
          : parsed.kind === 'status'
            ? statusSchema.safeParse(fields)
            : parsed.kind === 'alert'
              ? alertSchema.safeParse(fields)
              : agentConfigSchema.safeParse(fields);
  if (!result.success) return `invalid ${parsed.kind === 'defaultConfig' ? 'config' : parsed.kind}: ${formatIssues(result.error).join('; ')}`;
  if ('agentId' in parsed && fields.agentId !== undefined && fields.agentId !== parsed.agentId) {
    return `agentId ${JSON.stringify(fields.agentId)} does not match the topic's agent ${JSON.stringify(parsed.agentId)}`;
  }
  if (parsed.kind === 'alert' && fields.rule !== parsed.ruleId) {
    return `rule ${JSON.stringify(fields.rule)} does not match the topic's rule ${JSON.stringify(parsed.ruleId)}`;
  }
  if (parsed.kind === 'event' && fields.type !== parsed.eventType) {
    return `type ${JSON.stringify(fields.type)} does not match the topic's event type ${JSON.stringify(parsed.eventType)}`;
  }
  return undefined;
}
