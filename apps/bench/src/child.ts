#!/usr/bin/env node
/**
 * The bench's child-process entry (dist/child.js), forked by the orchestrator with one role:
 * - `cell`: runs one in-process (memory transport) cell sent over IPC and answers its
 *   measurement, so every cell starts from a fresh process (own JIT state, own peak RSS);
 * - `replica`: one ws replica (see replica.ts);
 * - `peer`: one peer-library measurement sent over IPC (a fresh process per peer run);
 * - `echo`: a raw `ws` echo server for the ws round-trip baseline.
 */
import { WebSocketServer } from 'ws';
import type { AddressInfo } from 'node:net';
import type { CellRequest } from './ipc.js';
import { runMemoryCell } from './memory-cell.js';
import { type PeerRequest, runPeer } from './peer-child.js';
import { runReplicaProcess } from './replica.js';

function send(msg: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, undefined, () => resolve());
  });
}

/** If the orchestrator goes away (Ctrl-C, crash), so does this process. */
function exitWithParent(): void {
  process.on('disconnect', () => process.exit(0));
}

async function cellRole(): Promise<void> {
  exitWithParent();
  const req = await new Promise<CellRequest>((resolve) => process.once('message', (m: CellRequest) => resolve(m)));
  try {
    const result = await runMemoryCell(req.spec, {
      warmupMs: req.warmupMs,
      durationMs: req.durationMs,
      ...(req.tickMs !== undefined ? { tickMs: req.tickMs } : {}),
      ...(req.protocolOptions ? { protocolOptions: req.protocolOptions } : {}),
      ...(req.tmpDir ? { tmpDir: req.tmpDir } : {}),
      ...(req.cpuProfDir ? { cpuProfDir: req.cpuProfDir } : {}),
    });
    await send({ t: 'result', result });
  } catch (err) {
    const e = err as Error;
    await send({ t: 'error', name: e?.name ?? 'Error', message: e?.message ?? String(err) });
  }
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(0), 10).unref();
}

async function peerRole(): Promise<void> {
  exitWithParent();
  const req = await new Promise<PeerRequest>((resolve) => process.once('message', (m: PeerRequest) => resolve(m)));
  try {
    await send({ t: 'result', result: await runPeer(req) });
  } catch (err) {
    const e = err as Error;
    await send({ t: 'error', name: e?.name ?? 'Error', message: e?.message ?? String(err) });
  }
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(0), 10).unref();
}

function echoRole(): void {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on('listening', () => void send({ t: 'listening', port: (wss.address() as AddressInfo).port }));
  exitWithParent();
}

const role = process.argv[2];
if (role === 'cell') void cellRole();
else if (role === 'replica') void runReplicaProcess().catch((err) => {
  console.error(`replica failed: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
});
else if (role === 'peer') void peerRole();
else if (role === 'echo') echoRole();
else {
  console.error(`unknown role ${String(role)}; expected cell, peer, replica or echo`);
  process.exit(2);
}
