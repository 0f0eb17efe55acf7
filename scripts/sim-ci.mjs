#!/usr/bin/env node
// Runs the deterministic simulator for each protocol (default 200 seeds each) and records the
// outcome as extra test results for scripts/count-tests.mjs: every seed is one test.
// Usage: node scripts/sim-ci.mjs [seeds]
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';

const seeds = Number(process.argv[2] ?? 200);
mkdirSync('.test-results', { recursive: true });
let failedRuns = 0;
for (const protocol of ['raft', 'paxos']) {
  const args = ['packages/testkit/dist/cli/sim.js', '--protocol', protocol, '--seeds', String(seeds), '--workers', '2', '--keep-going', '--quiet', '--out', 'sim-failures'];
  console.log(`$ node ${args.join(' ')}`);
  const r = spawnSync('node', args, { encoding: 'utf8' });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  const m = /([\d,]+) passed, ([\d,]+) failed/.exec(r.stdout ?? '');
  const num = (s) => Number(s.replaceAll(',', ''));
  let passed = m ? num(m[1]) : 0;
  let failed = m ? num(m[2]) : 0;
  if (!m || (r.status !== 0 && failed === 0)) {
    // The simulator did not report (crash, bad arguments): count every seed as failed.
    failed = seeds;
    passed = 0;
  }
  if (failed > 0) failedRuns++;
  writeFileSync(`.test-results/extra-sim-${protocol}.json`, JSON.stringify({ name: `sim ${protocol} (${seeds} seeds)`, passed, failed }));
}
process.exit(failedRuns > 0 ? 1 : 0);
