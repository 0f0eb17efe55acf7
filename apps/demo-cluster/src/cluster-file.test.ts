/**
 * cluster.json validation: what a broken or hand-edited file is refused with.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readClusterFile, writeClusterFile, type ClusterFile } from './cluster-file.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dirWith(content: string): string {
  const d = mkdtempSync(join(tmpdir(), 'synod-cf-'));
  dirs.push(d);
  writeFileSync(join(d, 'cluster.json'), content);
  return d;
}

const valid: ClusterFile = {
  version: 1,
  protocol: 'raft',
  bootstrap: ['n1', 'n2'],
  members: [
    { id: 'n1', slot: 0, bootstrap: true, initialized: true },
    { id: 'n2', slot: 1, bootstrap: true, initialized: false },
  ],
};

describe('cluster.json', () => {
  it('round-trips a valid file and returns null when there is none', () => {
    const d = mkdtempSync(join(tmpdir(), 'synod-cf-'));
    dirs.push(d);
    expect(readClusterFile(d)).toBeNull();
    writeClusterFile(d, valid);
    expect(readClusterFile(d)).toEqual(valid);
  });

  it('refuses invalid files with a message that names the file and the problem', () => {
    const bad: [string, unknown, RegExp][] = [
      ['duplicate ids', { ...valid, members: [valid.members[0], { ...valid.members[1], id: 'n1' }] }, /member id "n1" appears more than once/],
      ['duplicate slots', { ...valid, members: [valid.members[0], { ...valid.members[1], slot: 0 }] }, /port slot 0 is used by n1 and n2/],
      ['empty member list', { ...valid, members: [] }, /member list is empty/],
      ['empty bootstrap', { ...valid, bootstrap: [] }, /bootstrap/],
      ['duplicate bootstrap ids', { ...valid, bootstrap: ['n1', 'n1'] }, /bootstrap id "n1" appears more than once/],
      ['bad id', { ...valid, members: [{ ...valid.members[0], id: '../x' }] }, /members\.0\.id/],
      ['negative slot', { ...valid, members: [{ ...valid.members[0], slot: -1 }] }, /slot/],
      ['unknown protocol', { ...valid, protocol: 'pbft' }, /protocol/],
      ['wrong version', { ...valid, version: 2 }, /version/],
      ['not an object', [1, 2], /expected object/i],
    ];
    for (const [what, content, message] of bad) {
      const d = dirWith(JSON.stringify(content));
      let err: Error | null = null;
      try {
        readClusterFile(d);
      } catch (e) {
        err = e as Error;
      }
      expect(err, what).not.toBeNull();
      expect(err!.message, what).toContain(join(d, 'cluster.json'));
      expect(err!.message, what).toMatch(message);
    }
  });

  it('refuses a syntax error, naming the file', () => {
    const d = dirWith('{"version": 1, "protocol": "raft",');
    expect(() => readClusterFile(d)).toThrow(new RegExp(`${join(d, 'cluster.json').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not valid JSON`));
  });
});
