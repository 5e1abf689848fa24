import { createReadStream } from 'node:fs';

/** One line of a file, with its byte offsets. */
export interface FileLine {
  /** The line without its `\n`, decoded as UTF-8. */
  text: string;
  /** 1-based line number, counted from `fromByte`. */
  number: number;
  /** Byte offset of the line's first byte. */
  start: number;
  /** Byte offset just after the line's `\n` (or after its last byte when incomplete). */
  end: number;
  /** False for a last line without a trailing `\n` (a torn or in-progress write). */
  complete: boolean;
}

const NEWLINE = 0x0a;

/**
 * Streams the lines of a file from byte `fromByte`, without loading it whole.
 * Splitting happens on raw bytes, so a multi-byte UTF-8 character is never cut.
 */
export async function* readLines(file: string, fromByte = 0): AsyncGenerator<FileLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let lineStart = fromByte;
  let number = 0;
  for await (const chunk of createReadStream(file, { start: fromByte, highWaterMark: 256 * 1024 })) {
    const buf = chunk as Buffer;
    let from = 0;
    for (let nl = buf.indexOf(NEWLINE, from); nl !== -1; nl = buf.indexOf(NEWLINE, from)) {
      const piece = buf.subarray(from, nl);
      const bytes = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
      const end = lineStart + pendingBytes + piece.length + 1;
      number++;
      yield { text: bytes.toString('utf8'), number, start: lineStart, end, complete: true };
      pending = [];
      pendingBytes = 0;
      lineStart = end;
      from = nl + 1;
    }
    if (from < buf.length) {
      pending.push(buf.subarray(from));
      pendingBytes += buf.length - from;
    }
  }
  if (pendingBytes > 0) {
    number++;
    const text = Buffer.concat(pending).toString('utf8');
    yield { text, number, start: lineStart, end: lineStart + pendingBytes, complete: false };
  }
}
