/**
 * The cluster's member list, persisted as `<data-dir>/cluster.json` so that a re-run (and
 * members added at run time) come back with their ids and ports. Written atomically
 * (temporary file + rename).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

/** Node ids the demo accepts: safe as file names and URL segments. */
export const MEMBER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const memberSchema = z.object({
  id: z.string().regex(MEMBER_ID_RE),
  /** Port slot: the replica listens on `--port + 1 + slot`. */
  slot: z.number().int().min(0).max(1000),
  /**
   * Whether this member was one of the first run's voters and may bootstrap the cluster when
   * its storage is empty. Members added at run time (even under a reused id) never bootstrap:
   * they start empty and wait for the leader.
   */
  bootstrap: z.boolean().default(false),
});

const clusterSchema = z.object({
  version: z.literal(1),
  protocol: z.enum(['raft', 'paxos']),
  /** Voters the cluster was bootstrapped with (the first run's members). */
  bootstrap: z.array(z.string().regex(MEMBER_ID_RE)).min(1),
  members: z.array(memberSchema),
});

/** One member as stored. */
export type MemberRecord = z.infer<typeof memberSchema>;
/** The stored cluster description. */
export type ClusterFile = z.infer<typeof clusterSchema>;

/** Path of the cluster file inside `dataDir`. */
export function clusterFilePath(dataDir: string): string {
  return join(dataDir, 'cluster.json');
}

/** Reads the cluster file, or `null` if there is none. Throws with a clear message if it is corrupt. */
export function readClusterFile(dataDir: string): ClusterFile | null {
  let text: string;
  try {
    text = readFileSync(clusterFilePath(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const parsed = clusterSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new Error(`${clusterFilePath(dataDir)} is not a valid cluster file: ${parsed.error.message}`);
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
