/** Gate: the session layer has no import cycles and never imports the cluster layer's implementation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/sessions → repo root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = join(root, 'src/sessions');
const clusterTypes = join(root, 'src/cluster/types.ts');

/** Every .ts file under `d`, as absolute paths (the layer has subfolders: model/, replication/, http/, redis/). */
function walk(d: string): string[] {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : [],
  );
}

test('src/sessions: no import cycles; only the cluster contract (types.ts) from src/cluster', () => {
  const graph = new Map<string, string[]>();
  for (const f of walk(dir)) {
    const text = readFileSync(f, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from\s+'([^']+)'/gm)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
      if (target.startsWith(join(root, 'src/cluster') + '/')) {
        assert.equal(target, clusterTypes, `${relative(root, f)} imports ${spec}`);
      }
      if (target.startsWith(dir + '/')) deps.push(target);
    }
    graph.set(f, deps);
  }
  assert.ok(graph.size > 10);
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'visiting') assert.fail(`import cycle: ${[...path, f].map((x) => relative(dir, x)).join(' -> ')}`);
    state.set(f, 'visiting');
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
});
