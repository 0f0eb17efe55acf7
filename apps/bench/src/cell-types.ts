/** Types shared by the cell runners and the orchestrator. */
import type { ClosedLoopResult } from './load.js';

/** How to run one cell. */
export interface CellRunOptions {
  /** Warm-up in ms (load runs, nothing counted). */
  readonly warmupMs: number;
  /** Measurement window in ms. */
  readonly durationMs: number;
  /** ReplicatedLog tick in ms (default: the runtime's, 100). */
  readonly tickMs?: number;
  /** Options passed to `raft()` / `paxos()`. */
  readonly protocolOptions?: Record<string, unknown>;
  /** Parent of the temporary SQLite directories (default: the OS temp dir). */
  readonly tmpDir?: string;
  /** Write a V8 CPU profile of the measurement window of each process into this directory. */
  readonly cpuProfDir?: string | undefined;
  /** Node flags of forked child processes (tests run the TypeScript entry with `--import tsx`). */
  readonly childExecArgv?: readonly string[];
}

/** What one cell measured. */
export interface CellMeasurement extends ClosedLoopResult {
  /** CPU time of the cell's processes during the window, as % of one core (200 = two cores busy). */
  readonly cpuPct: number;
  /** Peak RSS in MiB: of the one process (memory transport), or summed over replica processes (ws). */
  readonly peakRssMb: number;
  /** OS processes the cell ran in. */
  readonly processes: number;
  /** Leader id at the end. */
  readonly leader: string;
  /** Leader's commit index at the end. */
  readonly commitIndex: number;
  /** `persist` calls per second, summed over replicas, during the window. */
  readonly persistsPerSec?: number;
  /** Mean entries per `persist` (per transaction) over every replica during the window. */
  readonly entriesPerPersist?: number;
  /** Protocol messages sent per committed operation, over every replica during the window. */
  readonly messagesPerOp?: number;
  /** ws cells: protocol messages per WebSocket frame (the transport's batching). */
  readonly messagesPerFrame?: number;
  /** CPU profile files written, if profiling. */
  readonly profiles?: readonly string[];
}
