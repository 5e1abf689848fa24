// Test support for this package's tests (kept out of the build by tsconfig.json).
// Copied from packages/broker/src/testing/certs.ts (packages do not import each other's test support).
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** PEM files of a throwaway CA and a server certificate it signed for 127.0.0.1/localhost. */
export interface TestCerts {
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A second CA that signed nothing here: trusting it must not be enough. */
  otherCaCert: string;
}

/** PEM files of a self-signed server certificate for 127.0.0.1/localhost: the certificate is its own CA. */
export interface SelfSignedCert {
  cert: string;
  key: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function ca(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-days', '2', '-out', `${name}.pem`]);
}

function leaf(dir: string, name: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

/** Generates a CA, a server certificate it signed and an unrelated CA with the openssl command line into `dir`. */
export async function createTestCerts(dir: string): Promise<TestCerts> {
  ca(dir, 'ca');
  ca(dir, 'other-ca');
  await writeFile(path.join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf(dir, 'server');
  const p = (file: string): string => path.join(dir, file);
  return { caCert: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), otherCaCert: p('other-ca.pem') };
}

/** Generates a self-signed certificate `<name>.pem` (and `<name>.key`) for 127.0.0.1/localhost into `dir`. */
export function createSelfSignedCert(dir: string, name = 'self-signed'): SelfSignedCert {
  openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`,
    '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}
