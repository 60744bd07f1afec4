/** Test certificates made with `openssl`: a CA and leaf certificates it signs (EC P-256, one day). */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `<dir>/<name>.crt` and `<dir>/<name>.key`: a self-signed CA. */
export function makeCa(dir: string, name: string): void {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`), '-subj', `/CN=${name}`, '-days', '1'], { stdio: 'ignore' });
}

/** `<dir>/<name>.crt` and `<dir>/<name>.key`: a certificate signed by the CA `<dir>/<ca>.crt`. */
export function makeCert(dir: string, ca: string, name: string): void {
  const k = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', k, '-out', join(dir, `${name}.csr`), '-subj', `/CN=${name}`], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`), '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', '1'], { stdio: 'ignore' });
}

/** The `{ca, cert, key}` paths of leaf `name` trusting CA `ca`. */
export function tlsFiles(dir: string, name: string, ca = 'ca'): { ca: string; cert: string; key: string } {
  return { ca: join(dir, `${ca}.crt`), cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** Several CAs and the leaves each signs, e.g. `{ ca: ['n1', 'n2'], evil: ['x'] }`. */
export function makePki(dir: string, tree: Record<string, readonly string[]>): void {
  for (const [ca, leaves] of Object.entries(tree)) {
    makeCa(dir, ca);
    for (const leaf of leaves) makeCert(dir, ca, leaf);
  }
}
