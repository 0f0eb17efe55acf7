/**
 * The durable-storage contract. A core's whole persistent state (hard state, snapshot, log)
 * goes through one call, {@link Storage.persist}, made once per `Ready`: one transaction, so a
 * batch of entries costs one fsync (natural group commit).
 */
import type { MaybePromise, PersistBatch, PersistedState } from './types.js';

/**
 * Stable storage for one replica.
 *
 * Guarantees an implementation must give (checked by `storageConformance` in
 * `@synod/log/testing`):
 * - `persist` is atomic: after a crash, either all of a batch is visible or none of it;
 * - `persist` is durable when it returns (or its promise resolves);
 * - `load` returns exactly what was persisted: the latest hard state and snapshot, and the
 *   entries above the snapshot ascending by index.
 * A failed `persist` throws (or rejects); the runtime then stops the replica.
 */
export interface Storage {
  /** Reads the persisted state. Called once, before the core is built. */
  load(): MaybePromise<PersistedState>;
  /** Applies one batch atomically and durably (see {@link PersistBatch} for the order). */
  persist(batch: PersistBatch): MaybePromise<void>;
  /** Releases resources. The storage is unusable afterwards. */
  close(): MaybePromise<void>;
}
