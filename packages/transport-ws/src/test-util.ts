/**
 * Test helpers (not exported from the package): free ports, polling waits and raw clients.
 */
import { createServer } from 'node:net';
import { WebSocket } from 'ws';

/** A port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves after `ms` milliseconds (test helper). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` until it holds or `limitMs` passed (a generous bound, not a timing assertion). */
export async function until(cond: () => boolean, limitMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) return cond();
    await sleep(5);
  }
  return true;
}

/** What a listener answered to a refused upgrade request. */
export interface Refusal {
  /** HTTP status, e.g. 401. */
  status: number;
  /** The `x-synod-close-code` response header as a number, or null. */
  code: number | null;
  body: string;
}

/**
 * A raw `ws` client for speaking (and mis-speaking) the wire protocol. `headers` go into the
 * upgrade request (e.g. the hello header, or none).
 */
export class RawClient {
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Resolves with the listener's answer if it refused the upgrade, or null once open. */
  readonly refused: Promise<Refusal | null>;
  closeCode: number | null = null;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, headers });
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', () => reject(new Error('closed before open')));
    });
    this.opened.catch(() => {});
    this.refused = new Promise((resolve) => {
      this.ws.once('open', () => resolve(null));
      this.ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const code = Number(res.headers['x-synod-close-code']);
          resolve({ status: res.statusCode ?? 0, code: Number.isInteger(code) ? code : null, body: Buffer.concat(chunks).toString() });
          this.ws.terminate();
        });
      });
    });
    this.closed = new Promise((resolve) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  send(data: Uint8Array | string, binary = typeof data !== 'string'): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, { binary }, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.ws.terminate();
  }
}
