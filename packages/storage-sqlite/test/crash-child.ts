/**
 * Child process of the crash test. Usage:
 *   node --conditions=@synod/source --import tsx test/crash-child.ts <db> <seed> <skip>
 * Regenerates (without writing) the first <skip> batches of the workload, checks the database
 * holds exactly that state, then persists batch after batch forever, printing `ack <n>` on
 * stdout (a synchronous write) after batch n is durable. The parent SIGKILLs it at a random
 * moment.
 */
import { writeSync } from 'node:fs';
import { SqliteStorage } from '../src/index.js';
import { compareState, Workload } from './crash-workload.js';

const [path, seedArg, skipArg] = process.argv.slice(2);
const seed = Number(seedArg);
const skip = Number(skipArg ?? 0);
const storage = SqliteStorage.open(path!);
const w = new Workload(seed);
for (let i = 0; i < skip; i++) w.next();
const diff = compareState(storage.load(), w.model);
if (diff !== null) {
  writeSync(2, `resume check failed after ${skip} batches: ${diff}\n`);
  process.exit(3);
}
writeSync(1, `ready ${skip}\n`);
for (;;) {
  const batch = w.next();
  storage.persist(batch);
  writeSync(1, `ack ${w.count}\n`);
}
