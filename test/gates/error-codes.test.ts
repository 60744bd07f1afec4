/** Gate: every COHORT_* code used in src/ is listed in docs/errors.md (STYLE: one page lists every code). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every COHORT_* code in src/ is documented in docs/errors.md', () => {
  const used = new Set<string>();
  for (const f of files(join(root, 'src'))) for (const m of readFileSync(f, 'utf8').matchAll(/COHORT_[A-Z_]+/g)) used.add(m[0]);
  const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8');
  const missing = [...used].filter((c) => !doc.includes(`\`${c}\``));
  assert.ok(used.size > 20);
  assert.deepEqual(missing, [], `add these to docs/errors.md: ${missing.join(', ')}`);
});
