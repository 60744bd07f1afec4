/**
 * Issue 13, bad input "a node of another version joining mid-rollout": a node speaking another cluster
 * protocol version is refused in the handshake, before any secret is used, on both sides — error code
 * COHORT_CLUSTER_VERSION naming both versions, counted (stats().versionRefused,
 * cohort_node_cluster_refused_total{reason="version"}), one log line on each `cohort node` — and never
 * becomes a member.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { ClientHandshake, PROTOCOL_VERSION, ProtocolVersionError, ServerHandshake, type ClusterErrorEvent, type ClusterNode } from '../../src/cluster/index.js';
import { deriveClusterKeys } from '../../src/cluster/crypto.js';
import { NodeRuntime } from '../../src/node/runtime.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { DEMO_APP } from '../helpers/cluster-procs.js';
import { startNode, addr, until, SECRET } from './helpers.js';

const OTHER = PROTOCOL_VERSION + 1;

test('handshake: a hello of another version is answered with this node\'s version; each side fails naming both versions', () => {
  const keys = deriveClusterKeys(SECRET);
  const newer = new ClientHandshake(keys, undefined, OTHER);
  const server = new ServerHandshake(keys);
  let refusal: Buffer | undefined;
  assert.throws(() => server.receive(newer.hello()), (e: unknown) => {
    assert.ok(e instanceof ProtocolVersionError);
    assert.equal(e.code, 'COHORT_CLUSTER_VERSION');
    assert.deepEqual([e.localVersion, e.peerVersion], [PROTOCOL_VERSION, OTHER]);
    assert.match(e.message, new RegExp(`version ${OTHER}, this node speaks version ${PROTOCOL_VERSION}`));
    refusal = e.reply;
    return true;
  });
  assert.ok(refusal);
  assert.equal(refusal[4], PROTOCOL_VERSION, 'the refusal carries the server\'s version');
  assert.throws(() => newer.receive(refusal!), (e: unknown) => e instanceof ProtocolVersionError && e.localVersion === OTHER && e.peerVersion === PROTOCOL_VERSION);
  // An older server answering a hello of this version: the client refuses the challenge, naming both.
  const older = new ServerHandshake(keys, undefined, PROTOCOL_VERSION - 1 || 0);
  const client = new ClientHandshake(keys);
  assert.throws(() => older.receive(client.hello()), ProtocolVersionError);
  // Same version: the handshake completes as before.
  const c = new ClientHandshake(keys);
  const s = new ServerHandshake(keys);
  const challenge = s.receive(c.hello()).reply!;
  const proof = c.receive(challenge).reply!;
  const done = s.receive(proof);
  assert.ok(done.session);
  assert.ok(c.receive(done.reply!).session);
});

test('channel: a node of another protocol version dialing in is refused on both sides, counted, never a member; not an authentication failure', async () => {
  const nodes: ClusterNode[] = [];
  try {
    const a = await startNode('a');
    nodes.push(a);
    const errsA: ClusterErrorEvent[] = [];
    a.onError((e) => errsA.push(e));
    const b = await startNode('b', { membership: { type: 'static', members: [addr(a)] } }, { protocolVersion: OTHER });
    nodes.push(b);
    const errsB: ClusterErrorEvent[] = [];
    b.onError((e) => errsB.push(e));
    const version = (errs: ClusterErrorEvent[]) => errs.find((e) => e.code === 'COHORT_CLUSTER_VERSION');
    await until(() => version(errsA) !== undefined && version(errsB) !== undefined, 5000, 'the refusal on both sides');
    assert.match(version(errsA)!.message, new RegExp(`it speaks cluster protocol version ${OTHER}, this node speaks version ${PROTOCOL_VERSION}`));
    assert.match(version(errsB)!.message, new RegExp(`it speaks cluster protocol version ${PROTOCOL_VERSION}, this node speaks version ${OTHER}`));
    assert.deepEqual([version(errsA)!.localVersion, version(errsA)!.peerVersion], [PROTOCOL_VERSION, OTHER]);
    assert.ok(a.stats().versionRefused >= 1 && b.stats().versionRefused >= 1);
    assert.equal(a.stats().authFailures, 0);
    assert.equal(b.stats().authFailures, 0);
    assert.equal(a.members().length, 0);
    assert.equal(b.members().length, 0);
    // A node of this version still joins the same node.
    const c = await startNode('c', { membership: { type: 'static', members: [addr(a)] } });
    nodes.push(c);
    await until(() => a.members().some((m) => m.route === 'c'), 5000, 'c joins');
    assert.equal(a.members().some((m) => m.route === 'b'), false);
  } finally {
    for (const n of nodes) n.destroy();
  }
});

function capture(): { logger: Logger; lines: () => Record<string, unknown>[] } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += chunk; cb(); } });
  const logger: Logger = pino<never>({ level: 'info' }, stream);
  return { logger, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('cohort node: a node of another protocol version mid-rollout: a log line on both nodes naming both versions and cohort_node_cluster_refused_total{reason="version"}', async () => {
  const nodes: NodeRuntime[] = [];
  try {
    const la = capture();
    const cfg = (route: string, cluster: Record<string, unknown>) => parseNodeConfig({ route, app: DEMO_APP, listen: '127.0.0.1:0', shutdownTimeout: 1, cluster: { listen: '127.0.0.1:0', secret: SECRET, ...cluster } });
    const a = new NodeRuntime(cfg('a', {}), la.logger, undefined, { cluster: { env: {} } });
    nodes.push(a);
    await a.start();
    const lb = capture();
    const b = new NodeRuntime(cfg('b', { members: [addr(a.cluster!)] }), lb.logger, undefined, { cluster: { env: {}, protocolVersion: OTHER } });
    nodes.push(b);
    await b.start();
    const refusal = (l: ReturnType<typeof capture>) => l.lines().find((x) => x.code === 'COHORT_CLUSTER_VERSION');
    await until(() => refusal(la) !== undefined && refusal(lb) !== undefined, 5000, 'a log line on both nodes');
    assert.equal(refusal(la)!.level, 40, 'a warning');
    assert.deepEqual([refusal(la)!.localVersion, refusal(la)!.peerVersion], [PROTOCOL_VERSION, OTHER]);
    assert.deepEqual([refusal(lb)!.localVersion, refusal(lb)!.peerVersion], [OTHER, PROTOCOL_VERSION]);
    assert.match(String(refusal(lb)!.msg), new RegExp(`version ${PROTOCOL_VERSION}, this node speaks version ${OTHER}`));
    const metrics = await (await fetch(`${a.httpUrl}/.cohort/metrics`)).text();
    const m = /cohort_node_cluster_refused_total\{reason="version"[^}]*\} (\d+)/.exec(metrics);
    assert.ok(m && Number(m[1]) >= 1, metrics.split('\n').filter((l) => l.includes('refused')).join('\n'));
    assert.match(metrics, /cohort_node_cluster_refused_total\{reason="route"[^}]*\} 0/);
    assert.equal(a.cluster!.members().length, 0);
  } finally {
    for (const n of nodes) n.destroy();
  }
});
