/**
 * The benchmark matrix: protocol × transport × storage × nodes × clients × payload bytes, the
 * quick and full profiles, and subset selection.
 */

/** Consensus protocols the bench drives. */
export const PROTOCOLS = ['raft', 'paxos'] as const;
/** `memory`: every replica in one process on `@synod/transport-memory`; `ws`: one OS process per replica on `@synod/transport-ws`. */
export const TRANSPORTS = ['memory', 'ws'] as const;
/** `memory`: `MemoryStorage`; `sqlite`: `@synod/storage-sqlite` (WAL, synchronous=FULL). */
export const STORAGES = ['memory', 'sqlite'] as const;

/** `raft` or `paxos`. */
export type Protocol = (typeof PROTOCOLS)[number];
/** `memory` or `ws`. */
export type TransportKind = (typeof TRANSPORTS)[number];
/** `memory` or `sqlite`. */
export type StorageKind = (typeof STORAGES)[number];

/** One cell of the matrix. */
export interface CellSpec {
  readonly protocol: Protocol;
  readonly transport: TransportKind;
  readonly storage: StorageKind;
  /** Number of voting replicas. */
  readonly nodes: number;
  /** Concurrent closed-loop clients (operations in flight). */
  readonly clients: number;
  /** Bytes of each command's payload. */
  readonly payloadBytes: number;
}

/** Lists of values per dimension; a matrix is their cross product. */
export interface Dimensions {
  readonly protocols: readonly Protocol[];
  readonly transports: readonly TransportKind[];
  readonly storages: readonly StorageKind[];
  readonly nodes: readonly number[];
  readonly clients: readonly number[];
  readonly payloads: readonly number[];
}

/** The whole matrix of issue 6 (96 cells). */
export const FULL_DIMENSIONS: Dimensions = {
  protocols: PROTOCOLS,
  transports: TRANSPORTS,
  storages: STORAGES,
  nodes: [3, 5],
  clients: [1, 16, 256],
  payloads: [16, 1024],
};

/** Every cell of `d`, in a stable order (protocol outermost, payload innermost). */
export function crossProduct(d: Dimensions): CellSpec[] {
  const out: CellSpec[] = [];
  for (const protocol of d.protocols)
    for (const transport of d.transports)
      for (const storage of d.storages)
        for (const nodes of d.nodes)
          for (const clients of d.clients)
            for (const payloadBytes of d.payloads) out.push({ protocol, transport, storage, nodes, clients, payloadBytes });
  return out;
}

/**
 * The quick profile (the default, about 2 minutes with baselines, peers and failover): both
 * protocols on 3 nodes with 16-byte payloads — memory/memory at 1, 16 and 256 clients,
 * memory transport with SQLite at 1 and 256 clients, and ws with SQLite (3 processes) at 256.
 */
export const QUICK_CELLS: readonly CellSpec[] = [
  ...crossProduct({ protocols: PROTOCOLS, transports: ['memory'], storages: ['memory'], nodes: [3], clients: [1, 16, 256], payloads: [16] }),
  ...crossProduct({ protocols: PROTOCOLS, transports: ['memory'], storages: ['sqlite'], nodes: [3], clients: [1, 256], payloads: [16] }),
  ...crossProduct({ protocols: PROTOCOLS, transports: ['ws'], storages: ['sqlite'], nodes: [3], clients: [256], payloads: [16] }),
];

/** Optional per-dimension filters; an absent filter keeps every value. */
export type CellFilter = Partial<Dimensions>;

/**
 * The cells of a profile that pass `filter`. `full` starts from the whole matrix, otherwise
 * from {@link QUICK_CELLS}. In the quick profile, a filter that leaves no cell (it names values
 * the profile lacks, e.g. `--nodes 5`) selects the cross product of the filter's lists instead,
 * with the quick defaults (raft and paxos, memory transport and storage, 3 nodes, 256 clients,
 * 16 bytes) for the dimensions it does not name.
 */
export function selectCells(full: boolean, filter: CellFilter = {}): CellSpec[] {
  const base = full ? crossProduct(FULL_DIMENSIONS) : [...QUICK_CELLS];
  const keep = (c: CellSpec) =>
    (!filter.protocols || filter.protocols.includes(c.protocol)) &&
    (!filter.transports || filter.transports.includes(c.transport)) &&
    (!filter.storages || filter.storages.includes(c.storage)) &&
    (!filter.nodes || filter.nodes.includes(c.nodes)) &&
    (!filter.clients || filter.clients.includes(c.clients)) &&
    (!filter.payloads || filter.payloads.includes(c.payloadBytes));
  const selected = base.filter(keep);
  if (selected.length > 0 || full) return selected;
  // The filter names values the quick profile lacks: build the cross product of the quick
  // profile's values overridden by the filter.
  const dims: Dimensions = {
    protocols: filter.protocols ?? PROTOCOLS,
    transports: filter.transports ?? ['memory'],
    storages: filter.storages ?? ['memory'],
    nodes: filter.nodes ?? [3],
    clients: filter.clients ?? [256],
    payloads: filter.payloads ?? [16],
  };
  return crossProduct(dims);
}

/** A short stable name of a cell, e.g. `raft/memory/sqlite/n3/c256/p16`. */
export function cellKey(c: CellSpec): string {
  return `${c.protocol}/${c.transport}/${c.storage}/n${c.nodes}/c${c.clients}/p${c.payloadBytes}`;
}

/** Parses a comma-separated list against allowed values; throws a readable error otherwise. */
export function parseList<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new Error(`${what}: empty list`);
  for (const it of items) if (!(allowed as readonly string[]).includes(it)) throw new Error(`${what}: unknown value '${it}' (allowed: ${allowed.join(', ')})`);
  return [...new Set(items)] as T[];
}

/** Parses a comma-separated list of positive integers (at most `max`). */
export function parseIntList(value: string, what: string, max = 1_000_000): number[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new Error(`${what}: empty list`);
  const out: number[] = [];
  for (const it of items) {
    const n = Number(it);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${what}: '${it}' is not an integer in [1, ${max}]`);
    out.push(n);
  }
  return [...new Set(out)];
}
