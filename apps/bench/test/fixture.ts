/** A complete report as `runBench` writes it, for rendering and schema tests. */
export function fixtureReport() {
  return {
    machine: {
      os: 'Linux 6.1.0 x64',
      cpuModel: 'Test CPU',
      cpus: 2,
      memoryGiB: 24,
      node: 'v20.20.2',
      date: '2026-01-01T00:00:00.000Z',
      profile: 'quick',
      command: 'pnpm bench',
      loadAvg: [1, 0.5, 0.25],
      settings: { warmupMs: 1000, durationMs: 3000 },
    },
    baselines: [
      { name: 'sqlite-append-single-16B', opsPerSec: 600, unit: 'entries/s', description: 'one entry per transaction' },
      { name: 'sqlite-append-batched-16B', opsPerSec: 60_000, unit: 'entries/s', description: '256 entries per transaction' },
      { name: 'inproc-roundtrip-pipelined', opsPerSec: 3_000_000, unit: 'round trips/s', description: 'memory transport' },
      { name: 'ws-roundtrip-pipelined', opsPerSec: 70_000, unit: 'round trips/s', description: 'raw ws' },
    ],
    results: [
      { protocol: 'raft', transport: 'memory', storage: 'memory', nodes: 3, clients: 1, payloadBytes: 16, opsPerSec: 30_000, p50Ms: 0.02, p99Ms: 0.05, p999Ms: 3, ratioToLimit: 0.15, limit: 'inproc-roundtrip-serial', cpuPct: 70, peakRssMb: 120 },
      { protocol: 'raft', transport: 'memory', storage: 'memory', nodes: 3, clients: 256, payloadBytes: 16, opsPerSec: 250_000, p50Ms: 0.5, p99Ms: 10, p999Ms: 20, ratioToLimit: 0.0833, limit: 'inproc-roundtrip-pipelined', cpuPct: 98, peakRssMb: 150 },
      { protocol: 'paxos', transport: 'memory', storage: 'memory', nodes: 3, clients: 256, payloadBytes: 16, opsPerSec: 180_000, p50Ms: 0.7, p99Ms: 12, p999Ms: 25, ratioToLimit: 0.06, limit: 'inproc-roundtrip-pipelined', cpuPct: 99, peakRssMb: 160 },
      {
        protocol: 'raft', transport: 'ws', storage: 'sqlite', nodes: 3, clients: 256, payloadBytes: 16, opsPerSec: 31_000, p50Ms: 8, p99Ms: 30, p999Ms: 50, ratioToLimit: 0.5167, limit: 'sqlite-append-batched-16B', cpuPct: 120, peakRssMb: 300,
        limitedBy: 'n1 (leader): main thread busy 80%: better-sqlite3 (native) 40%',
        profile: [
          { file: '/x/raft_ws_sqlite_n3_c256_p16_n1_leader.cpuprofile', owners: [{ owner: 'better-sqlite3 (native)', share: 0.4 }, { owner: '(idle)', share: 0.2 }], top: [{ fn: 'run', location: 'native, called from sqliteTransaction', share: 0.4 }] },
          { file: '/x/raft_ws_sqlite_n3_c256_p16_n2.cpuprofile', owners: [{ owner: '(idle)', share: 0.6 }], top: [] },
        ],
      },
    ],
    peers: [
      { name: '@markwylde/liferaft', version: '1.4.0', nodes: 3, clients: 1, opsPerSec: 800, p50Ms: 1.2, p99Ms: 3.4, errors: 0, setup: 'in process' },
      { name: '@markwylde/liferaft', version: '1.4.0', nodes: 3, clients: 16, opsPerSec: 700, p50Ms: 20, p99Ms: 1000, errors: 40, setup: 'in process' },
    ],
    failover: [{ protocol: 'raft', ms: 1450, runsMs: [1400, 1450, 1500], setup: '3 processes' }],
    skipped: [{ what: 'paxos/ws/sqlite/n3/c256/p16', reason: '@synod/paxos cannot be loaded' }],
  };
}
