/** Gate: no import cycles anywhere in src/ (relative imports, resolved across folders). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('src/: no import cycles', () => {
  const graph = new Map<string, string[]>();
  for (const f of files(src)) {
    const text = readFileSync(f, 'utf8');
    const deps: string[] = [];
    // Type-only imports vanish at run time; they can't make a cycle that matters.
    for (const m of text.matchAll(/^(?:import|export)(?!\s+type\b)[^'"]*from\s+'(\.[^']+)'/gm)) {
      deps.push(resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts')));
    }
    graph.set(f, deps);
  }
  assert.ok(graph.size > 50);
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') assert.fail(`import cycle: ${[...path, f].map((p) => relative(root, p)).join(' -> ')}`);
    state.set(f, 'visiting');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
});
