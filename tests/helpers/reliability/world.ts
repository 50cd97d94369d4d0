import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createService, type Service } from '../../../src/app.js';
import { loadConfig, type Config } from '../../../src/config/config.js';
import { GiteaClient, giteaClientFromConfig, type GiteaClientOptions } from '../../../src/gitea/client.js';
import { createLogger, type Logger } from '../../../src/log/logger.js';
import { LogCapture } from '../log-capture.js';
import { SimGitea, type SimGiteaOptions } from '../../../src/simgitea/sim.js';
import { createTriageEvaluator } from '../../../src/service/triage.js';
import { fixtureDelivery, type SignedDelivery } from '../signing.js';
import { request, type HttpAnswer } from '../service.js';
import { waitFor } from '../wait.js';
import { startGate, type Gate } from './gate.js';

/**
 * The reliability tests' world: one org repository with a triage config, issues and pull requests
 * whose right labels are known in advance, Gitea-shaped deliveries about them, and the real service
 * (createService + the triage evaluator + a real GiteaClient) in front of the simulated Gitea.
 */
export const ORG = 'acme';
export const REPO = 'widgets';
export const SECRET = 'hook-secret-7c1e0b93aa';
export const TOKEN = 'gt-bot-token-5f2a9d41c7e8';
export const BOT = 'triage-bot';

export const TRIAGE_YML = `labels:
  kind/bug:
    title: ['\\bcrash', '\\bbug\\b']
    body: ['stack ?trace']
  area/docs:
    files: ['docs/**']
size:
  labels:
    size/S: 0
    size/M: 50
    size/L: 200
commands:
  enabled: false
`;

export const LABELS = [
  { name: 'kind/bug', exclusive: true },
  { name: 'kind/feature', exclusive: true },
  { name: 'area/docs', exclusive: false },
  { name: 'size/S', exclusive: true },
  { name: 'size/M', exclusive: true },
  { name: 'size/L', exclusive: true },
];

/** One issue or pull request of the world, with the labels the config gives it (sorted like Gitea). */
export interface Item {
  number: number;
  kind: 'issue' | 'pull';
  title: string;
  body: string;
  files?: { filename: string; additions: number; deletions: number }[];
  expected: string[];
}

/** Five shapes, cycled: each decides a different set of labels. */
const SHAPES: ((i: number) => Omit<Item, 'number'>)[] = [
  (i) => ({ kind: 'issue', title: `Crash when saving widget ${i}`, body: 'It stops.', expected: ['kind/bug'] }),
  (i) => ({ kind: 'issue', title: `Question about widget ${i}`, body: 'How do I resize it?', expected: [] }),
  (i) => ({ kind: 'issue', title: `Slow start ${i}`, body: 'The stack trace is below.', expected: ['kind/bug'] }),
  (i) => ({
    kind: 'pull',
    title: `Update the guide ${i}`,
    body: '',
    files: [{ filename: `docs/guide-${i}.md`, additions: 30, deletions: 5 }],
    expected: ['area/docs', 'size/S'],
  }),
  (i) => ({
    kind: 'pull',
    title: `Refactor the loader ${i}`,
    body: '',
    files: [
      { filename: `src/loader-${i}.ts`, additions: 120, deletions: 40 },
      { filename: 'package.lock', additions: 3, deletions: 3 },
    ],
    expected: ['size/M'],
  }),
];

/** The org, the repository with its config and labels, and the bot as Gitea knows them. */
export function seedRepo(sim: SimGitea, repo = REPO, config = TRIAGE_YML): void {
  try {
    sim.addOrg(ORG);
    sim.addUser('alice');
  } catch {
    // a second repository of the same org: both exist already
  }
  sim.addRepo(ORG, repo, { files: { '.gitea/triage.yml': config } });
  for (const l of LABELS) sim.addLabel(ORG, repo, { name: l.name, exclusive: l.exclusive, color: 'ededed' });
}

/** Creates `count` issues and pull requests silently (no deliveries); returns them with their expected labels. */
export function seedItems(sim: SimGitea, count: number, repo = REPO): Item[] {
  const items: Item[] = [];
  for (let i = 0; i < count; i++) {
    const shape = SHAPES[i % SHAPES.length]!(i);
    const number = sim.addIssue(ORG, repo, {
      title: shape.title,
      body: shape.body,
      user: 'alice',
      ...(shape.kind === 'pull' ? { pull: { files: shape.files ?? [] } } : {}),
    });
    items.push({ ...shape, number });
  }
  return items;
}

export type Action = 'opened' | 'edited' | 'comment';

/**
 * A delivery about `item` as Gitea sends it (real payload shapes from tests/fixtures/payloads, signed
 * with {@link SECRET}), under a fresh delivery id. `seq` orders the payloads' `updated_at`.
 */
export function deliveryFor(
  item: Item,
  action: Action,
  seq: number,
  options: { repo?: string; secret?: string; urlsTo?: string } = {},
): SignedDelivery {
  const repo = options.repo ?? REPO;
  const updated = new Date(Date.UTC(2026, 2, 1) + seq * 1000).toISOString().replace('.000Z', 'Z');
  const setRepo = (b: Record<string, any>) => {
    if (options.urlsTo) rewriteUrls(b, options.urlsTo);
    b.repository.name = repo;
    b.repository.full_name = `${ORG}/${repo}`;
    b.repository.owner.login = ORG;
    b.repository.owner.username = ORG;
  };
  const secret = options.secret ?? SECRET;
  if (item.kind === 'pull') {
    const name = action === 'opened' ? 'pull_request-opened' : action === 'edited' ? 'pull_request-synchronized' : 'issue_comment-created';
    return fixtureDelivery(name, {
      secret,
      mutate: (b) => {
        setRepo(b);
        if (b.pull_request) {
          b.number = item.number;
          b.pull_request.number = item.number;
          b.pull_request.title = item.title;
          b.pull_request.updated_at = updated;
          b.pull_request.labels = [];
        } else {
          b.is_pull = true;
          b.issue.number = item.number;
          b.issue.title = item.title;
          b.issue.labels = [];
          b.comment.body = `Looked at it (${seq}).`;
          b.comment.updated_at = updated;
        }
      },
    });
  }
  const name = action === 'opened' ? 'issues-opened' : action === 'edited' ? 'issues-edited' : 'issue_comment-created';
  return fixtureDelivery(name, {
    secret,
    mutate: (b) => {
      setRepo(b);
      if ('number' in b) b.number = item.number;
      b.issue.number = item.number;
      b.issue.title = item.title;
      b.issue.body = item.body;
      b.issue.labels = [];
      b.issue.updated_at = updated;
      if (b.comment) {
        b.comment.body = `Same here (${seq}).`;
        b.comment.updated_at = updated;
      }
    },
  });
}

/** Points every `https://gitea.example.com…` address of a payload (html_url, clone_url, issue url, avatars…) at `base`. */
function rewriteUrls(value: unknown, base: string): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      if (typeof v === 'string') value[i] = v.replace('https://gitea.example.com', base);
      else rewriteUrls(v, base);
    });
  } else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'string') o[k] = v.replace('https://gitea.example.com', base);
      else rewriteUrls(v, base);
    }
  }
}

/** `count` deliveries spread over `items` (opened first, then edits and comments), in a shuffled order. */
export function burst(items: Item[], count: number, random: () => number, seqBase = 0): SignedDelivery[] {
  const out: SignedDelivery[] = [];
  const actions: Action[] = ['opened', 'edited', 'comment'];
  for (let k = 0; k < count; k++) {
    const item = items[k % items.length]!;
    const action = k < items.length ? 'opened' : actions[Math.floor(random() * actions.length)]!;
    out.push(deliveryFor(item, action, seqBase + k));
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Label names on every item now, keyed by number (for one `toEqual` against the expectation). */
export function labelsNow(sim: SimGitea, items: Item[], repo = REPO): Record<number, string[]> {
  return Object.fromEntries(items.map((i) => [i.number, sim.issueLabels(ORG, repo, i.number)]));
}

export function expectedLabels(items: Item[]): Record<number, string[]> {
  return Object.fromEntries(items.map((i) => [i.number, [...i.expected].sort()]));
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
}

export interface World {
  sim: SimGitea;
  /** Present when started with `gate: true`: the service talks to Gitea through it. */
  gate: Gate | undefined;
  service: Service;
  /** The service's Gitea client (stats, circuit health). */
  client: GiteaClient;
  config: Config;
  logs: LogCapture;
  log: Logger;
  url: string;
  dataDir: string;
  post(delivery: Pick<SignedDelivery, 'headers' | 'body'>): Promise<HttpAnswer>;
  get(p: string): Promise<HttpAnswer>;
  close(): Promise<void>;
}

export interface WorldOptions {
  env?: Record<string, string>;
  sim?: SimGiteaOptions;
  /** Put the recording proxy between the service and the sim. */
  gate?: boolean;
  /**
   * Client knobs the environment does not reach (backoff base, circuit timings); `'default'` lets
   * createService build its own client from the config, as in production.
   */
  client?: Partial<Pick<GiteaClientOptions, 'retryBaseMs' | 'retryMaxMs' | 'circuit'>> | 'default';
  /** The sim's every-event hook delivers to the service (the bot's label writes come back as `label_updated`). */
  echo?: boolean;
  seed?: (sim: SimGitea) => void;
  /** `redact` for the logger; by default what src/main.ts passes: the token and the secrets. */
  redact?: string[];
}

/**
 * Starts the sim, (optionally) the gate, and the real service with the triage evaluator, logs
 * captured at debug level, journal in a fresh temp DATA_DIR. The Gitea client is built here, from
 * the same config values createService would use, plus `client` knobs, so a test can read its stats.
 */
export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const dataDir = tempDir();
  const sim = await SimGitea.start({ token: TOKEN, botLogin: BOT, ...options.sim });
  options.seed?.(sim);
  const gate = options.gate ? await startGate(sim) : undefined;
  const config = loadConfig({
    GITEA_URL: gate?.url ?? sim.url,
    GITEA_TOKEN: TOKEN,
    WEBHOOK_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    BATCH_WINDOW_MS: '20',
    LOG_LEVEL: 'debug',
    JOURNAL_SYNC: 'normal',
    ...options.env,
  });
  const logs = new LogCapture();
  const log = createLogger({
    level: config.logLevel,
    format: 'json',
    stream: logs.stream,
    redact: options.redact ?? [config.giteaToken, ...config.webhookSecrets],
  });
  const own =
    options.client === 'default'
      ? undefined
      : giteaClientFromConfig(config, log, options.client);
  const service = await createService({
    config,
    log,
    ...(own ? { gitea: own } : {}),
    evaluator: createTriageEvaluator,
    identityBackoff: { firstMs: 20, maxMs: 200 },
  });
  const client = own ?? (service.gitea as GiteaClient);
  const { url } = await service.listen();
  await service.identified();
  if (options.echo) sim.setWebhook({ url: `${url}/webhook`, secret: SECRET });
  let closed = false;
  return {
    sim,
    gate,
    service,
    client,
    config,
    logs,
    log,
    url,
    dataDir,
    post: (d) => request(`${url}/webhook`, { method: 'POST', headers: d.headers, body: d.body }),
    get: (p) => request(url + p),
    close: async () => {
      if (closed) return;
      closed = true;
      sim.setWebhook(undefined);
      await sim.awaitDeliveries();
      await service.stop();
      own?.close();
      await gate?.close();
      await sim.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sends deliveries with at most `concurrency` in flight; the answers in input order. */
export async function postAll<T>(items: T[], send: (item: T) => Promise<HttpAnswer>, concurrency = 16): Promise<HttpAnswer[]> {
  const answers: HttpAnswer[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      answers[i] = await send(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return answers;
}

/**
 * Waits (polling, with a deadline) until the sim has sent every delivery (echoes included) and the
 * service has nothing pending, queued, running or waiting to retry.
 */
export async function settle(w: World, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      await w.sim.awaitDeliveries();
      const s = w.service.scheduler;
      return w.service.coalescer.size === 0 && w.service.journal.pendingCount() === 0 && s.running === 0 && s.queued === 0 && s.retrying === 0;
    },
    { timeoutMs, intervalMs: 50, what: 'the pipeline to be idle with nothing pending' },
  );
}
