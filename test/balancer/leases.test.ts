import test from 'node:test';
import assert from 'node:assert/strict';
import { LeaseLedger, blockSize, type LeaseAction } from '../../src/balancer/workers/lease-ledger.js';
import { LeaseHolder, type HolderMessage } from '../../src/balancer/workers/lease-holder.js';
import { shareOf } from '../../src/proxy/workers/messages.js';

const K = 'b\nm1';

test('lease block size: ¼ of a worker\'s share, 1..16', () => {
  const table: Array<[max: number, workers: number, block: number]> = [
    [150, 2, 16], [150, 4, 9], [1, 2, 1], [7, 2, 1], [8, 2, 1], [16, 2, 2], [1000, 1, 16], [3, 8, 1],
  ];
  for (const [max, workers, block] of table) assert.equal(blockSize(max, workers), block, `max ${max}, ${workers} workers`);
});

test('queue shares of maxqueue sum to maxqueue exactly', () => {
  for (const [total, count] of [[1024, 2], [7, 3], [1, 2], [0, 2], [10, 4]] as const) {
    let sum = 0;
    for (let i = 0; i < count; i++) sum += shareOf(total, i, count);
    assert.equal(sum, total, `${total} over ${count}`);
  }
});

type Step =
  | { op: 'sync'; max: number }
  | { op: 'add'; w: number }
  | { op: 'remove'; w: number }
  | { op: 'want'; w: number; n: number; waiting?: boolean }
  | { op: 'return'; w: number; n: number }
  | { op: 'withdraw'; w: number };

function run(steps: Array<[Step, LeaseAction[]]>, workers = 2): LeaseLedger {
  const l = new LeaseLedger(workers);
  for (const [step, expected] of steps) {
    let got: LeaseAction[];
    switch (step.op) {
      case 'sync': got = l.sync(new Map([[K, step.max]])); break;
      case 'add': got = l.addWorker(step.w); break;
      case 'remove': got = l.removeWorker(step.w); break;
      case 'want': got = l.want(step.w, K, step.n, step.waiting); break;
      case 'return': got = l.returned(step.w, K, step.n); break;
      case 'withdraw': got = l.withdrawn(step.w, K); break;
    }
    assert.deepEqual(got, expected, JSON.stringify(step));
  }
  return l;
}

const grant = (worker: number, n: number): LeaseAction => ({ kind: 'grant', worker, key: K, n });
const recall = (worker: number, target: number): LeaseAction => ({ kind: 'recall', worker, key: K, target });

test('ledger: first blocks, wants from free slots, never beyond max', () => {
  const l = run([
    [{ op: 'sync', max: 10 }, []],
    [{ op: 'add', w: 1 }, [grant(1, 1)]],
    [{ op: 'add', w: 2 }, [grant(2, 1)]],
    [{ op: 'want', w: 1, n: 6 }, [grant(1, 6)]],
    // 8 leased of 10: only 2 left for worker 2; it is below its fair share (5), worker 1 above: recalled to 5.
    [{ op: 'want', w: 2, n: 6 }, [grant(2, 2), recall(1, 5)]],
    // worker 1 returns 2 unused at once: they go to worker 2, still waiting for 2 more
    [{ op: 'return', w: 1, n: 2 }, [grant(2, 2)]],
  ]);
  assert.equal(l.granted(K), 10);
  assert.equal(l.held(1, K), 5);
  assert.equal(l.held(2, K), 5);
});

test('ledger: a lowered max recalls to the fair share; a worker gone frees its slots for waiters', () => {
  const l = run([
    [{ op: 'sync', max: 150 }, []],
    [{ op: 'add', w: 1 }, [grant(1, 16)]],
    [{ op: 'add', w: 2 }, [grant(2, 16)]],
    [{ op: 'want', w: 1, n: 100 }, [grant(1, 100)]],
    [{ op: 'sync', max: 40 }, [recall(1, 20)]],
    [{ op: 'return', w: 1, n: 96 }, []],
    [{ op: 'want', w: 2, n: 16 }, [grant(2, 4)]],
    [{ op: 'remove', w: 1 }, [grant(2, 12)]],
  ]);
  assert.equal(l.granted(K), 32);
  assert.ok(l.granted(K) <= 40);
});

test('ledger: a waiting request gets the slots another worker holds unused (max is reachable, not only never exceeded)', () => {
  const l = run([
    [{ op: 'sync', max: 40 }, []],
    [{ op: 'add', w: 1 }, [grant(1, 5)]],
    [{ op: 'add', w: 2 }, [grant(2, 5)]],
    [{ op: 'want', w: 1, n: 15 }, [grant(1, 15)]],
    [{ op: 'want', w: 2, n: 15 }, [grant(2, 15)]],
    // Both at the fair share (20): no recall; a top-up want just waits…
    [{ op: 'want', w: 2, n: 5 }, []],
    // …but a waiting request asks worker 1, once, for what it does not use.
    [{ op: 'want', w: 2, n: 5, waiting: true }, [{ kind: 'spare', worker: 1, key: K }]],
    [{ op: 'want', w: 2, n: 5, waiting: true }, []],
    [{ op: 'return', w: 1, n: 8 }, [grant(2, 5)]],
  ]);
  assert.equal(l.granted(K), 37);
  const h = new LeaseHolder(5);
  h.granted(20);
  assert.deepEqual(h.spare(12), { kind: 'return', n: 8 }, 'spares exactly the unused slots');
  assert.equal(h.held, 12);
  assert.equal(h.spare(12), undefined);
});

test('ledger: a withdrawn want is not granted later, and its worker is asked to spare again', () => {
  run([
    [{ op: 'sync', max: 40 }, []],
    [{ op: 'add', w: 1 }, [grant(1, 5)]],
    [{ op: 'add', w: 2 }, [grant(2, 5)]],
    [{ op: 'want', w: 1, n: 15 }, [grant(1, 15)]],
    [{ op: 'want', w: 2, n: 15 }, [grant(2, 15)]],
    // Worker 2's requests wait, then give up (timeout 0): its want would stay, and mark it as waiting.
    [{ op: 'want', w: 2, n: 5, waiting: true }, [{ kind: 'spare', worker: 1, key: K }]],
    [{ op: 'withdraw', w: 2 }, []],
    // Worker 1 spared nothing (all in use); slots free up later: no grant to worker 2 for the void want.
    [{ op: 'return', w: 1, n: 3 }, []],
    // Now worker 1's requests wait: worker 2, no longer marked waiting, is asked for its unused slots.
    [{ op: 'want', w: 1, n: 5, waiting: true }, [grant(1, 3), { kind: 'spare', worker: 2, key: K }]],
  ]);
  const h = new LeaseHolder(5);
  assert.equal(h.withdraw(), undefined, 'nothing to withdraw');
  assert.deepEqual(h.acquired(5, true, 8), { kind: 'want', n: 8, waiting: true });
  assert.deepEqual(h.withdraw(), { kind: 'withdraw' });
  assert.equal(h.withdraw(), undefined, 'once');
  assert.deepEqual(h.acquired(5, true), { kind: 'want', n: 5, waiting: true }, 'a later wait asks afresh');
});

test('ledger: max 1 over two workers moves the one slot to whoever waits', () => {
  run([
    [{ op: 'sync', max: 1 }, []],
    [{ op: 'add', w: 1 }, [grant(1, 1)]],
    [{ op: 'add', w: 2 }, []],
    [{ op: 'want', w: 2, n: 1 }, [recall(1, 0)]],
    [{ op: 'return', w: 1, n: 1 }, [grant(2, 1)]],
  ]);
});

test('holder: wants at half a block left; gives back on its tick only what stayed unused (two blocks), keeping one', () => {
  const h = new LeaseHolder(4);
  assert.deepEqual(h.acquired(1, true), { kind: 'want', n: 4, waiting: true }, 'a request waits: want');
  assert.equal(h.acquired(1, true), undefined, 'one want at a time');
  h.granted(4);
  assert.equal(h.acquired(1), undefined, '3 left ≥ 2');
  assert.deepEqual(h.acquired(3), { kind: 'want', n: 4, waiting: false }, '1 left < 2');
  assert.equal(h.acquired(4), undefined, 'a top-up is pending');
  // The owner could not serve the top-up (nothing free); now a request waits: the want is sent again, saying
  // so, or no other worker would be asked to spare (a flake: 29 of max 30 served with timeout 0).
  assert.deepEqual(h.acquired(4, true, 2), { kind: 'want', n: 4, waiting: true }, 'a pending top-up becomes a waiting want');
  assert.equal(h.acquired(4, true, 2), undefined, 'once');
  h.granted(4);
  assert.equal(h.held, 8);
  assert.equal(h.released(0), undefined, 'a release never gives back (busy swings; that would churn)');
  assert.equal(h.tick(0), undefined, 'the peak of the interval was 3: 5 unused < 2 blocks');
  assert.deepEqual(h.tick(0), { kind: 'return', n: 4 }, 'a whole interval at 0: 8 unused, keep one block');
  assert.equal(h.held, 4);
  assert.equal(h.tick(0), undefined);
});

test('holder: a recall returns unused slots now and freed ones later, down to the target', () => {
  const h = new LeaseHolder(4);
  h.granted(10);
  assert.deepEqual(h.recalled(5, 8), { kind: 'return', n: 2 }, '2 unused');
  assert.equal(h.held, 8);
  assert.equal(h.acquired(8, true), undefined, 'no want while recalled');
  assert.deepEqual(h.released(7), { kind: 'return', n: 1 });
  assert.deepEqual(h.released(5), { kind: 'return', n: 2 });
  assert.equal(h.held, 5);
  assert.equal(h.released(4), undefined, 'target reached: the recall is over');
  assert.equal(h.held, 5);
});

test('holder + ledger: a burst waiting on a used-up lease is leased in one round trip, not a block per trip', () => {
  // max 30 over 2 workers: blocks of 3. 17 requests wait on worker 1, which holds its first block.
  const ledger = new LeaseLedger(2);
  ledger.sync(new Map([[K, 30]]));
  const h = new LeaseHolder(blockSize(30, 2));
  for (const a of ledger.addWorker(1)) if (a.kind === 'grant') h.granted(a.n);
  ledger.addWorker(2);
  assert.equal(h.held, 3);
  const want = h.acquired(3, true, 17);
  assert.deepEqual(want, { kind: 'want', n: 17, waiting: true }, 'all the waiting requests at once');
  assert.deepEqual(ledger.want(1, K, want!.n, true), [grant(1, 17)]);
  h.granted(17);
  assert.equal(h.held, 20);
  // Fewer waiting than a block: a block, as before; a top-up is a block whatever waits.
  const small = new LeaseHolder(3);
  assert.deepEqual(small.acquired(3, true, 1), { kind: 'want', n: 3, waiting: true });
  assert.deepEqual(new LeaseHolder(3).acquired(3, false, 10), { kind: 'want', n: 3, waiting: false });
  // Beyond what is free: the rest stays wanted, and worker 2 below its fair share makes worker 1 be recalled to it.
  assert.deepEqual(ledger.want(2, K, 20, true), [grant(2, 7), recall(1, 15)]);
});

/** A deterministic random source (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('leases under random load: global busy never exceeds max, every waiting worker is eventually served', () => {
  // The model's workers ask again after every event while requests wait (startWaiting), as worker-engine.ts
  // does (askAgain); max below the fair share (2 over 3 workers, 1 over 4) relies on it.
  for (const [max, workers, seed] of [[150, 2, 1], [7, 3, 2], [1, 2, 3], [40, 4, 4], [2, 3, 5], [1, 4, 6]] as const) {
    const random = rng(seed);
    const ledger = new LeaseLedger(workers);
    ledger.sync(new Map([[K, max]]));
    const holders = new Map<number, LeaseHolder>();
    const busy = new Map<number, number>();
    const waiting = new Map<number, number>();
    // Messages in flight. Each process's IPC channel is FIFO: a worker's messages reach the owner in the order it
    // sent them, the owner's reach each worker in order; different workers' messages interleave at random.
    const toOwner: Array<HolderMessage & { w: number }> = [];
    const toWorker: LeaseAction[] = [];
    const deliver = (a: LeaseAction[]) => toWorker.push(...a);
    const atOwner = (m: HolderMessage & { w: number }) =>
      deliver(m.kind === 'want' ? ledger.want(m.w, K, m.n, m.waiting) : m.kind === 'withdraw' ? ledger.withdrawn(m.w, K) : ledger.returned(m.w, K, m.n));
    for (let w = 1; w <= workers; w++) {
      holders.set(w, new LeaseHolder(blockSize(max, workers)));
      busy.set(w, 0);
      waiting.set(w, 0);
      deliver(ledger.addWorker(w));
    }
    const startWaiting = (w: number) => {
      const h = holders.get(w)!;
      while (waiting.get(w)! > 0 && busy.get(w)! < h.held) {
        waiting.set(w, waiting.get(w)! - 1);
        busy.set(w, busy.get(w)! + 1);
        const m = h.acquired(busy.get(w)!);
        if (m) toOwner.push({ w, ...m });
      }
      if (waiting.get(w)! > 0) {
        const m = h.acquired(busy.get(w)!, true, waiting.get(w)!);
        if (m) toOwner.push({ w, ...m });
      }
    };
    let peak = 0;
    for (let step = 0; step < 20_000; step++) {
      const r = random();
      const w = 1 + Math.floor(random() * workers);
      const h = holders.get(w)!;
      if (r < 0.35 && step < 18_000) {
        waiting.set(w, waiting.get(w)! + 1);
        startWaiting(w);
      } else if (r < 0.6 && busy.get(w)! > 0) {
        busy.set(w, busy.get(w)! - 1);
        const m = h.released(busy.get(w)!);
        if (m) toOwner.push({ w, ...m });
        startWaiting(w);
      } else if (r < 0.62) {
        // The engine's tick: a want no request waits for any more is withdrawn, then unused slots go back.
        if (waiting.get(w)! === 0) {
          const x = h.withdraw();
          if (x) toOwner.push({ w, ...x });
        }
        const m = h.tick(busy.get(w)!);
        if (m) toOwner.push({ w, ...m });
        startWaiting(w);
      } else if (r < 0.64 && waiting.get(w)! > 0) {
        // A waiting request gives up (its queue timeout, LEASE_WAIT_MS with timeout 0).
        waiting.set(w, waiting.get(w)! - 1);
      } else if (r < 0.8 && toOwner.length > 0) {
        const from = toOwner[Math.floor(random() * toOwner.length)]!.w;
        const m = toOwner.splice(toOwner.findIndex((x) => x.w === from), 1)[0]!;
        atOwner(m);
      } else if (toWorker.length > 0) {
        const a = toWorker.shift()!;
        const hw = holders.get(a.worker)!;
        if (a.kind === 'grant') hw.granted(a.n);
        else {
          const m = a.kind === 'recall' ? hw.recalled(a.target, busy.get(a.worker)!) : hw.spare(busy.get(a.worker)!);
          if (m) toOwner.push({ w: a.worker, ...m });
        }
        startWaiting(a.worker);
      }
      let total = 0;
      for (const [id, b] of busy) {
        assert.ok(b <= holders.get(id)!.held, `worker ${id} busy ${b} beyond its lease ${holders.get(id)!.held}`);
        total += b;
      }
      let held = 0;
      for (const hh of holders.values()) held += hh.held;
      assert.ok(held <= max, `leases ${held} beyond max ${max} (step ${step})`);
      assert.ok(ledger.granted(K) <= max);
      peak = Math.max(peak, total);
    }
    // Drain: finish everything in flight; every waiting request must get a slot.
    for (let round = 0; round < 10_000; round++) {
      let moved = false;
      for (const [w, b] of busy) {
        if (b > 0) {
          busy.set(w, b - 1);
          const m = holders.get(w)!.released(b - 1);
          if (m) toOwner.push({ w, ...m });
          moved = true;
        }
        startWaiting(w);
      }
      while (toOwner.length > 0) {
        const m = toOwner.shift()!;
        atOwner(m);
        moved = true;
      }
      while (toWorker.length > 0) {
        const a = toWorker.shift()!;
        const hw = holders.get(a.worker)!;
        if (a.kind === 'grant') hw.granted(a.n);
        else {
          const m = a.kind === 'recall' ? hw.recalled(a.target, busy.get(a.worker)!) : hw.spare(busy.get(a.worker)!);
          if (m) toOwner.push({ w: a.worker, ...m });
        }
        startWaiting(a.worker);
        moved = true;
      }
      if (!moved && [...waiting.values()].every((n) => n === 0)) break;
    }
    assert.deepEqual([...waiting.values()], new Array(workers).fill(0), `max ${max}/${workers} workers: every waiting request was served`);
    assert.ok(peak >= Math.min(max, 2), `the load used the slots (peak ${peak})`);
  }
});
