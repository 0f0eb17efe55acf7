import { describe, expect, it } from 'vitest';
import { type CpuProfile, describeLimit, ownerOf, processLabel, summarizeProfile } from './profile.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

// root → drain (@synod/log) → persist (storage-sqlite) → run (native)
//      → (idle), (garbage collector), send (ws)
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame('(root)'), children: [2, 5, 6, 7, 8] },
    { id: 2, callFrame: frame('drain', 'file:///repo/packages/log/dist/index.js', 716), children: [3] },
    { id: 3, callFrame: frame('persist', 'file:///repo/packages/storage-sqlite/dist/index.js', 221), children: [4] },
    { id: 4, callFrame: frame('run'), children: [] },
    { id: 5, callFrame: frame('(idle)'), children: [] },
    { id: 6, callFrame: frame('(garbage collector)'), children: [] },
    { id: 7, callFrame: frame('send', 'file:///repo/node_modules/.pnpm/ws@8.18.3/node_modules/ws/lib/sender.js', 353), children: [] },
    { id: 8, callFrame: frame('post', 'node:inspector', 111), children: [9] },
    { id: 9, callFrame: frame('dispatch'), children: [] },
  ],
  startTime: 0,
  endTime: 10_000,
  samples: [2, 3, 4, 4, 4, 4, 5, 5, 6, 7, 9],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
};

describe('CPU profile summaries', () => {
  it('names the owner of a frame', () => {
    expect(ownerOf('file:///w/packages/raft/dist/index.js', 'step')).toBe('@synod/raft');
    expect(ownerOf('/w/packages/log/src/replicated-log.ts', 'drain')).toBe('@synod/log');
    expect(ownerOf('file:///w/node_modules/.pnpm/better-sqlite3@12.9.0/node_modules/better-sqlite3/lib/x.js', 'f')).toBe('better-sqlite3');
    expect(ownerOf('file:///w/node_modules/@markwylde/liferaft/index.js', 'f')).toBe('@markwylde/liferaft');
    expect(ownerOf('node:internal/timers', 'processImmediate')).toBe('node');
    expect(ownerOf('', '(garbage collector)')).toBe('(gc)');
    expect(ownerOf('', 'writev')).toBe('(native)');
    expect(ownerOf('file:///w/apps/bench/dist/child.js', 'op')).toBe('@synod/bench');
  });

  it('sums self time per owner and charges native frames to their JavaScript caller', () => {
    const s = summarizeProfile(profile, 'p.cpuprofile');
    expect(s.totalMs).toBe(11);
    const owners = Object.fromEntries(s.owners.map((o) => [o.owner, o.ms]));
    expect(owners).toEqual({ '@synod/storage-sqlite (native)': 4, '(idle)': 2, '@synod/log': 1, '@synod/storage-sqlite': 1, '(gc)': 1, ws: 1, '(profiler)': 1 });
    expect(s.owners[0]!.share).toBeCloseTo(4 / 11, 6);
    expect(s.top[0]).toMatchObject({ fn: 'run', owner: '@synod/storage-sqlite (native)', ms: 4 });
    expect(s.top[0]!.location).toBe('native, called from persist packages/storage-sqlite/dist/index.js:222');
    expect(s.top.map((f) => f.fn)).not.toContain('(idle)');
    expect(s.top.map((f) => f.fn)).not.toContain('dispatch'); // the profiler's own work
  });

  it('falls back to hit counts without samples', () => {
    const s = summarizeProfile({ ...profile, endTime: 10_000, samples: undefined, timeDeltas: undefined, nodes: profile.nodes.map((n) => ({ ...n, hitCount: n.id === 2 ? 3 : n.id === 5 ? 1 : 0 })) });
    expect(s.owners.map((o) => [o.owner, o.ms])).toEqual([['@synod/log', 7.5], ['(idle)', 2.5]]);
  });

  it('describes what the thread did', () => {
    expect(describeLimit(summarizeProfile(profile))).toBe('main thread busy 82%: @synod/storage-sqlite (native) 36%, @synod/log 9%, @synod/storage-sqlite 9%');
  });

  it('labels replica processes from file names', () => {
    expect(processLabel('/p/raft_ws_sqlite_n3_c256_p16_n1_leader.cpuprofile', 0)).toBe('n1 (leader)');
    expect(processLabel('/p/raft_ws_sqlite_n3_c256_p16_n2.cpuprofile', 1)).toBe('n2');
    expect(processLabel('/p/other.cpuprofile', 2)).toBe('process 3');
  });
});
