import { InvalidArgumentError } from 'commander';
import { parseDuration } from './process.js';

/**
 * Commander argument parser for a TCP port: an integer 0–65535 (0 picks a
 * free one). Every FSO bin's `--port`, `--ws-port` and `--metrics-port` use it.
 *
 * @example
 * new Option('--metrics-port <port>', '…').argParser(portOption)
 */
export function portOption(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65_535) throw new InvalidArgumentError('use an integer from 0 to 65535 (0 picks a free port)');
  return port;
}

/** Commander argument parser for a positive duration (`10`, `2.5`, `500ms`, `5m`, `24h`), in milliseconds. */
export function positiveDurationOption(text: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {
    // Reported below in commander's words.
  }
  throw new InvalidArgumentError('expected a positive duration in seconds (e.g. 10, 2.5, 500ms, 5m)');
}
