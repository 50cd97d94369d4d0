import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createService, type EvaluatorFactory, type Service } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { GiteaApi } from '../../src/gitea/api.js';
import type { NewDelivery } from '../../src/journal/types.js';
import { createLogger } from '../../src/log/logger.js';
import { LogCapture } from './log-capture.js';
import type { EvaluationResult, Evaluator, WorkItem } from '../../src/scheduler/types.js';
import { FIXTURE_SECRET, type SignedDelivery } from './signing.js';
import { SimGitea } from '../../src/simgitea/index.js';
import { waitFor } from './wait.js';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: any;
}

/** One HTTP request over a fresh connection (no keep-alive: a test's server can close at once). */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * An evaluator for tests: records every work item, and can hold evaluations until the test releases
 * them (`hold = true`), to observe concurrency. Tracks the highest number of evaluations running at
 * once, overall and per subject.
 */
export class RecordingEvaluator implements Evaluator {
  readonly items: WorkItem[] = [];
  readonly observed: NewDelivery[] = [];
  readonly running = new Map<string, number>();
  maxRunning = 0;
  maxRunningPerSubject = 0;
  hold = false;
  private waiting: (() => void)[] = [];
  /** Throw this from `evaluate` (for retry and dead-letter paths). */
  fail: ((item: WorkItem) => Error | undefined) | undefined;

  async evaluate(item: WorkItem): Promise<EvaluationResult> {
    const key = item.subject.key;
    const n = (this.running.get(key) ?? 0) + 1;
    this.running.set(key, n);
    this.maxRunningPerSubject = Math.max(this.maxRunningPerSubject, n);
    this.maxRunning = Math.max(this.maxRunning, this.runningNow);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.items.push(item);
      const error = this.fail?.(item);
      if (error) throw error;
      return { added: [], removed: [], note: 'recorded' };
    } finally {
      const left = (this.running.get(key) ?? 1) - 1;
      if (left === 0) this.running.delete(key);
      else this.running.set(key, left);
    }
  }

  observe(delivery: NewDelivery): void {
    this.observed.push(delivery);
  }

  get runningNow(): number {
    let total = 0;
    for (const n of this.running.values()) total += n;
    return total;
  }

  /** Evaluations waiting for {@link release}. */
  get held(): number {
    return this.waiting.length;
  }

  /** Lets every held evaluation finish, and stops holding new ones. */
  release(): void {
    this.hold = false;
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  /** Ids of every delivery evaluated, in evaluation order. */
  get deliveryIds(): string[] {
    return this.items.flatMap((i) => i.deliveries.map((d) => d.id));
  }

  itemsFor(subject: string): WorkItem[] {
    return this.items.filter((i) => i.subject.key === subject);
  }
}

export interface TestService {
  service: Service;
  url: string;
  config: Config;
  dataDir: string;
  logs: LogCapture;
  /** The simulated Gitea (unless the test gave its own `gitea`). */
  gitea: SimGitea | undefined;
  post(delivery: Pick<SignedDelivery, 'headers' | 'body'>, path?: string): Promise<HttpAnswer>;
  get(path: string): Promise<HttpAnswer>;
  /** Stops the service and the stub Gitea, and removes DATA_DIR (unless `keepDataDir`). */
  close(options?: { keepDataDir?: boolean }): Promise<void>;
}

export interface TestServiceOptions {
  /** Environment on top of the test defaults (`BATCH_WINDOW_MS` 20, `LOG_LEVEL` debug, secret = fixtures'). */
  env?: Record<string, string>;
  evaluator?: Evaluator | EvaluatorFactory;
  /** A Gitea API to use instead of the stub + real client. */
  gitea?: GiteaApi;
  /** The simulated Gitea's bot login (default `triage-bot`). */
  botLogin?: string;
  /** Start with the simulated Gitea down (connections closed at once); `gitea.setFaults({})` brings it back. */
  giteaDown?: boolean;
  /** Reuse a DATA_DIR (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  /** Wait until the bot identity is known (default true). */
  waitReady?: boolean;
}

export function tempDataDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
}

/**
 * Starts the real service (journal in a temp DATA_DIR, real Express on an ephemeral port) against the
 * simulated Gitea over real HTTP (through the real GiteaClient), with logs captured in memory.
 */
export async function startService(options: TestServiceOptions = {}): Promise<TestService> {
  const dataDir = options.dataDir ?? tempDataDir();
  const stub = options.gitea ? undefined : await SimGitea.start({ botLogin: options.botLogin ?? 'triage-bot' });
  if (stub && options.giteaDown) stub.setFaults({ down: true });
  const config = loadConfig({
    GITEA_URL: stub?.url ?? 'http://127.0.0.1:9',
    GITEA_TOKEN: stub?.token ?? 'test-token-0123456789',
    WEBHOOK_SECRET: FIXTURE_SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    BATCH_WINDOW_MS: '20',
    GITEA_RETRIES: '0',
    LOG_LEVEL: 'debug',
    JOURNAL_SYNC: 'normal',
    ...options.env,
  });
  const logs = new LogCapture();
  const log = createLogger({ level: config.logLevel, format: 'json', stream: logs.stream, redact: [config.giteaToken, ...config.webhookSecrets] });
  const service = await createService({
    config,
    log,
    ...(options.gitea ? { gitea: options.gitea } : {}),
    ...(options.evaluator ? { evaluator: options.evaluator } : {}),
    identityBackoff: { firstMs: 50, maxMs: 200 },
  });
  const { url } = await service.listen();
  if (options.waitReady !== false) await service.identified();
  let closed = false;
  return {
    service,
    url,
    config,
    dataDir,
    logs,
    gitea: stub,
    post: (delivery, p = '/webhook') => request(url + p, { method: 'POST', headers: delivery.headers, body: delivery.body }),
    get: (p) => request(url + p),
    close: async ({ keepDataDir = false } = {}) => {
      if (closed) return;
      closed = true;
      await service.stop();
      await stub?.close();
      if (!keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * One sample from the service's `/metrics` exposition, e.g. `metricValue(s, 'gitea_triage_batch_size_count')`
 * or with labels `{event: 'issues', outcome: 'accepted'}` (all of the sample's labels, any order). 0 if absent.
 */
export async function metricValue(service: Service, sample: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await service.registry.metrics();
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== sample) continue;
    const got = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

export { waitFor };
