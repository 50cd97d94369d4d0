import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SimGitea } from '../../../src/simgitea/sim.js';

/**
 * A recording HTTP proxy between the service and the simulated Gitea (both in the test process).
 *
 * It forwards every request unchanged, and adds what the simulator cannot do on its own:
 * - an audit of label writes: for each `POST|PUT|DELETE …/issues/{n}/labels[/{id}]`, the issue's label
 *   names just before the request reached Gitea and just after Gitea answered (read from the sim
 *   directly), so a test can count the writes that actually changed something;
 * - per-route faults (`refuse`): answer a status without asking Gitea — e.g. "this repository always 500s";
 * - per-route holds (`hold`): let Gitea act, then keep the answer back until released — the moment a
 *   crash leaves the service not knowing that its write succeeded.
 *
 * The service's `GITEA_URL` points here; the proxy only ever talks to the sim.
 */
export interface LabelWrite {
  method: string;
  repo: string;
  number: number;
  status: number;
  before: string[];
  after: string[];
  /** Names that appeared (absent before, present after). */
  gained: string[];
  /** Names that disappeared. */
  lost: string[];
}

export interface GateRule {
  /** Matched against `METHOD /api/v1/…path` (no query string). */
  match: RegExp;
  /** Answer this status (JSON `{message}`) without forwarding; a function decides per request (undefined: forward). */
  status?: number | (() => number | undefined);
  /** The JSON answered with `status` (default `{message: 'refused by the test gate'}`); sees the request. */
  body?: (req: http.IncomingMessage) => unknown;
  /** Forward, then hold the answer until {@link Gate.release}. */
  hold?: boolean;
}

/** One request through the gate, with when it arrived and when its answer was sent (this process's clock). */
export interface GateRequest {
  method: string;
  /** Path and query. */
  url: string;
  /** The status answered; 0 when the sim dropped the connection. */
  status: number;
  /** `performance.now()` when the request arrived, and when the answer left (or the connection was dropped). */
  startMs: number;
  endMs: number;
}

export interface Gate {
  url: string;
  /** Every request seen, `METHOD /path?query`. */
  requests: string[];
  /** Every request answered (by the sim or by a rule), with its timing: who was writing what, when. */
  timeline: GateRequest[];
  labelWrites: LabelWrite[];
  rules: GateRule[];
  /** Answers held back by a `hold` rule, waiting. */
  readonly held: number;
  /** Sends every held answer (to a client that may be gone) and stops nothing else. */
  release(): void;
  /** Label writes that changed the issue's labels, per `owner/repo#n`. */
  changingWrites(): Map<string, LabelWrite[]>;
  close(): Promise<void>;
}

const LABEL_WRITE = /^\/api\/v1\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels(?:\/\d+)?$/;

export async function startGate(sim: SimGitea): Promise<Gate> {
  const target = new URL(sim.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const heldAnswers: (() => void)[] = [];
  const sockets = new Set<Socket>();

  const labelsOf = (owner: string, repo: string, n: number): string[] => {
    try {
      return sim.issueLabels(owner, repo, n);
    } catch {
      return []; // no such issue: Gitea answers 404, nothing changes
    }
  };

  const gate: Gate = {
    url: '',
    requests: [],
    timeline: [],
    labelWrites: [],
    rules: [],
    get held() {
      return heldAnswers.length;
    },
    release() {
      for (const send of heldAnswers.splice(0)) send();
    },
    changingWrites() {
      const out = new Map<string, LabelWrite[]>();
      for (const w of gate.labelWrites) {
        if (w.gained.length === 0 && w.lost.length === 0) continue;
        const key = `${w.repo}#${w.number}`;
        out.set(key, [...(out.get(key) ?? []), w]);
      }
      return out;
    },
    close: async () => {
      gate.release();
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const pathname = url.split('?')[0] ?? url;
    gate.requests.push(`${method} ${url}`);
    const startMs = performance.now();
    const answered = (status: number) => gate.timeline.push({ method, url, status, startMs, endMs: performance.now() });
    const rule = gate.rules.find((r) => r.match.test(`${method} ${pathname}`));
    const status = typeof rule?.status === 'function' ? rule.status() : rule?.status;
    if (rule && status !== undefined) {
      req.resume();
      answered(status);
      res.writeHead(status, { 'Content-Type': 'application/json;charset=utf-8' }).end(JSON.stringify(rule.body ? rule.body(req) : { message: 'refused by the test gate' }));
      return;
    }
    const write = method !== 'GET' ? LABEL_WRITE.exec(pathname) : null;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const audit = write ? { owner: decodeURIComponent(write[1]!), repo: decodeURIComponent(write[2]!), number: Number(write[3]) } : undefined;
      const before = audit ? labelsOf(audit.owner, audit.repo, audit.number) : [];
      const upstream = http.request(
        { host: target.hostname, port: target.port, method, path: url, headers: { ...req.headers, host: target.host }, agent },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            if (audit) {
              const after = labelsOf(audit.owner, audit.repo, audit.number);
              gate.labelWrites.push({
                method,
                repo: `${audit.owner}/${audit.repo}`,
                number: audit.number,
                status: answer.statusCode ?? 0,
                before,
                after,
                gained: after.filter((l) => !before.includes(l)),
                lost: before.filter((l) => !after.includes(l)),
              });
            }
            const send = () => {
              answered(answer.statusCode ?? 0);
              if (res.destroyed) return;
              res.writeHead(answer.statusCode ?? 502, answer.headers).end(Buffer.concat(body));
            };
            if (rule?.hold) heldAnswers.push(send);
            else send();
          });
        },
      );
      // The sim reset or dropped the connection: so does the proxy (the client sees a network error).
      upstream.on('error', () => {
        answered(0);
        res.socket?.destroy();
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return gate;
}
