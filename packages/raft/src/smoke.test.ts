import { describe, expect, it } from 'vitest';
import { TestNetwork } from './test/network.js';

describe('smoke', () => {
  it('elects and replicates', () => {
    const net = new TestNetwork(['a', 'b', 'c']);
    const l = net.elect();
    expect(net.leaders()).toEqual([l]);
    net.propose(l, 'x');
    net.propose(l, 'y');
    net.tick(2);
    for (const id of ['a', 'b', 'c']) expect(net.appliedData(id)).toEqual(['x', 'y']);
  });
});
