/**
 * `@synod/storage-sqlite`: durable synod `Storage` over SQLite (better-sqlite3), one
 * transaction per persist. See the package README for a runnable example.
 */
export {
  SqliteStorage,
  SqliteStorageError,
  SCHEMA_VERSION,
  APPLICATION_ID,
  ENTRY_CHUNK,
  type SqliteStorageOptions,
  type SqliteStorageIdentity,
  type SqliteStorageStats,
  type SqliteStorageErrorReason,
  type SqliteSynchronous,
} from './sqlite-storage.js';
