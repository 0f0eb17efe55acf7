/**
 * The HTTP gateway on 127.0.0.1:PORT (node:http, no framework): the KV API, the cluster API and
 * a plain HTML page. Every error answer is JSON `{ "error": "...", "code": "..." }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { ReadConsistency } from '@synod/log';
import { z } from 'zod';
import { GatewayError } from './errors.js';
import { renderPage } from './html.js';
import type { Supervisor } from './supervisor.js';

/** Longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

type Handler = (ctx: RequestContext) => Promise<void>;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handler: Handler;
}

interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: readonly string[];
  body(): Promise<Buffer>;
}

const memberBody = z.object({
  id: z.string(),
  role: z.enum(['learner', 'voter']),
});

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.status === 413) res.setHeader('connection', 'close');
  sendJson(res, err.status, { error: err.message, code: err.code, ...err.extra });
}

function decodeSegment(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new GatewayError(400, 'BAD_ENCODING', `${what} is not valid percent-encoding`);
  }
}

function parseKey(raw: string): string {
  const key = decodeSegment(raw, 'key');
  if (key.length === 0) throw new GatewayError(400, 'INVALID_KEY', 'key must not be empty');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new GatewayError(400, 'INVALID_KEY', `key is longer than ${MAX_KEY_BYTES} bytes`);
  return key;
}

function parseConsistency(url: URL): ReadConsistency {
  const c = url.searchParams.get('consistency') ?? 'linearizable';
  if (c !== 'linearizable' && c !== 'lease' && c !== 'stale') {
    throw new GatewayError(400, 'INVALID_CONSISTENCY', `consistency must be linearizable, lease or stale, got ${JSON.stringify(c)}`);
  }
  return c;
}

function parseNode(url: URL): string | undefined {
  const n = url.searchParams.get('node');
  if (n === null) return undefined;
  if (n === '') throw new GatewayError(400, 'INVALID_NODE', 'node must not be empty');
  return n;
}

/** The gateway: routes, body limits, error mapping. */
export class Gateway {
  private server: Server | null = null;
  private readonly routes: Route[];

  constructor(private readonly sup: Supervisor) {
    const r = (method: string, pattern: RegExp, handler: Handler): Route => ({ method, pattern, handler });
    this.routes = [
      r('GET', /^\/$/, (c) => this.page(c)),
      r('GET', /^\/kv\/(.+)$/, (c) => this.getKey(c)),
      r('PUT', /^\/kv\/(.+)$/, (c) => this.putKey(c)),
      r('DELETE', /^\/kv\/(.+)$/, (c) => this.deleteKey(c)),
      r('GET', /^\/api\/cluster$/, async (c) => sendJson(c.res, 200, await this.sup.view())),
      r('POST', /^\/api\/nodes\/([^/]+)\/kill$/, async (c) => sendJson(c.res, 200, await this.sup.kill(this.nodeParam(c)))),
      r('POST', /^\/api\/nodes\/([^/]+)\/restart$/, async (c) => sendJson(c.res, 200, await this.sup.restart(this.nodeParam(c)))),
      r('POST', /^\/api\/nodes\/([^/]+)\/isolate$/, async (c) => sendJson(c.res, 200, await this.sup.isolate(this.nodeParam(c)))),
      r('POST', /^\/api\/nodes\/([^/]+)\/heal$/, async (c) => sendJson(c.res, 200, await this.sup.heal(this.nodeParam(c)))),
      r('POST', /^\/api\/nodes\/([^/]+)\/transfer-leadership$/, async (c) =>
        sendJson(c.res, 200, await this.sup.transferLeadership(this.nodeParam(c))),
      ),
      r('POST', /^\/api\/members$/, (c) => this.addMember(c)),
      r('DELETE', /^\/api\/members\/([^/]+)$/, async (c) => sendJson(c.res, 200, await this.sup.removeMember(this.nodeParam(c)))),
    ];
  }

  private nodeParam(c: RequestContext): string {
    return decodeSegment(c.params[0]!, 'node id');
  }

  /** Starts listening; resolves with the URL. Rejects with the listen error (e.g. EADDRINUSE). */
  listen(port: number, host: string): Promise<string> {
    const server = createServer((req, res) => void this.dispatch(req, res));
    server.keepAliveTimeout = 5000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve(`http://${host}:${typeof addr === 'object' && addr ? addr.port : port}/`);
      });
    });
  }

  /** Stops accepting connections and closes idle ones. */
  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    await new Promise<void>((r) => {
      s.close(() => r());
      s.closeAllConnections();
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://gateway');
    } catch {
      sendError(res, new GatewayError(400, 'BAD_URL', 'malformed request URL'));
      return;
    }
    const path = url.pathname;
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      const ctx: RequestContext = { req, res, url, params: m.slice(1), body: () => this.readBody(req) };
      try {
        await route.handler(ctx);
      } catch (err) {
        if (err instanceof GatewayError) sendError(res, err);
        else sendError(res, new GatewayError(500, 'INTERNAL', (err as Error)?.message ?? String(err)));
      }
      return;
    }
    req.resume();
    if (pathMatched) {
      const allowed = this.routes.filter((r) => r.pattern.test(path)).map((r) => r.method);
      res.setHeader('allow', allowed.join(', '));
      sendError(res, new GatewayError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${allowed.join(' or ')}`));
    } else {
      sendError(res, new GatewayError(404, 'NOT_FOUND', `no route ${req.method} ${path}`));
    }
  }

  private readBody(req: IncomingMessage): Promise<Buffer> {
    const limit = this.sup.options.maxBodyBytes;
    const tooLarge = () => new GatewayError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return Promise.reject(tooLarge());
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (chunk: Buffer) => {
        if (failed) return;
        size += chunk.length;
        if (size > limit) {
          failed = true;
          reject(tooLarge());
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (!failed) resolve(Buffer.concat(chunks));
      });
      req.on('error', (err) => {
        if (!failed) {
          failed = true;
          reject(new GatewayError(400, 'BAD_BODY', err.message));
        }
      });
    });
  }

  private async page(c: RequestContext): Promise<void> {
    const html = renderPage(await this.sup.view());
    c.res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store' });
    c.res.end(html);
  }

  private async getKey(c: RequestContext): Promise<void> {
    const key = parseKey(c.params[0]!);
    const consistency = parseConsistency(c.url);
    const node = parseNode(c.url);
    const r = await this.sup.read(key, consistency, node);
    const headers = { 'x-synod-node': r.node, 'x-synod-consistency': consistency, 'x-synod-applied-index': String(r.appliedIndex), 'cache-control': 'no-store' };
    if (r.value === null) {
      const text = `${JSON.stringify({ error: `key ${JSON.stringify(key)} not found`, code: 'KEY_NOT_FOUND', node: r.node })}\n`;
      c.res.writeHead(404, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      c.res.end(text);
      return;
    }
    const value = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    c.res.writeHead(200, { ...headers, 'content-type': 'application/octet-stream', 'content-length': value.length });
    c.res.end(value);
  }

  private async putKey(c: RequestContext): Promise<void> {
    const key = parseKey(c.params[0]!);
    const node = parseNode(c.url);
    const body = await c.body();
    const value = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const r = await this.sup.write({ type: 'put', key, value }, node);
    sendJson(c.res, 200, { key, index: r.index, created: !r.existed, node: r.node });
  }

  private async deleteKey(c: RequestContext): Promise<void> {
    const key = parseKey(c.params[0]!);
    const node = parseNode(c.url);
    const r = await this.sup.write({ type: 'delete', key }, node);
    sendJson(c.res, 200, { key, index: r.index, deleted: r.existed, node: r.node });
  }

  private async addMember(c: RequestContext): Promise<void> {
    const raw = await c.body();
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new GatewayError(400, 'INVALID_JSON', 'body must be JSON like {"id":"n4","role":"learner"}');
    }
    const parsed = memberBody.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
      throw new GatewayError(400, 'INVALID_MEMBER', `expected {"id": string, "role": "learner" | "voter"}: ${detail}`);
    }
    sendJson(c.res, 200, await this.sup.addMember(parsed.data.id, parsed.data.role));
  }
}
