/**
 * ipMatcher's IPv4 fast path decides as node's BlockList does (the only
 * matcher it had before): a seeded differential over rule lists and
 * addresses, canonical and not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ipMatcher, ipv4ToInt } from '../../src/util/address.js';

/** The matcher as it was: BlockList for everything. */
function reference(list: readonly string[]): (ip: string) => boolean {
  const block = new net.BlockList();
  for (const entry of list) {
    const [addr, bits] = entry.split('/');
    const type = net.isIPv6(addr!) ? 'ipv6' : 'ipv4';
    if (bits !== undefined) block.addSubnet(addr!, Number(bits), type);
    else block.addAddress(addr!, type);
  }
  return (ip) => {
    if (ip.startsWith('::ffff:')) ip = ip.slice(7);
    return block.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
  };
}

test('ipv4ToInt reads canonical dotted quads only', () => {
  assert.equal(ipv4ToInt('1.2.3.4'), 0x01020304);
  assert.equal(ipv4ToInt('255.255.255.255'), 0xffffffff);
  assert.equal(ipv4ToInt('0.0.0.0'), 0);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', '256.1.1.1', '1..2.3', '1.2.3.4.', '.1.2.3', 'a.b.c.d', '1.2.3.4 ', '::1', '1.2.3.1000']) {
    assert.equal(ipv4ToInt(bad), -1, bad);
  }
});

test('ipMatcher decides as BlockList does, over 40 seeded rule lists and 2,000 addresses each', () => {
  let seed = 12345;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const quad = () => `${rnd(256)}.${rnd(256)}.${rnd(256)}.${rnd(256)}`;
  for (let l = 0; l < 40; l++) {
    const list: string[] = [];
    const bases: string[] = [];
    for (let k = 0; k < 1 + rnd(4); k++) {
      const base = quad();
      bases.push(base);
      const kind = rnd(5);
      if (kind === 0) list.push(base);
      else if (kind === 4 && l % 3 === 0) list.push(rnd(2) === 0 ? '::1' : `fd00::/${8 + rnd(112)}`);
      else list.push(`${base}/${rnd(33)}`);
    }
    const mine = ipMatcher(list);
    const ref = reference(list);
    for (let i = 0; i < 2000; i++) {
      const pick = rnd(8);
      let ip: string;
      if (pick < 3) ip = quad();
      else if (pick < 5) {
        // Near a rule's base: same first octets, random rest.
        const b = bases[rnd(bases.length)]!.split('.');
        ip = `${b[0]}.${rnd(2) ? b[1] : rnd(256)}.${rnd(256)}.${rnd(256)}`;
      } else if (pick === 5) ip = `::ffff:${quad()}`;
      else if (pick === 6) ip = ['::1', 'fd00::1', '1.2.3', '01.2.3.4', '', 'abc', '256.0.0.1', '10.0.0.1.2'][rnd(8)]!;
      else ip = bases[rnd(bases.length)]!;
      assert.equal(mine(ip), ref(ip), `list ${JSON.stringify(list)}, ip ${ip}`);
    }
  }
});
