import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { SimUser } from './model.js';
import { HttpError, type Reply, type RouteMatch, type Router } from './router.js';
import type { SimState } from './state.js';

/** Fault injection, per API request. Rates are probabilities in [0, 1]. */
export interface SimFaults {
  /** Answer with one of `statuses` instead of handling the request. */
  errorRate?: number;
  /** Default [500, 502, 503]. */
  statuses?: number[];
  /** Answer 429 (as a proxy in front of Gitea would; Gitea itself sends none). */
  rate429?: number;
  /** `Retry-After` sent with 429s (and injected 503s) when set. */
  retryAfterSeconds?: number;
  /** Hold the request for `stallMs` before handling it (to exercise client timeouts). */
  stallRate?: number;
  /** Default 30000. */
  stallMs?: number;
  /** Destroy the connection without answering. */
  resetRate?: number;
  /** Gitea is down: connections are closed as soon as they are accepted. */
  down?: boolean;
}

export interface SimStats {
  requests: number;
  connections: number;
  byRoute: Record<string, number>;
  labelWrites: number;
}

/** Starts a `node:http` server on 127.0.0.1, on a free port, with Go-like keep-alive. */
export async function listenLocal(): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer();
  // Go's server keeps idle connections open; Node's default (5 s) would race with pooled clients.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

/**
 * The HTTP side of the simulated Gitea: authentication (`Authorization: token …`), latency, fault
 * injection, dispatch to the router, Gitea's error shapes, and request counters.
 */
export class SimServer {
  faults: SimFaults = {};
  counters: SimStats = emptyStats();
  latencyMs: number;
  jitterMs: number;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private closed = false;

  constructor(
    private readonly server: http.Server,
    private readonly url: string,
    private readonly router: Router,
    private readonly state: SimState,
    private readonly random: () => number,
    private readonly log: Logger | undefined,
    latency: { latencyMs: number; jitterMs: number },
  ) {
    this.latencyMs = latency.latencyMs;
    this.jitterMs = latency.jitterMs;
    server.on('connection', (socket: Socket) => this.onConnection(socket));
    server.on('request', (req, res) => {
      void this.onRequest(req, res);
    });
  }

  resetStats(): void {
    this.counters = emptyStats();
  }

  /** Stops the server, drops every connection, abandons stalled requests. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.resolve();
    }
    this.timers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onConnection(socket: Socket): void {
    this.counters.connections++;
    if (this.faults.down) socket.destroy();
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    this.counters.requests++;
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', this.url);
    } catch {
      url = new URL('/', this.url);
    }
    const match = this.router.match(method, url.pathname);
    const key = match ? `${method} ${match.route.pattern}` : `${method} <unmatched>`;
    this.counters.byRoute[key] = (this.counters.byRoute[key] ?? 0) + 1;

    if (this.faults.down) {
      req.socket.destroy();
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, 10 * 1024 * 1024);
    } catch {
      req.socket.destroy();
      return;
    }
    const wait = this.latencyMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0);
    if (wait > 0) await this.delay(wait);
    const reply = await this.faultOr(req, res, () => this.dispatch(method, url, match, raw, req.headers.authorization));
    if (reply === undefined || this.closed || res.destroyed) return;
    if (reply.status >= 200 && reply.status < 300 && match && /^\/repos\/\{owner\}\/\{repo\}\/issues\/\{index\}\/labels/.test(match.route.pattern) && method !== 'GET') {
      this.counters.labelWrites++;
    }
    this.write(res, reply);
    this.log?.debug('simgitea request', { method, path: url.pathname, status: reply.status, durationMs: Math.round(performance.now() - started) });
  }

  /** An injected fault's answer, `undefined` for a dropped connection, else the handler's answer. */
  private async faultOr(req: http.IncomingMessage, res: http.ServerResponse, handle: () => Reply): Promise<Reply | undefined> {
    const f = this.faults;
    if (f.resetRate && this.random() < f.resetRate) {
      req.socket.destroy();
      return undefined;
    }
    if (f.stallRate && this.random() < f.stallRate) await this.delay(f.stallMs ?? 30000);
    if (this.closed || res.destroyed) return undefined;
    if (f.rate429 && this.random() < f.rate429) {
      return { status: 429, body: { message: 'rate limited (simulated proxy)' }, headers: retryAfter(f) };
    }
    if (f.errorRate && this.random() < f.errorRate) {
      const statuses = f.statuses && f.statuses.length > 0 ? f.statuses : [500, 502, 503];
      const status = statuses[Math.floor(this.random() * statuses.length)] ?? 500;
      return { status, body: { message: 'simulated failure' }, headers: status === 503 ? retryAfter(f) : {} };
    }
    return handle();
  }

  private dispatch(method: string, url: URL, match: RouteMatch | null, raw: Buffer, authorization: string | undefined): Reply {
    try {
      const doer = this.authenticate(authorization);
      if (!match || (match.route.since && !this.state.atLeast(match.route.since))) {
        if (doer === 'invalid') return this.error(401, 'invalid token');
        return { status: 404, body: { errors: null, message: 'not found', url: `${this.url}/api/swagger` } };
      }
      if (doer === 'invalid' || (doer === null && !match.route.anonymous)) return this.error(401, 'token is required');
      let body: unknown;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return this.error(422, 'invalid JSON body');
        }
      }
      return match.route.handler({ params: match.params, query: url.searchParams, body, doer: doer ?? this.state.bot, raw });
    } catch (err) {
      if (err instanceof HttpError) return this.error(err.status, err.message);
      this.log?.error('simgitea handler failed', { error: err instanceof Error ? err.message : String(err) });
      return this.error(500, 'internal error');
    }
  }

  private write(res: http.ServerResponse, reply: Reply): void {
    if (res.destroyed || res.writableEnded) return;
    res.statusCode = reply.status;
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (reply.body === undefined || reply.status === 204) {
      res.end();
      return;
    }
    if (typeof reply.body === 'string') {
      if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'text/plain;charset=utf-8');
      res.end(reply.body);
      return;
    }
    res.setHeader('Content-Type', 'application/json;charset=utf-8');
    res.end(JSON.stringify(reply.body));
  }

  private error(status: number, message: string): Reply {
    return { status, body: { message, url: `${this.url}/api/swagger` } };
  }

  /** `null`: no credentials; `'invalid'`: credentials that match no token. */
  private authenticate(header: string | undefined): SimUser | null | 'invalid' {
    if (!header) return null;
    const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
    if (!m) return 'invalid';
    for (const u of this.state.users.values()) if (u.tokens.has(m[1] as string)) return u;
    return 'invalid';
  }

  delay(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(entry);
    });
  }
}

function emptyStats(): SimStats {
  return { requests: 0, connections: 0, byRoute: {}, labelWrites: 0 };
}

function retryAfter(f: SimFaults): Record<string, string> {
  return f.retryAfterSeconds !== undefined ? { 'Retry-After': String(f.retryAfterSeconds) } : {};
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
