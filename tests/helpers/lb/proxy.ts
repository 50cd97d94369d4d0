import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * The fallback front when nginx is absent: a small round-robin HTTP proxy with nginx's retry rule as
 * the README's "Running several replicas" configures it (`proxy_next_upstream error timeout http_503
 * non_idempotent`, `proxy_next_upstream_tries` = the number of upstreams): the request body is read
 * whole first, then sent to the next upstream in turn; a connection error, a timeout or a 503 sends it
 * to the following one, each upstream tried at most once per request. When every try failed, the last
 * 503 is passed on, or a 502 when no upstream answered at all (what nginx answers then).
 *
 * Caveat, as with nginx's `non_idempotent`: a POST whose upstream died after reading it (the delivery
 * may be journaled there) is sent again to another one; the journal's unique delivery id is what turns
 * that second copy into `200 duplicate` once the replicas share one store.
 */
export interface NodeProxyOptions {
  upstreams: number[];
  /** Listen port (0: ephemeral). */
  port?: number;
  /** Give up on one upstream after this long without an answer (nginx `proxy_read_timeout`); default 30 s. */
  timeoutMs?: number;
}

export interface NodeProxy {
  url: string;
  port: number;
  /** Requests passed on to another upstream after a failed try (nginx's "next upstream"). */
  readonly retries: number;
  close(): Promise<void>;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One try against one upstream: an answer, or `undefined` on a connection error or a timeout. */
function tryUpstream(port: number, req: http.IncomingMessage, body: Buffer, timeoutMs: number): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const headers = { ...req.headers, connection: 'close', 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    const upstream = http.request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent: false, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', () => resolve(undefined));
      },
    );
    upstream.on('timeout', () => upstream.destroy(new Error('upstream timed out')));
    upstream.on('error', () => resolve(undefined));
    upstream.end(body);
  });
}

export async function startNodeProxy(options: NodeProxyOptions): Promise<NodeProxy> {
  const { upstreams } = options;
  if (upstreams.length === 0) throw new Error('node proxy: no upstream port given');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const sockets = new Set<Socket>();
  let next = 0;
  let retries = 0;

  const forward = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    let last: Answer | undefined;
    const first = next++ % upstreams.length;
    for (let i = 0; i < upstreams.length; i++) {
      if (i > 0) retries++;
      const answer = await tryUpstream(upstreams[(first + i) % upstreams.length]!, req, body, timeoutMs);
      if (answer) last = answer;
      if (answer && answer.status !== 503) break;
    }
    if (res.destroyed) return;
    if (!last) {
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end('no upstream answered\n');
      return;
    }
    const headers = { ...last.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    res.writeHead(last.status, { ...headers, 'content-length': String(last.body.length) }).end(last.body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void forward(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get retries() {
      return retries;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
