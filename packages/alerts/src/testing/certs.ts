// Test support for this package's tests (kept out of the build by tsconfig.json).
import { execFileSync } from 'node:child_process';
import path from 'node:path';

// The CA and its server certificate: the broker's test support makes them already (test code only, never built).
export { createTestCerts } from '../../../broker/src/testing/certs.js';
export type { TestCerts } from '../../../broker/src/testing/certs.js';

/** PEM files of a self-signed server certificate for 127.0.0.1/localhost: the certificate is its own CA. */
export interface SelfSignedCert {
  cert: string;
  key: string;
}

/** Generates a self-signed certificate `<name>.pem` (and `<name>.key`) for 127.0.0.1/localhost into `dir`, with the openssl command line. */
export function createSelfSignedCert(dir: string, name = 'self-signed'): SelfSignedCert {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { cwd: dir, stdio: 'pipe' });
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}
