/** Gate: the session layer has no import cycles and never imports the cluster layer's implementation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/sessions → repo root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = join(root, 'src/sessions');

test('src/sessions: no import cycles; only the cluster contract (types.ts) from src/cluster', () => {
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      if (spec.startsWith('../cluster/')) assert.equal(spec, '../cluster/types.js', `${f} imports ${spec}`);
      if (spec.startsWith('./')) deps.push(spec.slice(2).replace(/\.js$/, '.ts'));
    }
    graph.set(f, deps);
  }
  assert.ok(graph.size > 10);
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') assert.fail(`import cycle: ${[...path, f].join(' -> ')}`);
    state.set(f, 'visiting');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
});
