/**
 * `@synod/bench` internals, exported for the bench's own tests and for scripts that re-render
 * a report from `latest.json`. The command-line entry is `dist/cli.js`.
 */
export { LatencyRecorder, type LatencySummary } from './histogram.js';
export { runClosedLoop, type ClosedLoopOptions, type ClosedLoopResult } from './load.js';
export {
  PROTOCOLS,
  TRANSPORTS,
  STORAGES,
  FULL_DIMENSIONS,
  QUICK_CELLS,
  crossProduct,
  selectCells,
  cellKey,
  parseList,
  parseIntList,
  type CellSpec,
  type CellFilter,
  type Dimensions,
  type Protocol,
  type TransportKind,
  type StorageKind,
} from './matrix.js';
export { BASELINE, candidateLimits, limitFor, ratioToLimit, type BaselineRate } from './ratio.js';
export {
  benchReportSchema,
  parseBenchReport,
  type BenchReport,
  type BaselineRecord,
  type ResultRecord,
  type PeerRecord,
  type FailoverRecord,
  type MachineInfo,
} from './schema.js';
export { checkGoals, type GoalCheck } from './goals.js';
export { renderMarkdown, renderTerminalTable, type MarkdownOptions } from './report.js';
export { renderThroughputSvg, throughputSpec } from './chart.js';
export { summarizeProfile, summarizeProfileFile, ownerOf, describeLimit, type CpuProfile, type ProfileSummary } from './profile.js';
export { pickMedianRun, runBench, type RunOptions, type RunOutput } from './run.js';
export { median, measureFailoverOnce, type FailoverOptions } from './failover.js';
export { runWsCell } from './ws-cell.js';
export { runLiferaft, type PeerRunOptions, type PeerMeasurement } from './peers/liferaft.js';
export { fmtMs, fmtRate, fmtRatio, mdTable } from './format.js';
export { CounterStateMachine, makePayload, loadProtocol, UnavailableError } from './components.js';
export { runMemoryCell } from './memory-cell.js';
export { measureSqliteAppend, measureInprocRoundTrips, measureWsRoundTrips, measureBaselines, type BaselineResult } from './baselines.js';
export type { CellMeasurement, CellRunOptions } from './cell-types.js';
