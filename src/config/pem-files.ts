/**
 * Checks, at configuration load, that the PEM files a config names can be
 * read, so a bad path fails with a message naming the key rather than with a
 * bare ENOENT at start (or at reload).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** One line per unreadable or non-PEM file: `<key>: expected a readable PEM file, ...`. */
export function pemFileIssues(refs: readonly (readonly [key: string, path: string])[]): string[] {
  const issues: string[] = [];
  for (const [key, path] of refs) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      issues.push(`${key}: expected a readable PEM file, cannot read "${path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      continue;
    }
    if (!text.includes('-----BEGIN ')) issues.push(`${key}: expected a PEM file, "${path}" has no "-----BEGIN" line`);
  }
  return issues;
}

export interface MutualTlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * The cluster's mutual-TLS files under `keyPrefix` (e.g. `node.cluster.tls`):
 * each readable PEM, and together a usable identity (the key matches the
 * certificate, the CA parses).
 */
export function mutualTlsIssues(keyPrefix: string, files: MutualTlsFiles): string[] {
  const issues = pemFileIssues([[`${keyPrefix}.ca`, files.ca], [`${keyPrefix}.cert`, files.cert], [`${keyPrefix}.key`, files.key]]);
  if (issues.length > 0) return issues;
  try {
    createSecureContext({ ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) });
  } catch (err) {
    return [`${keyPrefix}: cert "${files.cert}", key "${files.key}" and ca "${files.ca}" are not a usable TLS identity (${(err as Error).message})`];
  }
  return [];
}
