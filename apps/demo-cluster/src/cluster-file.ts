/**
 * The cluster's member list, persisted as `<data-dir>/cluster.json` so that a re-run (and
 * members added at run time) come back with their ids and ports, and so that the supervisor
 * remembers which members have been initialized (started at least once): those must never
 * start again from an empty SQLite file. Written atomically (temporary file + rename).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Node ids the demo accepts: safe as file names and URL segments. */
export const MEMBER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Highest port slot a member may have. */
export const MAX_SLOT = 1000;

const memberSchema = z.object({
  id: z.string().regex(MEMBER_ID_RE, 'must be 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit'),
  /** Port slot: the replica listens on `--port + 1 + slot`. */
  slot: z.number().int().min(0).max(MAX_SLOT),
  /**
   * Whether this member was one of the first run's voters. Such a member gets the bootstrap
   * voter list on its first start only (while `initialized` is false). Members added at run
   * time (even under a reused id) never bootstrap: they start empty and wait for the leader.
   */
  bootstrap: z.boolean().default(false),
  /**
   * Whether the member has started at least once (its SQLite file holds its votes and log).
   * An initialized member is started with `create: false`: a missing or empty SQLite file is
   * refused instead of silently starting a voter that forgot its term, vote and log. Absent in
   * files written before this field existed: then inferred from the SQLite file (see
   * {@link readClusterFile}'s caller).
   */
  initialized: z.boolean().optional(),
});

const clusterSchema = z
  .object({
    version: z.literal(1),
    protocol: z.enum(['raft', 'paxos']),
    /**
     * Random id of this cluster, stored in every replica's SQLite file and sent in every peer
     * handshake: a replica never opens another cluster's file nor talks to another cluster's
     * replicas. Absent in files written before it existed (then created and saved on start).
     */
    clusterId: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/).optional(),
    /** Voters the cluster was bootstrapped with (the first run's members). */
    bootstrap: z.array(z.string().regex(MEMBER_ID_RE)).min(1),
    members: z.array(memberSchema).min(1, 'the member list is empty'),
  })
  .superRefine((file, ctx) => {
    const dup = <T>(values: readonly T[]): T[] => [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
    for (const id of dup(file.members.map((m) => m.id))) {
      ctx.addIssue({ code: 'custom', path: ['members'], message: `member id ${JSON.stringify(id)} appears more than once` });
    }
    for (const slot of dup(file.members.map((m) => m.slot))) {
      const ids = file.members.filter((m) => m.slot === slot).map((m) => m.id);
      ctx.addIssue({ code: 'custom', path: ['members'], message: `port slot ${slot} is used by ${ids.join(' and ')} (two replicas on one port)` });
    }
    for (const id of dup(file.bootstrap)) {
      ctx.addIssue({ code: 'custom', path: ['bootstrap'], message: `bootstrap id ${JSON.stringify(id)} appears more than once` });
    }
  });

/** One member as stored. */
export type MemberRecord = z.infer<typeof memberSchema>;
/** The stored cluster description. */
export type ClusterFile = z.infer<typeof clusterSchema>;

/** Path of the cluster file inside `dataDir`. */
export function clusterFilePath(dataDir: string): string {
  return join(dataDir, 'cluster.json');
}

/**
 * Reads the cluster file, or `null` if there is none. Throws an Error whose message names the
 * file if it is not valid JSON or not a valid cluster description (duplicate ids or port
 * slots, an empty member list, unknown protocol, ...).
 */
export function readClusterFile(dataDir: string): ClusterFile | null {
  const path = clusterFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); fix it or use another --data-dir`);
  }
  const parsed = clusterSchema.safeParse(json);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
    throw new Error(`${path} is not a valid cluster file: ${detail}`);
  }
  return parsed.data;
}

/** Writes the cluster file atomically. */
export function writeClusterFile(dataDir: string, file: ClusterFile): void {
  mkdirSync(dataDir, { recursive: true });
  const path = clusterFilePath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(tmp, path);
}
