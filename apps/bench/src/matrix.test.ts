import { describe, expect, it } from 'vitest';
import { cellKey, crossProduct, FULL_DIMENSIONS, parseIntList, parseList, PROTOCOLS, QUICK_CELLS, selectCells } from './matrix.js';

describe('matrix', () => {
  it('the full matrix is the 96-cell cross product of the issue', () => {
    const cells = crossProduct(FULL_DIMENSIONS);
    expect(cells).toHaveLength(2 * 2 * 2 * 2 * 3 * 2);
    expect(new Set(cells.map(cellKey)).size).toBe(96);
    expect(cells[0]).toEqual({ protocol: 'raft', transport: 'memory', storage: 'memory', nodes: 3, clients: 1, payloadBytes: 16 });
  });

  it('the quick profile holds the goal cells for both protocols', () => {
    const keys = QUICK_CELLS.map(cellKey);
    for (const p of PROTOCOLS) {
      expect(keys).toContain(`${p}/memory/memory/n3/c256/p16`);
      expect(keys).toContain(`${p}/ws/sqlite/n3/c256/p16`);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('filters intersect the profile', () => {
    const cells = selectCells(true, { protocols: ['paxos'], transports: ['ws'], nodes: [5] });
    expect(cells).toHaveLength(2 * 3 * 2);
    expect(cells.every((c) => c.protocol === 'paxos' && c.transport === 'ws' && c.nodes === 5)).toBe(true);
    expect(selectCells(false, { protocols: ['raft'] }).every((c) => c.protocol === 'raft')).toBe(true);
    expect(selectCells(false, {}).length).toBe(QUICK_CELLS.length);
  });

  it('a quick filter naming values outside the profile builds their cross product with quick defaults', () => {
    const cells = selectCells(false, { nodes: [5], clients: [16] });
    expect(cells.map(cellKey)).toEqual(['raft/memory/memory/n5/c16/p16', 'paxos/memory/memory/n5/c16/p16']);
  });

  it('a full filter that matches nothing selects nothing', () => {
    expect(selectCells(true, { nodes: [7] })).toEqual([]);
  });

  it('parses lists and rejects bad values', () => {
    expect(parseList('raft, paxos,raft', PROTOCOLS, '--protocols')).toEqual(['raft', 'paxos']);
    expect(() => parseList('raft,zab', PROTOCOLS, '--protocols')).toThrow(/unknown value 'zab'/);
    expect(() => parseList(' , ', PROTOCOLS, '--protocols')).toThrow(/empty/);
    expect(parseIntList('1,16,256,16', '--clients')).toEqual([1, 16, 256]);
    expect(() => parseIntList('0', '--clients')).toThrow(/not an integer/);
    expect(() => parseIntList('1.5', '--clients')).toThrow(/not an integer/);
    expect(() => parseIntList('10', '--nodes', 9)).toThrow(/\[1, 9\]/);
  });
});
