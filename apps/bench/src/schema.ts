/**
 * The shape of `bench-results/latest.json`, as a zod schema: exactly the fields issue 6 asks
 * for (`machine`, `baselines`, `results`, `peers`, `failover`), each object allowing extra
 * fields (cpu, rss, limits, profiles...).
 */
import { z } from 'zod';
import { PROTOCOLS, STORAGES, TRANSPORTS } from './matrix.js';

const finiteNonNeg = z.number().finite().nonnegative();

/** The machine a run happened on. */
export const machineSchema = z.looseObject({
  /** e.g. `linux 6.1.0 x64`. */
  os: z.string(),
  cpuModel: z.string(),
  cpus: z.number().int().positive(),
  memoryGiB: finiteNonNeg,
  node: z.string(),
  /** ISO time the run started. */
  date: z.string(),
  /** `quick`, `full` or `custom`. */
  profile: z.string(),
  /** The command line that reproduces the run. */
  command: z.string(),
});

/** One physical-limit measurement. */
export const baselineSchema = z.looseObject({
  name: z.string().min(1),
  opsPerSec: finiteNonNeg,
});

/** One cell of the matrix. */
export const resultSchema = z.looseObject({
  protocol: z.enum(PROTOCOLS),
  transport: z.enum(TRANSPORTS),
  storage: z.enum(STORAGES),
  nodes: z.number().int().positive(),
  clients: z.number().int().positive(),
  payloadBytes: z.number().int().positive(),
  opsPerSec: finiteNonNeg,
  p50Ms: finiteNonNeg,
  p99Ms: finiteNonNeg,
  p999Ms: finiteNonNeg,
  /** opsPerSec divided by the bounding baseline's rate; null when no baseline was measured. */
  ratioToLimit: finiteNonNeg.nullable(),
});

/** One peer library measurement. */
export const peerSchema = z.looseObject({
  name: z.string().min(1),
  nodes: z.number().int().positive(),
  clients: z.number().int().positive(),
  opsPerSec: finiteNonNeg,
  p99Ms: finiteNonNeg,
});

/** Failover time of one protocol: median ms from SIGKILL of the leader to the next committed write. */
export const failoverSchema = z.looseObject({
  protocol: z.enum(PROTOCOLS),
  ms: finiteNonNeg,
});

/** The whole `latest.json`. */
export const benchReportSchema = z.looseObject({
  machine: machineSchema,
  baselines: z.array(baselineSchema),
  results: z.array(resultSchema),
  peers: z.array(peerSchema),
  failover: z.array(failoverSchema),
});

/** The machine of a run (see machineSchema). */
export type MachineInfo = z.infer<typeof machineSchema>;
/** One baseline in latest.json. */
export type BaselineRecord = z.infer<typeof baselineSchema>;
/** One cell result in latest.json. */
export type ResultRecord = z.infer<typeof resultSchema>;
/** One peer run in latest.json. */
export type PeerRecord = z.infer<typeof peerSchema>;
/** One protocol's failover time in latest.json. */
export type FailoverRecord = z.infer<typeof failoverSchema>;
/** The whole latest.json. */
export type BenchReport = z.infer<typeof benchReportSchema>;

/** Validates a parsed `latest.json`; throws a `ZodError` listing every problem. */
export function parseBenchReport(value: unknown): BenchReport {
  return benchReportSchema.parse(value);
}
