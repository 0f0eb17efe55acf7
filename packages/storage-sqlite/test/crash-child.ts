/**
 * Child process of the crash test. Usage:
 *   node --conditions=@synod/source --import tsx test/crash-child.ts <db> <seed> <skip> [maxAcks]
 * Regenerates (without writing) the first <skip> batches of the workload, checks the database
 * holds exactly that state, then persists batch after batch, printing `ack <n>` on stdout (a
 * synchronous write) after batch n is durable. The parent SIGKILLs it at a random moment.
 *
 * With `maxAcks`, the child stops writing after that many acks in this run and waits to be
 * killed (printing `idle`). The parent sets it well above its kill point, so it only matters
 * when the parent is starved of CPU and reads acks late: the child cannot then run thousands
 * of batches ahead and grow the database (and every later round's work) without bound. If the
 * kill never comes, the child exits with code 4 after two minutes instead of lingering.
 */
import { writeSync } from 'node:fs';
import { SqliteStorage } from '../src/index.js';
import { compareState, Workload } from './crash-workload.js';

const [path, seedArg, skipArg, maxAcksArg] = process.argv.slice(2);
const seed = Number(seedArg);
const skip = Number(skipArg ?? 0);
const maxAcks = maxAcksArg === undefined ? Infinity : Number(maxAcksArg);
const storage = SqliteStorage.open(path!);
const w = new Workload(seed);
for (let i = 0; i < skip; i++) w.next();
const diff = compareState(storage.load(), w.model);
if (diff !== null) {
  writeSync(2, `resume check failed after ${skip} batches: ${diff}\n`);
  process.exit(3);
}
writeSync(1, `ready ${skip}\n`);
for (let acks = 0; acks < maxAcks; acks++) {
  const batch = w.next();
  storage.persist(batch);
  writeSync(1, `ack ${w.count}\n`);
}
writeSync(1, 'idle\n');
// Block (no CPU, no writes) until the parent's SIGKILL arrives.
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
process.exit(4);
