/**
 * `synod-sim`: runs many seeded cluster simulations and checks each for invariants and
 * linearizability. On a violation it prints the seed, what broke and the command that replays
 * it, and writes the history (JSON) and an HTML timeline. The command itself is `runSim` in
 * `run.ts`; this file is the executable (and the worker threads' script).
 *
 *   node packages/testkit/dist/cli/sim.js --protocol raft --seeds 200
 *   node packages/testkit/dist/cli/sim.js --protocol paxos --seed 1234        # replay one seed
 *   node packages/testkit/dist/cli/sim.js --bug forget-vote                   # negative control
 */
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { type RunSpec, runSeeds, runSim } from './run.js';

// Worker thread: run the seeds it was given and post one report per seed.
if (!isMainThread && parentPort && (workerData as { synodSim?: boolean } | null)?.synodSim) {
  const port = parentPort;
  const spec = (workerData as { spec: RunSpec }).spec;
  await runSeeds(spec, (r) => port.postMessage(r));
} else if (isMainThread) {
  process.exitCode = await runSim(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    progress: process.stderr,
    scriptPath: fileURLToPath(import.meta.url),
  });
}
