import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createService, type Service } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { LogCapture } from './log-capture.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { TEST_DATABASE_URL, testSchemaName } from './postgres.js';

/**
 * Several `createService` instances in this jest process ("replicas", each on its own port) on one
 * PostgreSQL schema, all talking to one simulated Gitea. The sim's every-event hook delivers to a
 * small router that passes each delivery on to the replica `route` names (round-robin, one of
 * them, or all at once: the same delivery id to every replica), so a test decides who acknowledges what.
 */
export const REPLICA_SECRET = 'replica-test-secret';

export interface InProcessReplica {
  service: Service;
  url: string;
  logs: LogCapture;
}

export type Route = 'round-robin' | 'all' | number;

export interface StoreReplicas {
  sim: SimGitea;
  replicas: InProcessReplica[];
  schema: string;
  /** Where the next deliveries go. */
  route: Route;
  /** Every answer a replica gave to a routed delivery: its id, the replica's index, the status. */
  answers: { id: string; replica: number; status: number }[];
  /** The delivery ids of every `evaluated` log line of every replica (one entry per evaluation). */
  evaluations(): string[][];
  close(): Promise<void>;
}

export async function startStoreReplicas(options: {
  count: number;
  seed(sim: SimGitea): void;
  env?: Record<string, string>;
  /** Default: the test database; a URL through a TCP proxy for the outage tests. */
  databaseUrl?: string;
}): Promise<StoreReplicas> {
  const sim = await SimGitea.start({});
  options.seed(sim);
  const schema = testSchemaName('gt_rep');
  const replicas: InProcessReplica[] = [];
  const router = await startRouter(replicas);
  const result: StoreReplicas = {
    sim,
    replicas,
    schema,
    get route() {
      return router.route;
    },
    set route(value: Route) {
      router.route = value;
    },
    answers: router.answers,
    evaluations: () => replicas.flatMap((r) => r.logs.find({ msg: 'evaluated' }).map((line) => line.deliveries as string[])),
    close: async () => {
      sim.setWebhook(undefined);
      await Promise.all(replicas.map((r) => r.service.stop()));
      await new Promise<void>((resolve) => router.server.close(() => resolve()));
      await sim.close();
    },
  };
  try {
    for (let i = 0; i < options.count; i++) {
      const config = loadConfig({
        GITEA_URL: sim.url,
        GITEA_TOKEN: sim.token,
        WEBHOOK_SECRET: REPLICA_SECRET,
        HOST: '127.0.0.1',
        PORT: '0',
        DATA_DIR: '/nonexistent-unused-with-postgres',
        DATABASE_URL: options.databaseUrl ?? TEST_DATABASE_URL,
        DATABASE_SCHEMA: schema,
        DATABASE_POOL_SIZE: '4',
        BATCH_WINDOW_MS: '20',
        LOG_LEVEL: 'debug',
        ...options.env,
      });
      const logs = new LogCapture();
      const log = createLogger({ level: 'debug', format: 'json', stream: logs.stream, redact: [config.giteaToken, REPLICA_SECRET] });
      const service = await createService({
        config,
        log,
        evaluator: createTriageEvaluator,
        identityBackoff: { firstMs: 20, maxMs: 200 },
        holder: `replica-${i}`,
        healthCheckMs: 100,
      });
      const { url } = await service.listen();
      await service.identified();
      replicas.push({ service, url, logs });
    }
  } catch (error) {
    await result.close().catch(() => undefined);
    throw error;
  }
  sim.setWebhook({ url: `${router.url}/webhook`, secret: REPLICA_SECRET });
  return result;
}

/** The front of the replicas: passes each request on as received, to the replica(s) `route` names. */
async function startRouter(replicas: InProcessReplica[]) {
  const state = { route: 'round-robin' as Route, next: 0, answers: [] as { id: string; replica: number; status: number }[] };
  const forward = async (index: number, headers: Record<string, string>, body: Buffer) => {
    const res = await fetch(`${replicas[index]!.url}/webhook`, { method: 'POST', headers, body });
    const text = await res.text();
    state.answers.push({ id: headers['x-gitea-delivery'] ?? '', replica: index, status: res.status });
    return { status: res.status, text };
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      const body = Buffer.concat(chunks);
      const route = state.route;
      const targets = route === 'all' ? replicas.map((_, i) => i) : [route === 'round-robin' ? state.next++ % replicas.length : route];
      Promise.all(targets.map((i) => forward(i, headers, body))).then(
        (answers) => {
          const first = answers[0]!;
          res.writeHead(first.status, { 'content-type': 'application/json' }).end(first.text);
        },
        (error: unknown) => res.writeHead(502).end(String(error)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    url,
    answers: state.answers,
    get route() {
      return state.route;
    },
    set route(value: Route) {
      state.route = value;
    },
  };
}
