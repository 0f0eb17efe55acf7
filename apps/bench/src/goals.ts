/**
 * The goals of issue 6 for the quick profile, checked against a run's results. Goals are
 * reported, never asserted: a run on a busy machine may miss them.
 */
import type { BenchReport, ResultRecord } from './schema.js';

/** One goal and whether the run met it (`null`: not measured in this run). */
export interface GoalCheck {
  readonly goal: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

const find = (rs: readonly ResultRecord[], p: Partial<ResultRecord>): ResultRecord | undefined =>
  rs.find((r) => Object.entries(p).every(([k, v]) => (r as Record<string, unknown>)[k] === v));

const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')} ops/s`;

/** Checks the four goals of issue 6. */
export function checkGoals(report: Pick<BenchReport, 'results' | 'peers'>): GoalCheck[] {
  const rs = report.results;
  const out: GoalCheck[] = [];
  const memCell = find(rs, { protocol: 'raft', transport: 'memory', storage: 'memory', nodes: 3, clients: 256, payloadBytes: 16 });
  out.push({
    goal: 'raft, memory transport and storage, 3 nodes, 256 clients',
    target: '≥ 200,000 ops/s',
    measured: memCell ? rate(memCell.opsPerSec) : 'not measured',
    met: memCell ? memCell.opsPerSec >= 200_000 : null,
  });
  const wsCell = find(rs, { protocol: 'raft', transport: 'ws', storage: 'sqlite', nodes: 3, clients: 256, payloadBytes: 16 });
  out.push({
    goal: 'raft over ws with sqlite, 3 processes, 256 clients',
    target: '≥ 30,000 ops/s',
    measured: wsCell ? rate(wsCell.opsPerSec) : 'not measured',
    met: wsCell ? wsCell.opsPerSec >= 30_000 : null,
  });
  const lr = report.peers.filter((p) => p.name.includes('liferaft')).sort((a, b) => b.opsPerSec - a.opsPerSec)[0];
  const bestRaft = rs.filter((r) => r.protocol === 'raft' && r.transport === 'memory' && r.storage === 'memory').sort((a, b) => b.opsPerSec - a.opsPerSec)[0];
  if (lr && bestRaft && lr.opsPerSec > 0) {
    const x = bestRaft.opsPerSec / lr.opsPerSec;
    out.push({
      goal: 'raft (memory/memory, best cell) against liferaft (best run)',
      target: '≥ 20×',
      measured: `${x.toFixed(1)}× (${rate(bestRaft.opsPerSec)} vs ${rate(lr.opsPerSec)})`,
      met: x >= 20,
    });
  } else {
    out.push({ goal: 'raft (memory/memory, best cell) against liferaft (best run)', target: '≥ 20×', measured: 'not measured', met: null });
  }
  // Paxos within 20% of raft in every cell measured for both.
  const pairs: [ResultRecord, ResultRecord][] = [];
  for (const p of rs.filter((r) => r.protocol === 'paxos')) {
    const r = find(rs, { protocol: 'raft', transport: p.transport, storage: p.storage, nodes: p.nodes, clients: p.clients, payloadBytes: p.payloadBytes });
    if (r && r.opsPerSec > 0) pairs.push([r, p]);
  }
  if (pairs.length === 0) {
    out.push({ goal: 'paxos within 20% of raft (every cell run for both)', target: 'paxos ≥ 0.8 × raft', measured: 'not measured', met: null });
  } else {
    const ratios = pairs.map(([r, p]) => p.opsPerSec / r.opsPerSec);
    const worst = Math.min(...ratios);
    const worstPair = pairs[ratios.indexOf(worst)]!;
    out.push({
      goal: 'paxos within 20% of raft (every cell run for both)',
      target: 'paxos ≥ 0.8 × raft',
      measured: `worst ${worst.toFixed(2)}× (${worstPair[1].transport}/${worstPair[1].storage}, ${worstPair[1].clients} clients) over ${pairs.length} cells`,
      met: worst >= 0.8,
    });
  }
  return out;
}
