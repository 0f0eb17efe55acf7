/**
 * Size limits that must agree end to end: an HTTP body becomes a KV command, the command is
 * proposed to `ReplicatedLog` (which refuses commands over `maxCommandBytes` with
 * `CommandTooLargeError`), and the entry travels in a WebSocket frame (16 MiB limit). A body
 * the gateway accepts therefore always fits in a command a replica accepts, which always fits
 * in a frame: one large value can never enter the log and then stall replication.
 */

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * `maxCommandBytes` of every replica's `ReplicatedLog`, in bytes: 8 MiB (the runtime's default),
 * half the WebSocket transport's 16 MiB frame limit, so an entry plus its headers always fits
 * in one frame.
 */
export const MAX_COMMAND_BYTES = 8 * 1024 * 1024;

/**
 * Bytes a KV put command needs besides the value: the operation tag, the key's length
 * (varint), the key (up to {@link MAX_KEY_BYTES}) and the value's length (varint), about
 * 1031 bytes at most; rounded up to 4 KiB.
 */
export const COMMAND_HEADROOM_BYTES = 4096;

/** The largest `--max-body-bytes` the demo accepts: {@link MAX_COMMAND_BYTES} minus {@link COMMAND_HEADROOM_BYTES} (8 MiB - 4 KiB). */
export const MAX_BODY_BYTES_LIMIT = MAX_COMMAND_BYTES - COMMAND_HEADROOM_BYTES;

/** Default `--max-body-bytes`: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Throws a readable error unless `n` is an integer in 1..{@link MAX_BODY_BYTES_LIMIT}. */
export function checkMaxBodyBytes(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_BODY_BYTES_LIMIT) {
    throw new Error(
      `maxBodyBytes must be an integer in 1..${MAX_BODY_BYTES_LIMIT} (a replica accepts commands up to ${MAX_COMMAND_BYTES} bytes, ` +
        `and a command needs up to ${COMMAND_HEADROOM_BYTES} bytes besides the value), got ${String(n)}`,
    );
  }
}
