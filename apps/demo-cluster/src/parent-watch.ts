/**
 * Stopping with the package manager. `pnpm demo` runs `pnpm → sh -c "… && node dist/cli.js"`,
 * and a SIGTERM to pnpm is not forwarded: pnpm and its shell go away, the supervisor is
 * re-parented and would keep serving the port with every replica. So when the CLI was started
 * by a package-manager script, it watches its parent (and, when that parent is the script's
 * shell, the package manager above it) and shuts down cleanly, as on SIGTERM, once either is
 * gone. Run directly (`node dist/cli.js`), nothing is watched.
 */
import { readFileSync } from 'node:fs';

/** Options of {@link watchParent}. */
export interface ParentWatchOptions {
  /** The parent pid when the process started (`process.ppid` at start). */
  readonly initialPpid: number;
  /** Reads the current parent pid. Default `() => process.ppid`. */
  readonly currentPpid?: () => number;
  /**
   * Further ancestors that must stay alive, e.g. the package manager above the script's shell
   * (see {@link packageManagerAncestors}). Default none.
   */
  readonly ancestors?: readonly number[];
  /** Whether a pid is a live process. Default {@link processAlive}. */
  readonly isAlive?: (pid: number) => boolean;
  /** Poll interval in ms. Default 500. */
  readonly intervalMs?: number;
  /** Called once, with a reason such as `parent process 123 exited`, when the parent or an ancestor is gone. */
  readonly onGone: (reason: string) => void;
}

/** A running {@link watchParent}. */
export interface ParentWatch {
  /** Stops polling (idempotent). */
  stop(): void;
  /** The poll timer; unref'd, so it never keeps the process alive by itself. */
  readonly timer: ReturnType<typeof setInterval>;
}

/**
 * Polls every `intervalMs` (default 500 ms) whether the parent pid still equals `initialPpid`
 * and every pid in `ancestors` is alive; the first time one is not, stops polling and calls
 * `onGone` once. The timer is unref'd. Throws nothing.
 */
export function watchParent(options: ParentWatchOptions): ParentWatch {
  const currentPpid = options.currentPpid ?? (() => process.ppid);
  const isAlive = options.isAlive ?? processAlive;
  const ancestors = options.ancestors ?? [];
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped) return;
    let reason: string | null = null;
    const ppid = currentPpid();
    if (ppid !== options.initialPpid) reason = `parent process ${options.initialPpid} exited`;
    else {
      const gone = ancestors.find((pid) => !isAlive(pid));
      if (gone !== undefined) reason = `package manager process ${gone} exited`;
    }
    if (reason === null) return;
    stop();
    options.onGone(reason);
  }, options.intervalMs ?? 500);
  timer.unref();
  function stop(): void {
    stopped = true;
    clearInterval(timer);
  }
  return { stop, timer };
}

/**
 * Whether the process was started by a package-manager script (`pnpm demo`, `npm run demo`,
 * `yarn demo`): npm, pnpm and yarn set `npm_lifecycle_event` to the script's name.
 */
export function startedByPackageManager(env: Readonly<Record<string, string | undefined>>): boolean {
  return typeof env.npm_lifecycle_event === 'string' && env.npm_lifecycle_event !== '';
}

/** Shells a package manager runs scripts with. */
const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'ksh']);

/**
 * The package manager above the script's shell: `[pid]` of the parent of `ppid` when `ppid`
 * is a shell (`sh -c "<script>"`), else `[]`. Reads `/proc/<ppid>/comm` and `/proc/<ppid>/stat`
 * through `readProc` (default: `readFileSync(path, 'utf8')`), so it finds nothing where there is
 * no procfs (the parent pid alone is then watched). Throws nothing.
 */
export function packageManagerAncestors(ppid: number, readProc: (path: string) => string = (p) => readFileSync(p, 'utf8')): number[] {
  try {
    if (!SHELLS.has(readProc(`/proc/${ppid}/comm`).trim())) return [];
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses, so parse after the last ')'.
    const stat = readProc(`/proc/${ppid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const parent = Number(fields[1]);
    return Number.isInteger(parent) && parent > 1 ? [parent] : [];
  } catch {
    return [];
  }
}

/**
 * Whether `pid` is a live process: `kill(pid, 0)` succeeds (or fails with EPERM: it exists,
 * owned by someone else) and, where `/proc` exists, it is not a zombie.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true;
  }
}
