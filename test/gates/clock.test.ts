/**
 * Gate: protocol logic in src/sessions, src/cluster and src/node reads time,
 * timers and randomness only through the injected Clock and Random
 * (src/util/clock.ts, the one module that touches the system's). A bare
 * `setTimeout(` / `setInterval(`, `Date.now(`, `performance.now(` or
 * `Math.random(` there fails this test; `clock.setTimeout(` does not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const FOLDERS = ['src/sessions', 'src/cluster', 'src/node'];
/** The clock module itself may read the system's clocks (it lives in src/util, listed for clarity). */
const ALLOWED = new Set(['src/util/clock.ts']);

/** `Date.now(` etc., and timer calls not made on an object (`.setTimeout(` is an injected clock's). */
const FORBIDDEN = /\bDate\.now\s*\(|\bperformance\.now\s*\(|\bMath\.random\s*\(|(?<![.\w$])(?:setTimeout|setInterval)\s*\(/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Comments removed (line and block), strings kept: a comment may name what the code must not call. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** `file:line: match` for every forbidden call in `text`. */
function violations(file: string, text: string): string[] {
  const clean = stripComments(text);
  const out: string[] = [];
  for (const m of clean.matchAll(FORBIDDEN)) {
    const line = clean.slice(0, m.index).split('\n').length;
    out.push(`${file}:${line}: ${m[0]}`);
  }
  return out;
}

test('the scanner finds bare timers and clock reads, not injected ones or comments', () => {
  assert.deepEqual(violations('x.ts', 'const a = Date.now();\nsetTimeout(f, 1);\n  setInterval(g, 2)\nMath.random()\nperformance.now()'), [
    'x.ts:1: Date.now(', 'x.ts:2: setTimeout(', 'x.ts:3: setInterval(', 'x.ts:4: Math.random(', 'x.ts:5: performance.now(',
  ]);
  assert.deepEqual(violations('x.ts', 'this.clock.setTimeout(f, 1);\nclock.now();\n// Date.now() is not allowed\n/* setTimeout( */ clearTimeout(t);'), []);
});

test('sessions, cluster and node: time, timers and randomness only through the injected Clock and Random', () => {
  const found: string[] = [];
  let scanned = 0;
  for (const folder of FOLDERS) {
    for (const f of files(join(root, folder))) {
      const rel = relative(root, f);
      if (ALLOWED.has(rel)) continue;
      scanned++;
      found.push(...violations(rel, readFileSync(f, 'utf8')));
    }
  }
  assert.ok(scanned > 40, `scanned ${scanned} files`);
  assert.deepEqual(found, [], `use the injected Clock (clock.now, clock.wallNow, clock.setTimeout) and Random (src/util/clock.ts):\n${found.join('\n')}`);
});
