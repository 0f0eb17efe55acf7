/**
 * The replica process: one `ReplicatedLog` (Raft or Multi-Paxos) with a WebSocket transport, a
 * SQLite file and the KV state machine, driven by the supervisor over the fork IPC channel.
 *
 * The process exits when the supervisor goes away (IPC `disconnect`), on SIGTERM/SIGINT (after
 * stopping the log cleanly, so the SQLite file is closed), and on a fatal replica error.
 */
import { createReplicaParts, type ReplicaParts } from './components.js';
import type { IpcEvent, IpcRequest, IpcResponse, ReplicaConfig } from './ipc.js';
import { handleOperation, statusOf, toIpcError } from './replica-ops.js';

function send(msg: IpcResponse | IpcEvent): void {
  if (process.connected && process.send) {
    try {
      process.send(msg);
    } catch {
      // the channel closed under us; 'disconnect' ends the process
    }
  }
}

let parts: ReplicaParts | null = null;
let stopping = false;

async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(code), 3000);
  force.unref();
  try {
    await parts?.log.stop();
  } catch {
    // closing is best effort; the data is durable already
  }
  process.exit(code);
}

async function main(): Promise<void> {
  const raw = process.env.SYNOD_REPLICA;
  if (!raw || !process.send) {
    console.error('replica.js is started by the demo supervisor (fork with SYNOD_REPLICA set)');
    process.exit(2);
  }
  const cfg = JSON.parse(raw) as ReplicaConfig;
  process.on('disconnect', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  // Ctrl-C in the terminal reaches the whole process group: let the supervisor drive the stop,
  // but never linger if it does not.
  process.on('SIGINT', () => {
    setTimeout(() => void shutdown(0), 2000).unref();
  });

  // Requests that arrive while the replica is starting wait for it.
  let resolveReady!: (p: ReplicaParts) => void;
  const readyPromise = new Promise<ReplicaParts>((r) => (resolveReady = r));
  process.on('message', (msg: IpcRequest) => {
    if (!msg || msg.t !== 'req') return;
    void readyPromise
      .then((p) => handleOperation(p, msg.op, () => void shutdown(0)))
      .then(
        (value) => send({ t: 'res', id: msg.id, ok: true, value }),
        (err) => send({ t: 'res', id: msg.id, ok: false, error: toIpcError(err) }),
      );
  });

  try {
    parts = await createReplicaParts(cfg, (err) => {
      send({ t: 'fatal', error: toIpcError(err) });
      console.error(`[${cfg.id}] stopped on a fatal error: ${err.message}`);
      setTimeout(() => process.exit(1), 50);
    });
    await parts.log.start();
    for (const [id, addr] of Object.entries(cfg.peers)) if (id !== cfg.id) parts.network.setPeerAddress(id, addr);
    // A bootstrap member reports ready only once its bootstrap configuration is on disk: the
    // supervisor then marks it initialized, and later starts pass create: false and no bootstrap.
    if (cfg.bootstrap) {
      const p = parts;
      const until = Date.now() + 15_000;
      while (!p.hasDurableState()) {
        if (p.log.error) throw p.log.error;
        if (Date.now() > until) throw new Error('the bootstrap configuration was not persisted within 15 s');
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  } catch (err) {
    send({ t: 'fatal', error: toIpcError(err) });
    console.error(`[${cfg.id}] failed to start: ${(err as Error)?.stack ?? String(err)}`);
    setTimeout(() => process.exit(1), 50);
    return;
  }
  resolveReady(parts);
  send({ t: 'ready', status: statusOf(parts) });
}

void main();
