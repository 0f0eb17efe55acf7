/**
 * `@synod/demo-cluster`: a supervisor with an HTTP gateway that runs replica processes
 * (ReplicatedLog + Raft or Multi-Paxos + WebSocket peer links + SQLite) on one machine.
 * Most people run it with `pnpm demo`; {@link startDemo} is the same thing as a function.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { Gateway } from './gateway.js';
import { DEFAULT_MAX_BODY_BYTES } from './limits.js';
import { Supervisor, type DemoOptions } from './supervisor.js';

export { Supervisor, type DemoOptions, type ClusterView, type NodeView, type DemoProtocol } from './supervisor.js';
export { Gateway, type GatewayOptions } from './gateway.js';
export { GatewayError } from './errors.js';
export { MAX_KEY_BYTES, MAX_COMMAND_BYTES, COMMAND_HEADROOM_BYTES, MAX_BODY_BYTES_LIMIT, DEFAULT_MAX_BODY_BYTES } from './limits.js';

/** Defaults of every {@link DemoOptions} field. */
export const DEFAULT_OPTIONS: Omit<DemoOptions, 'replicaScript'> = {
  nodes: 3,
  port: 8080,
  host: '127.0.0.1',
  dataDir: '.synod/demo',
  protocol: 'raft',
  tickMs: 100,
  requestTimeoutMs: 5000,
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  snapshotEntries: 10_000,
  verbose: false,
};

/** A running demo. */
export interface RunningDemo {
  /** The gateway's URL, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  readonly supervisor: Supervisor;
  /** Stops the gateway and every replica. */
  stop(): Promise<void>;
}

/** Path of the built replica entry next to this module (dist/replica.js). */
export function defaultReplicaScript(): string {
  return join(dirname(fileURLToPath(import.meta.url)), 'replica.js');
}

/**
 * Starts the supervisor, every replica and the gateway. Rejects if an option is out of range,
 * `cluster.json` is invalid, a replica fails to start (except one whose data is missing: it
 * stays down, see the README) or the gateway port is taken (everything started is stopped
 * again).
 */
export async function startDemo(options: Partial<DemoOptions> = {}): Promise<RunningDemo> {
  const opts: DemoOptions = { ...DEFAULT_OPTIONS, replicaScript: defaultReplicaScript(), ...options };
  const supervisor = new Supervisor(opts); // validates maxBodyBytes
  const gateway = new Gateway(supervisor);
  let url: string;
  try {
    url = await gateway.listen(opts.port, opts.host);
  } catch (err) {
    throw new Error(`cannot listen on ${opts.host}:${opts.port}: ${(err as Error).message}`);
  }
  try {
    await supervisor.start();
  } catch (err) {
    await gateway.close();
    throw err;
  }
  let stopping: Promise<void> | null = null;
  return {
    url,
    supervisor,
    stop: () =>
      (stopping ??= (async () => {
        await gateway.close();
        await supervisor.stop();
      })()),
  };
}
