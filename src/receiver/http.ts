import http from 'node:http';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { errorText } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { receiveDelivery, type ReceiverDeps } from './receive.js';

export interface Readiness {
  ready: boolean;
  /** Why not, e.g. `["bot identity unknown: gitea unreachable"]`; empty when ready. */
  reasons: string[];
  /**
   * What is degraded without making the service unready, e.g. Gitea unavailable: webhooks are still
   * journaled, so the receiver must stay in its load balancer (Gitea does not redeliver by itself).
   */
  warnings?: string[];
}

export interface HttpAppOptions {
  receiver: ReceiverDeps;
  readiness(): Readiness;
  /** Prometheus exposition for `GET /metrics`. */
  metrics(): Promise<{ contentType: string; body: string }>;
  log: Logger;
}

/**
 * The receiver's HTTP surface: `POST /webhook`, `GET /healthz`, `GET /readyz`, `GET /metrics`.
 * Every answer is JSON (except the metrics text); no stack trace ever leaves the process.
 */
export function createHttpApp(options: HttpAppOptions): Express {
  const { receiver, log } = options;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');

  const refuse = (res: express.Response, status: number, reason: string) => {
    receiver.metrics?.rejected(status);
    receiver.metrics?.delivery('unknown', 'rejected');
    log.warn('webhook rejected', { status, reason });
    // The rest of the body is not read: close the connection instead of draining it.
    res.set('Connection', 'close').status(status).json({ error: reason });
  };

  // Shutdown and size before the body is read: a declared Content-Length over the limit is refused
  // without receiving a byte of it (the body parser's own limit catches chunked bodies).
  const tooLarge = `body larger than ${receiver.maxBodyBytes} bytes`;
  const early: RequestHandler = (req, res, next) => {
    if (receiver.shuttingDown()) return refuse(res, 503, 'shutting down');
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > receiver.maxBodyBytes) return refuse(res, 413, tooLarge);
    next();
  };

  const rawBody = express.raw({ type: () => true, limit: receiver.maxBodyBytes });

  const bodyErrors: ErrorRequestHandler = (err: unknown, _req, res, next) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e?.type === 'entity.too.large') return refuse(res, 413, tooLarge);
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      // Aborted or malformed request bodies, unsupported Content-Encoding: body-parser's own reasons.
      return refuse(res, e.status, oneLine(e.message ?? 'bad request body'));
    }
    next(err);
  };

  const webhook: RequestHandler = async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = await receiveDelivery({ headers: req.headers, body }, receiver);
    res.status(result.status).json(result.body);
  };

  app.post('/webhook', early, rawBody, bodyErrors, webhook);
  app.get('/webhook', getDelivery(log));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const r = options.readiness();
    const warnings = r.warnings && r.warnings.length > 0 ? { warnings: r.warnings } : {};
    if (r.ready) res.json({ status: 'ready', ...warnings });
    else res.status(503).json({ status: 'not ready', reasons: r.reasons, ...warnings });
  });
  app.get('/metrics', async (_req, res) => {
    const m = await options.metrics();
    res.set('Content-Type', m.contentType).send(m.body);
  });

  // Known path, other method: 405 with Allow (Express answers HEAD for GET routes itself).
  const allowed: Record<string, string> = { '/webhook': 'POST', '/healthz': 'GET, HEAD', '/readyz': 'GET, HEAD', '/metrics': 'GET, HEAD' };
  for (const [path, allow] of Object.entries(allowed)) {
    app.all(path, (req, res) => {
      res.set('Allow', allow).status(405).json({ error: `method ${req.method} not allowed on ${path}` });
    });
  }
  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` });
  });

  const lastResort: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    log.error('request failed', { method: req.method, path: req.path, error: errorText(err) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(500).json({ error: 'internal error' });
  };
  app.use(lastResort);
  return app;
}

/**
 * A delivery sent with GET: the hook's HTTP method was set to GET in Gitea's web UI (services/webhook/
 * deliver.go newDefaultRequest then sends the payload as `?payload=` and no body). The API can neither show
 * nor change that method (routers/api/v1/utils/hook.go addHook always stores POST; convert.ToHook omits it),
 * so the warning says what to change in the hook's settings. The query string (the payload) is not logged.
 */
function getDelivery(log: Logger): RequestHandler {
  return (req, res, next) => {
    const header = (name: string): string | undefined => {
      for (const prefix of ['x-gitea-', 'x-forgejo-', 'x-gogs-']) {
        const v = req.headers[prefix + name];
        if (typeof v === 'string' && v !== '') return v;
      }
      return undefined;
    };
    const event = header('event');
    if (!event) return next();
    log.warn('webhook delivered with HTTP method GET: in Gitea, open the hook (Settings → Webhooks → edit) and set "HTTP Method" to POST; the API cannot show or change it', {
      delivery: header('delivery') ?? undefined,
      event,
    });
    res.set('Allow', 'POST').status(405).json({ error: 'webhook deliveries must use POST: set the hook\'s HTTP method to POST in its settings' });
  };
}

/** Server-side timeouts: a slow or stalled client is cut off instead of holding a socket forever. */
export const SERVER_TIMEOUTS = {
  /** Gitea sends its headers at once; 10 s is generous. */
  headersTimeoutMs: 10_000,
  /** Whole request, body included. Gitea itself gives up after 5 s (`[webhook] DELIVER_TIMEOUT`). */
  requestTimeoutMs: 30_000,
  /**
   * Idle keep-alive. Gitea's webhook client (Go) keeps idle connections without a limit and does
   * not replay a POST on a connection the server closed meanwhile: a long idle time makes that race rare.
   */
  keepAliveTimeoutMs: 65_000,
  /**
   * Node enforces headersTimeout/requestTimeout only when it sweeps its connections, every
   * `connectionsCheckingInterval` (default 30 s): without a short sweep, "10 s" means up to 40 s.
   */
  connectionsCheckingIntervalMs: 1_000,
};

/** An HTTP server for the app with {@link SERVER_TIMEOUTS} applied. */
export function createHttpServer(app: Express): http.Server {
  const server = http.createServer(
    {
      requestTimeout: SERVER_TIMEOUTS.requestTimeoutMs,
      headersTimeout: SERVER_TIMEOUTS.headersTimeoutMs,
      connectionsCheckingInterval: SERVER_TIMEOUTS.connectionsCheckingIntervalMs,
    },
    app,
  );
  server.keepAliveTimeout = SERVER_TIMEOUTS.keepAliveTimeoutMs;
  server.headersTimeout = SERVER_TIMEOUTS.headersTimeoutMs;
  server.requestTimeout = SERVER_TIMEOUTS.requestTimeoutMs;
  return server;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}
