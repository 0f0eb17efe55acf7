/**
 * The HTTP gateway on 127.0.0.1:PORT (node:http, no framework): the KV API, the cluster API and
 * a plain HTML page. Every error answer is JSON `{ "error": "...", "code": "..." }`, including
 * the ones Node's HTTP parser would otherwise answer itself (malformed requests, huge headers,
 * timeouts, CONNECT, unknown methods).
 *
 * Routing works on the raw request target, never on a normalised URL: the path is split on
 * `/` and each parameter segment is percent-decoded on its own, so `/kv/%2e%2e` is the key
 * `..`, `/kv/a%2Fb` the key `a/b`, and `/kv/x/../y`, `//evil/kv/foo` or `/kv\foo` match no
 * route (404) instead of being rewritten into another one.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ReadConsistency } from '@synod/log';
import { z } from 'zod';
import { GatewayError } from './errors.js';
import { renderPage } from './html.js';
import { MAX_KEY_BYTES } from './limits.js';
import type { Supervisor } from './supervisor.js';

export { MAX_KEY_BYTES } from './limits.js';

type Handler = (ctx: RequestContext) => Promise<void>;

/** A parameter segment in a route pattern. */
const PARAM = Symbol('param');

interface Route {
  readonly method: string;
  /** Path segments after the leading `/`: literals match exactly (raw), {@link PARAM} matches any one segment. */
  readonly pattern: readonly (string | typeof PARAM)[];
  readonly handler: Handler;
}

interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The raw path (before `?`). */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Raw (still percent-encoded) parameter segments, in order. */
  readonly params: readonly string[];
  body(): Promise<Buffer>;
}

/** Timeouts of the gateway's HTTP server. */
export interface GatewayOptions {
  /**
   * How long a client may take to send the request headers, in ms (Node's `headersTimeout`).
   * Default 30000. A slower client gets 408 `REQUEST_TIMEOUT`.
   */
  readonly headersTimeoutMs?: number;
  /**
   * How long a client may take to send the whole request (headers and body), in ms (Node's
   * `requestTimeout`). Default 30000. A stalled body gets 408 `REQUEST_TIMEOUT`. The time a
   * request then waits for the cluster is bounded by `--request-timeout-ms`, not by this.
   */
  readonly requestTimeoutMs?: number;
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

/**
 * A body over the limit whose declared length is at most this much larger is read and thrown
 * away after the 413, so the client can finish its upload and read the answer on a connection
 * that stays usable; a bigger or undeclared (chunked) one gets the 413 and the connection closed.
 */
const DRAIN_BYTES = 16 * 1024 * 1024;

/** Errors after which the connection is closed (the rest of the request is not read). */
const CLOSE_AFTER = new WeakSet<GatewayError>();

function sendError(res: ServerResponse, err: GatewayError): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  if (err.status === 408 || CLOSE_AFTER.has(err)) res.setHeader('connection', 'close');
  sendJson(res, err.status, { error: err.message, code: err.code, ...err.extra });
}

/**
 * A complete HTTP/1.1 error answer as raw bytes, for the cases where Node gives us a socket and
 * no response object (`clientError`, `connect`). The connection is closed after it.
 */
function rawJsonAnswer(status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): string {
  const body = `${JSON.stringify({ error: message, code })}\n`;
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    connection: 'close',
    ...extraHeaders,
  };
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n${body}`;
}

/** Maps the error Node's HTTP parser (or its timeout check) reports to our answer. */
function clientErrorAnswer(err: NodeJS.ErrnoException): [number, string, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return [431, 'HEADERS_TOO_LARGE', 'the request headers are too large (the limit is 16 KiB in total)'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return [408, 'REQUEST_TIMEOUT', 'the request (headers and body) was not received in time'];
    case 'HPE_INVALID_METHOD':
      return [501, 'NOT_IMPLEMENTED', 'unknown HTTP method; the gateway implements GET, PUT, POST and DELETE'];
    case 'HPE_INVALID_URL':
      return [400, 'BAD_URL', 'malformed request target'];
    default:
      return [400, 'BAD_REQUEST', `malformed HTTP request (${err.code ?? err.message})`];
  }
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
  if (key.length === 0) throw new GatewayError(400, 'INVALID_KEY', 'key must not be empty; use /kv/<percent-encoded key>');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new GatewayError(400, 'INVALID_KEY', `key is longer than ${MAX_KEY_BYTES} bytes`);
  return key;
}

function parseConsistency(query: URLSearchParams): ReadConsistency {
  const c = query.get('consistency') ?? 'linearizable';
  if (c !== 'linearizable' && c !== 'lease' && c !== 'stale') {
    throw new GatewayError(400, 'INVALID_CONSISTENCY', `consistency must be linearizable, lease or stale, got ${JSON.stringify(c)}`);
  }
  return c;
}

function parseNode(query: URLSearchParams): string | undefined {
  const n = query.get('node');
  if (n === null) return undefined;
  if (n === '') throw new GatewayError(400, 'INVALID_NODE', 'node must not be empty');
  return n;
}

/** Splits a raw request target into its path segments (after the leading `/`) and query, or null if it does not start with `/`. */
function splitTarget(target: string): { path: string; segments: string[]; query: string } | null {
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  if (!path.startsWith('/')) return null;
  return { path, segments: path.slice(1).split('/'), query };
}

function matches(route: Route, segments: readonly string[]): string[] | null {
  if (route.pattern.length !== segments.length) return null;
  const params: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const p = route.pattern[i]!;
    if (p === PARAM) params.push(segments[i]!);
    else if (p !== segments[i]) return null;
  }
  return params;
}

/** The gateway: routes, body limits, error mapping. */
export class Gateway {
  private server: Server | null = null;
  private readonly routes: Route[];
  private readonly headersTimeoutMs: number;
  private readonly requestTimeoutMs: number;

  constructor(
    private readonly sup: Supervisor,
    options: GatewayOptions = {},
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.headersTimeoutMs = Math.min(options.headersTimeoutMs ?? 30_000, this.requestTimeoutMs);
    const r = (method: string, pattern: Route['pattern'], handler: Handler): Route => ({ method, pattern, handler });
    this.routes = [
      r('GET', [''], (c) => this.page(c)),
      r('GET', ['kv', PARAM], (c) => this.getKey(c)),
      r('PUT', ['kv', PARAM], (c) => this.putKey(c)),
      r('DELETE', ['kv', PARAM], (c) => this.deleteKey(c)),
      r('GET', ['api', 'cluster'], async (c) => sendJson(c.res, 200, await this.sup.view())),
      r('POST', ['api', 'nodes', PARAM, 'kill'], async (c) => sendJson(c.res, 200, await this.sup.kill(this.nodeParam(c)))),
      r('POST', ['api', 'nodes', PARAM, 'restart'], async (c) => sendJson(c.res, 200, await this.sup.restart(this.nodeParam(c)))),
      r('POST', ['api', 'nodes', PARAM, 'isolate'], async (c) => sendJson(c.res, 200, await this.sup.isolate(this.nodeParam(c)))),
      r('POST', ['api', 'nodes', PARAM, 'heal'], async (c) => sendJson(c.res, 200, await this.sup.heal(this.nodeParam(c)))),
      r('POST', ['api', 'nodes', PARAM, 'transfer-leadership'], async (c) => sendJson(c.res, 200, await this.sup.transferLeadership(this.nodeParam(c)))),
      r('POST', ['api', 'members'], (c) => this.addMember(c)),
      r('DELETE', ['api', 'members', PARAM], async (c) => sendJson(c.res, 200, await this.sup.removeMember(this.nodeParam(c)))),
    ];
  }

  private nodeParam(c: RequestContext): string {
    return decodeSegment(c.params[0]!, 'node id');
  }

  /** Starts listening; resolves with the URL. Rejects with the listen error (e.g. EADDRINUSE). */
  listen(port: number, host: string): Promise<string> {
    // Timeouts are checked every second (Node's default interval is 30 s).
    const server = createServer(
      { requestTimeout: this.requestTimeoutMs, headersTimeout: this.headersTimeoutMs, connectionsCheckingInterval: 1000 },
      (req, res) => void this.dispatch(req, res),
    );
    server.keepAliveTimeout = 5000;
    // `Expect: 100-continue`: refuse a declared body over the limit before the client uploads
    // it (no 100 Continue), otherwise continue as usual. Any other expectation: 417 with a reason.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const declared = Number(req.headers['content-length']);
      const limit = this.sup.options.maxBodyBytes;
      if (Number.isFinite(declared) && declared > limit) {
        res.setHeader('connection', 'close');
        sendError(res, new GatewayError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes (--max-body-bytes)`));
        req.resume();
        return;
      }
      res.writeContinue();
      void this.dispatch(req, res);
    });
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      sendError(res, new GatewayError(417, 'EXPECTATION_FAILED', `unsupported Expect header ${JSON.stringify(String(req.headers.expect ?? '').slice(0, 100))}; only 100-continue is supported`));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket));
    // CONNECT (proxy tunnels) is a request Node hands to 'connect' listeners only; without one
    // it closes the socket without an answer.
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => undefined);
      socket.end(rawJsonAnswer(405, 'METHOD_NOT_ALLOWED', `CONNECT is not allowed on ${req.url ?? ''}; this is not a proxy`, { allow: 'GET, PUT, POST, DELETE' }));
    });
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

  /** Answers what Node's parser refused (malformed request, headers too large, timeouts, unknown method) with JSON. */
  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    socket.on('error', () => undefined);
    const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || (res && res.headersSent)) {
      socket.destroy();
      return;
    }
    const [status, code, message] = clientErrorAnswer(err);
    socket.end(rawJsonAnswer(status, code, message));
  }

  /**
   * Stops accepting connections, closes idle ones, lets requests in progress finish (up to
   * `graceMs`, default 3000 ms; they get `connection: close`), then closes what is left.
   */
  async close(graceMs = 3000): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = null;
    this.closing = true;
    // Answers still to come close their connection: a client must not send its next request
    // on a kept-alive connection that is about to be destroyed.
    for (const res of this.active) if (!res.headersSent) res.setHeader('connection', 'close');
    const closed = new Promise<void>((r) => s.close(() => r()));
    s.closeIdleConnections();
    if (this.inFlight > 0) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, graceMs);
        this.onIdle = () => {
          clearTimeout(timer);
          r();
        };
      });
    }
    s.closeAllConnections();
    await closed;
  }

  private closing = false;
  private inFlight = 0;
  private readonly active = new Set<ServerResponse>();
  private onIdle: (() => void) | null = null;

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.active.add(res);
    if (this.closing) res.setHeader('connection', 'close');
    try {
      await this.route(req, res);
    } finally {
      this.active.delete(res);
      if (--this.inFlight === 0 && this.onIdle) {
        const f = this.onIdle;
        this.onIdle = null;
        f();
      }
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = splitTarget(req.url ?? '');
    const shown = (req.url ?? '').slice(0, 200);
    if (!target) {
      req.resume();
      sendError(res, new GatewayError(404, 'NOT_FOUND', `no route ${req.method} ${shown}`));
      return;
    }
    let pathMatched = false;
    const allowed: string[] = [];
    for (const route of this.routes) {
      const params = matches(route, target.segments);
      if (!params) continue;
      pathMatched = true;
      allowed.push(route.method);
      if (route.method !== req.method) continue;
      const ctx: RequestContext = {
        req,
        res,
        path: target.path,
        query: new URLSearchParams(target.query),
        params,
        body: () => this.readBody(req),
      };
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
      res.setHeader('allow', allowed.join(', '));
      sendError(res, new GatewayError(405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${target.path.slice(0, 200)}; use ${allowed.join(' or ')}`));
    } else {
      sendError(res, new GatewayError(404, 'NOT_FOUND', `no route ${req.method} ${shown}`));
    }
  }

  private readBody(req: IncomingMessage): Promise<Buffer> {
    const limit = this.sup.options.maxBodyBytes;
    const tooLarge = (close: boolean) => {
      const err = new GatewayError(413, 'PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes (--max-body-bytes)`);
      if (close) CLOSE_AFTER.add(err);
      return err;
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume(); // Node reads and discards the rest
      return Promise.reject(tooLarge(declared > limit + DRAIN_BYTES));
    }
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const fail = (err: GatewayError) => {
        if (done) return;
        done = true;
        reject(err);
      };
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > limit) {
          fail(tooLarge(true));
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        resolve(Buffer.concat(chunks));
      });
      req.on('error', (err) => fail(new GatewayError(400, 'BAD_BODY', err.message)));
      // The connection closed (client gone, or the request timeout fired) before the body ended.
      req.on('close', () => fail(new GatewayError(400, 'BAD_BODY', 'the connection closed before the request body was complete')));
    });
  }

  private async page(c: RequestContext): Promise<void> {
    const html = renderPage(await this.sup.view());
    c.res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(html), 'cache-control': 'no-store' });
    c.res.end(html);
  }

  private async getKey(c: RequestContext): Promise<void> {
    const key = parseKey(c.params[0]!);
    const consistency = parseConsistency(c.query);
    const node = parseNode(c.query);
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
    const node = parseNode(c.query);
    const body = await c.body();
    const value = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const r = await this.sup.write({ type: 'put', key, value }, node);
    sendJson(c.res, 200, { key, index: r.index, created: !r.existed, node: r.node, leader: r.leader ?? null });
  }

  private async deleteKey(c: RequestContext): Promise<void> {
    const key = parseKey(c.params[0]!);
    const node = parseNode(c.query);
    const r = await this.sup.write({ type: 'delete', key }, node);
    sendJson(c.res, 200, { key, index: r.index, deleted: r.existed, node: r.node, leader: r.leader ?? null });
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
