/** TLS for both listeners (mqtts and wss), from PEM files. */
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { TlsOptions as NodeTlsOptions } from 'node:tls';
import { KeyFileError } from './errors.js';

/** PEM files of the broker's TLS identity. */
export interface TlsFiles {
  /** Certificate chain (the server's first, then intermediates). */
  certFile: string;
  keyFile: string;
  /**
   * CA bundle for client certificates. When given, every client must present
   * a certificate it signed (mutual TLS), on top of any password or token.
   */
  caFile?: string;
}

async function readPem(purpose: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new KeyFileError(purpose, file, (err as Error).message, { cause: err });
  }
}

/**
 * Reads the files into Node TLS server options (TLS 1.2 at least), checked by
 * building a secure context once so a key that does not match its
 * certificate fails here, at start, and not at the first client.
 *
 * @throws {KeyFileError} naming the file that cannot be read or used.
 */
export async function loadTlsOptions(files: TlsFiles): Promise<NodeTlsOptions> {
  const cert = await readPem('tls cert', files.certFile);
  const key = await readPem('tls key', files.keyFile);
  const ca = files.caFile === undefined ? undefined : await readPem('tls ca', files.caFile);
  const options: NodeTlsOptions = {
    cert,
    key,
    minVersion: 'TLSv1.2',
    ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}),
  };
  try {
    createSecureContext(options);
  } catch (err) {
    const file = /key/i.test((err as Error).message) ? files.keyFile : files.certFile;
    throw new KeyFileError('tls', file, (err as Error).message, { cause: err });
  }
  return options;
}
