/** A description of the machine a run happens on, for the report. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem, type, arch } from 'node:os';

/** Facts about this machine and process. */
export function describeMachine(): { os: string; cpuModel: string; cpus: number; memoryGiB: number; node: string; loadAvg: number[]; gitCommit: string | null } {
  const c = cpus();
  let gitCommit: string | null = null;
  try {
    gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    gitCommit = null;
  }
  return {
    os: `${type()} ${release()} ${arch()}`,
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cpus: c.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    gitCommit,
  };
}
