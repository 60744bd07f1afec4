/**
 * The deployment files under deploy/ (issue 12, item 2), checked the way they
 * are used, without a Docker engine or a Kubernetes cluster: the Dockerfile's
 * instructions statically (stages, non-root, entrypoint, every copied file
 * exists), the systemd units with `systemd-analyze verify` (when installed),
 * the Kubernetes manifests parsed with the yaml package and cross-checked
 * (selectors, the headless Service, probes, the Secret), and the configs
 * they embed validated as Cohort would load them.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT, BIN } from '../helpers/cluster-procs.js';
import { expandEnvVars } from '../../src/config/env-vars.js';
import { parseBalancerConfig, parseYamlText } from '../../src/config/load.js';
import { parseNodeConfig, nodeSection } from '../../src/node/config.js';

const DEPLOY = join(ROOT, 'deploy');

// ------------------------------------------------------------------ Dockerfile

interface Instruction { readonly cmd: string; readonly args: string; readonly line: number }

/** Dockerfile instructions (continuations joined, comments dropped). */
function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!;
    if (/^\s*#/.test(l) || l.trim() === '') continue;
    while (l.endsWith('\\') && i + 1 < lines.length) l = l.slice(0, -1) + ' ' + lines[++i]!;
    const m = /^\s*(\w+)\s+(.*)$/.exec(l);
    if (m) out.push({ cmd: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

/** Static problems of a Dockerfile for a context directory: the list is empty when it is fine. */
function dockerfileProblems(text: string, context: string): string[] {
  const problems: string[] = [];
  const ins = dockerInstructions(text);
  const stages: string[] = [];
  let lastStageStart = -1;
  ins.forEach((x, i) => {
    if (x.cmd === 'FROM') {
      const m = /\bAS\s+(\S+)/i.exec(x.args);
      stages.push(m ? m[1]! : String(stages.length));
      lastStageStart = i;
    }
  });
  if (stages.length < 2) problems.push(`expected a multi-stage build (2+ FROM), got ${stages.length}`);
  for (const x of ins) {
    if (x.cmd !== 'COPY' && x.cmd !== 'ADD') continue;
    const words = x.args.split(/\s+/).filter((w) => !w.startsWith('--') || w.startsWith('--from='));
    const from = words.find((w) => w.startsWith('--from='));
    const paths = words.filter((w) => !w.startsWith('--from='));
    const sources = paths.slice(0, -1);
    if (from) {
      const stage = from.slice('--from='.length);
      if (!stages.includes(stage)) problems.push(`line ${x.line}: COPY --from=${stage}: no such stage (${stages.join(', ')})`);
      continue;
    }
    for (const s of sources) if (!existsSync(join(context, s))) problems.push(`line ${x.line}: ${x.cmd} ${s}: not in the build context ${context}`);
  }
  const final = ins.slice(lastStageStart);
  const users = final.filter((x) => x.cmd === 'USER');
  const user = users.at(-1)?.args;
  if (user === undefined) problems.push('the final stage has no USER: it would run as root');
  else if (/^(root|0)(:|$)/.test(user)) problems.push(`the final stage runs as ${user}`);
  const entry = final.filter((x) => x.cmd === 'ENTRYPOINT').at(-1);
  if (!entry) problems.push('no ENTRYPOINT in the final stage');
  else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(entry.args);
    } catch {
      problems.push(`line ${entry.line}: ENTRYPOINT should be the exec (JSON) form so signals reach cohort`);
    }
    if (Array.isArray(parsed) && parsed[0] !== 'cohort') problems.push(`line ${entry.line}: ENTRYPOINT is ${entry.args}, expected ["cohort"]`);
  }
  return problems;
}

describe('deploy/docker/Dockerfile', () => {
  const text = readFileSync(join(DEPLOY, 'docker', 'Dockerfile'), 'utf8');
  test('multi-stage, non-root, `cohort` as the exec-form entrypoint, every copied file in the context', () => {
    assert.deepEqual(dockerfileProblems(text, ROOT), []);
    const ins = dockerInstructions(text);
    assert.ok(ins.some((x) => x.cmd === 'RUN' && /ln -s \/app\/bin\/cohort\.js \/usr\/local\/bin\/cohort/.test(x.args)), 'cohort on the PATH');
    // The runtime image is Alpine: BusyBox env, which the old `env -S` shebang broke.
    assert.match(ins.filter((x) => x.cmd === 'FROM').at(-1)!.args, /alpine/);
    // What the runtime copies from the build stage is what the package needs (package.json "files").
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    for (const f of ['dist/src', 'bin']) assert.ok(ins.some((x) => x.cmd === 'COPY' && x.args.includes(`/src/${f}`)), f);
    assert.ok(pkg.files.includes('examples'));
  });
  test('the checker catches what it is for: a missing file, root, no entrypoint, one stage, an unknown stage', () => {
    const bad = 'FROM node:20 AS build\nCOPY nope.txt ./\nCOPY --from=builder /x /y\nUSER root\n';
    const p = dockerfileProblems(bad, ROOT);
    assert.ok(p.some((x) => /multi-stage/.test(x)));
    assert.ok(p.some((x) => /line 2: COPY nope\.txt: not in the build context/.test(x)));
    assert.ok(p.some((x) => /COPY --from=builder: no such stage/.test(x)));
    assert.ok(p.some((x) => /runs as root/.test(x)));
    assert.ok(p.some((x) => /no ENTRYPOINT/.test(x)));
    assert.ok(dockerfileProblems('FROM a AS b\nFROM c\nUSER node\nENTRYPOINT cohort\n', ROOT).some((x) => /exec \(JSON\) form/.test(x)));
  });
  test('its .dockerignore keeps node_modules and dist out of the context', () => {
    const ignore = readFileSync(join(DEPLOY, 'docker', 'Dockerfile.dockerignore'), 'utf8').split('\n');
    for (const p of ['node_modules', 'dist', '.git']) assert.ok(ignore.includes(p), p);
  });
});

// ------------------------------------------------------------------ systemd

function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(l);
    if (s) {
      section = s[1]!;
      continue;
    }
    const eq = l.indexOf('=');
    const k = `${section}.${l.slice(0, eq)}`;
    keys.set(k, [...(keys.get(k) ?? []), l.slice(eq + 1)]);
  }
  return keys;
}

const systemdAnalyze = (() => {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'systemd-analyze is not installed (Debian package systemd): the units are checked statically only';
  }
})();

describe('deploy/systemd units', () => {
  const units = ['cohort-balancer.service', 'cohort-node@.service'];
  test('Type=simple, reload by SIGHUP, graceful SIGTERM, not root, COHORT_CONFIG, the --log-file that logrotate reopens', () => {
    for (const u of units) {
      const k = unitKeys(readFileSync(join(DEPLOY, 'systemd', u), 'utf8'));
      assert.ok(['simple', 'notify'].includes(k.get('Service.Type')?.[0] ?? ''), `${u} Type`);
      assert.deepEqual(k.get('Service.ExecReload'), ['/bin/kill -HUP $MAINPID'], u);
      assert.equal(k.get('Service.KillSignal')?.[0], 'SIGTERM');
      assert.ok(k.get('Service.User')?.[0] && k.get('Service.User')![0] !== 'root', `${u} User`);
      assert.ok(k.get('Service.Environment')!.some((e) => e.startsWith('COHORT_CONFIG=/etc/cohort/')));
      assert.match(k.get('Service.ExecStart')![0]!, /^\/usr\/local\/bin\/cohort (balancer|node) --log-file \/var\/log\/cohort\//);
      assert.deepEqual(k.get('Service.ExecStartPre'), ['/usr/local/bin/cohort check-config']);
      assert.deepEqual(k.get('Service.LogsDirectory'), ['cohort']);
    }
    const rotate = readFileSync(join(DEPLOY, 'logrotate', 'cohort'), 'utf8');
    assert.match(rotate, /\/var\/log\/cohort\/\*\.log/);
    assert.match(rotate, /systemctl kill --signal=SIGUSR2 --kill-whom=main cohort-balancer\.service 'cohort-node@\*\.service'/);
  });
  test('systemd-analyze verify accepts them (ExecStart pointed at this checkout\'s bin/cohort.js)', { skip: systemdAnalyze ?? false, timeout: 120_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'cohort-units-'));
    try {
      for (const u of units) writeFileSync(join(dir, u), readFileSync(join(DEPLOY, 'systemd', u), 'utf8').replaceAll('/usr/local/bin/cohort', BIN));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'cohort-balancer.service'), join(dir, 'cohort-node@tc1.service')], { encoding: 'utf8', timeout: 100_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', 'no warnings (unknown keys, bad values)');
      // and the check can fail: a unit whose command does not exist
      writeFileSync(join(dir, 'broken.service'), '[Service]\nExecStart=/nonexistent/cohort balancer\n');
      assert.notEqual(spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'broken.service')], { encoding: 'utf8' }).status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------ Kubernetes

type Obj = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string>; stringData?: Record<string, string> };

function manifests(): Obj[] {
  const out: Obj[] = [];
  for (const f of readdirSync(join(DEPLOY, 'kubernetes')).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', f), 'utf8'))) {
      assert.deepEqual(doc.errors, [], f);
      const o = doc.toJS() as Obj | null;
      if (o) out.push(o);
    }
  }
  return out;
}

const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

describe('deploy/kubernetes manifests', () => {
  const all = manifests();
  const one = (kind: string, name: string) => {
    const o = all.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind}/${name}`);
    return o!;
  };
  test('nodes: a StatefulSet behind a headless Service that lists not-ready pods; probes on /.cohort/health and /.cohort/live', () => {
    const svc = one('Service', 'cohort-nodes');
    assert.equal(svc.spec.clusterIP, 'None');
    assert.equal(svc.spec.publishNotReadyAddresses, true);
    const sts = one('StatefulSet', 'cohort-node');
    assert.equal(sts.spec.serviceName, 'cohort-nodes');
    const tpl = sts.spec.template;
    assert.ok(matches(sts.spec.selector.matchLabels, tpl.metadata.labels));
    assert.ok(matches(svc.spec.selector, tpl.metadata.labels));
    const c = tpl.spec.containers[0];
    const port = (name: string) => c.ports.find((p: { name: string }) => p.name === name)?.containerPort;
    assert.equal(c.readinessProbe.httpGet.path, '/.cohort/health');
    assert.equal(c.livenessProbe.httpGet.path, '/.cohort/live');
    assert.equal(port(c.readinessProbe.httpGet.port), 8081);
    assert.equal(tpl.spec.securityContext.runAsNonRoot, true);
    assert.ok(tpl.spec.terminationGracePeriodSeconds >= 10 + 5, 'shutdownTimeout + handoff fit in the grace period');
    assert.deepEqual(c.env.map((e: { name: string }) => e.name).sort(), ['POD_IP', 'POD_NAME']);
  });
  test('the secret is a Secret, mounted where the configs read it; a PodDisruptionBudget covers the nodes', () => {
    const secret = one('Secret', 'cohort-cluster-secret');
    assert.ok(secret.stringData?.['cluster.secret']);
    for (const [kind, name] of [['StatefulSet', 'cohort-node'], ['Deployment', 'cohort-balancer']] as const) {
      const spec = one(kind, name).spec.template.spec;
      const vol = spec.volumes.find((v: any) => v.secret);
      assert.equal(vol.secret.secretName, 'cohort-cluster-secret', name);
      const mount = spec.containers[0].volumeMounts.find((m: any) => m.name === vol.name);
      assert.equal(mount.mountPath, '/var/run/secrets/cohort');
    }
    const pdb = one('PodDisruptionBudget', 'cohort-node');
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.ok(matches(pdb.spec.selector.matchLabels, one('StatefulSet', 'cohort-node').spec.template.metadata.labels));
  });
  test('the balancer: a Deployment with probes on its status listener, a Service in front', () => {
    const dep = one('Deployment', 'cohort-balancer');
    const c = dep.spec.template.spec.containers[0];
    assert.deepEqual(c.args, ['balancer', '--config', '/etc/cohort/balancer.yaml']);
    assert.equal(c.readinessProbe.httpGet.path, '/health');
    assert.equal(c.livenessProbe.httpGet.path, '/live');
    assert.equal(c.ports.find((p: any) => p.name === c.readinessProbe.httpGet.port).containerPort, 9100);
    assert.ok(matches(one('Service', 'cohort-balancer').spec.selector, dep.spec.template.metadata.labels));
  });
  test('the embedded node.yaml and balancer.yaml are valid Cohort configs once the pod\'s variables are set', () => {
    const env = { POD_NAME: 'cohort-node-0', POD_IP: '10.1.2.3' };
    const nodeText = one('ConfigMap', 'cohort-node').data!['node.yaml']!;
    const node = parseNodeConfig(nodeSection(expandEnvVars(parseYamlText(nodeText, 'node.yaml'), 'node.yaml', { env }), 'node.yaml'), 'node.yaml');
    assert.equal(node.route, 'cohort-node-0');
    assert.equal(node.listen, '10.1.2.3:8081');
    assert.deepEqual(node.cluster.dns, { name: 'cohort-nodes.default.svc.cluster.local', type: 'A', port: 4000, intervalMs: 2000 });
    assert.equal(node.cluster.secretFile, '/var/run/secrets/cohort/cluster.secret');
    const sts = one('StatefulSet', 'cohort-node');
    assert.deepEqual(sts.spec.template.spec.containers[0].args, ['node', '--config', '/etc/cohort/node.yaml']);
    const balText = one('ConfigMap', 'cohort-balancer').data!['balancer.yaml']!;
    const bal = parseBalancerConfig(expandEnvVars(parseYamlText(balText, 'balancer.yaml'), 'balancer.yaml', { env }), 'balancer.yaml');
    assert.equal(bal.cluster!.balancer, 'app');
    assert.equal(bal.status!.listen, '0.0.0.0:9100');
    // Without the pod's variables the error names the key.
    assert.throws(() => expandEnvVars(parseYamlText(nodeText, 'node.yaml'), 'node.yaml', { env: {} }), /node\.route: \$\{POD_NAME\} is not set/);
  });
});
