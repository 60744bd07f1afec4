import test from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, encodeFrame, FrameError } from '../../src/cluster/codec.js';

function frames(): Buffer[] {
  return [Buffer.from('hello'), Buffer.alloc(0), Buffer.from('x'.repeat(300)), Buffer.from([0, 1, 2, 3, 4, 5])];
}

test('codec: input split at every byte gives the same frames', () => {
  const wire = Buffer.concat(frames().map(encodeFrame));
  for (let cut = 0; cut <= wire.length; cut++) {
    const d = new FrameDecoder();
    const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    assert.deepEqual(got.map((b) => b.toString('hex')), frames().map((b) => b.toString('hex')), `cut at ${cut}`);
    assert.equal(d.bufferedBytes, 0);
  }
});

test('codec: one byte at a time', () => {
  const wire = Buffer.concat(frames().map(encodeFrame));
  const d = new FrameDecoder();
  const got: Buffer[] = [];
  for (const b of wire) got.push(...d.push(Buffer.from([b])));
  assert.deepEqual(got.map((b) => b.toString()), frames().map((b) => b.toString()));
});

test('codec: three-way splits', () => {
  const wire = Buffer.concat(frames().map(encodeFrame));
  for (let a = 0; a <= wire.length; a += 7) {
    for (let b = a; b <= wire.length; b += 5) {
      const d = new FrameDecoder();
      const got = [...d.push(wire.subarray(0, a)), ...d.push(wire.subarray(a, b)), ...d.push(wire.subarray(b))];
      assert.equal(got.length, 4);
    }
  }
});

test('codec: oversized frame rejected from its header, before its body arrives', () => {
  const d = new FrameDecoder({ maxFrameBytes: 1024 });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1025, 0);
  assert.deepEqual(d.push(header.subarray(0, 2)), []);
  assert.throws(() => d.push(header.subarray(2)), (e: unknown) => e instanceof FrameError && e.code === 'COHORT_FRAME_TOO_LARGE');
  assert.equal(d.bufferedBytes, 0);
  // poisoned afterwards
  assert.throws(() => d.push(Buffer.from('more')), (e: unknown) => e instanceof FrameError && e.code === 'COHORT_FRAME_DECODER_FAILED');
});

test('codec: a 4 GiB header is rejected at the default limit', () => {
  const d = new FrameDecoder();
  assert.throws(() => d.push(Buffer.from([0xff, 0xff, 0xff, 0xff])), { code: 'COHORT_FRAME_TOO_LARGE' });
});

test('codec: frame exactly at the limit is accepted', () => {
  const d = new FrameDecoder({ maxFrameBytes: 10 });
  assert.equal(d.push(encodeFrame(Buffer.alloc(10, 1)))[0]!.length, 10);
});
