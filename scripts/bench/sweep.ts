/**
 * Sweep and scaling: a backlog of open issues triaged from scratch through the service's own evaluator
 * (`runBackfill`), against a simulated Gitea with a fixed latency. The "linear" mode is the same code
 * with the switches of the loop this project replaces: one issue at a time, no context cache, a new
 * TCP connection per request. The simulated Gitea runs in a child process (`SimProcess`), as a real
 * Gitea runs elsewhere: its CPU is not charged to the evaluator's event loop.
 */
import { SqliteStore } from '../../src/store/sqlite/store.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBackfill } from '../../src/backfill/backfill.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { ContextLoader } from '../../src/context/context.js';
import { giteaClientFromConfig } from '../../src/gitea/client.js';
import { silentLogger } from '../../src/log/logger.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import { SimProcess } from './sim-process.js';

export interface SweepFigures {
  mode: string;
  issues: number;
  concurrency: number;
  wallMs: number;
  requests: number;
  labelWrites: number;
  otherRequests: number;
  requestsPerIssue: number;
  connections: number;
  changed: number;
  failed: number;
  /** requests × mean latency ÷ min(concurrency, sockets): the floor Gitea's latency sets. */
  boundMs: number;
  /** CPU time (user + system) this process spent in the sweep: on a shared machine, wall ≥ CPU ÷ the share it gets. */
  cpuMs: number;
  /** The fewest requests the work allows, and its parts (see `requestFloor`). */
  floor: RequestFloor;
  /** requests ÷ floor.total. */
  floorRatio: number;
}

/**
 * The fewest requests a sweep of the world costs Gitea: every page of each repository's issue listing,
 * each repository's context once (plus one `GET /version` for the client), one label write per issue
 * whose labels change (the world is triaged from scratch: additions only, one POST each) and the
 * changed-file pages of each pull request (the world has none). Nothing else: no issue read again.
 */
export interface RequestFloor {
  listingPages: number;
  context: number;
  writes: number;
  filePages: number;
  total: number;
  perIssue: number;
}

/** Gitea's page size as the client asks for it (`limit=50`). */
const PAGE = 50;

export interface SweepOptions {
  mode: 'linear' | 'default' | string;
  repos: number;
  issuesPerRepo: number;
  latencyMs: number;
  jitterMs: number;
  /** Environment overrides on top of the service's defaults (CONCURRENCY, CONTEXT_TTL_MS, GITEA_KEEP_ALIVE, …). */
  env: Record<string, string>;
  seed?: number;
}

export const LINEAR_ENV = { CONCURRENCY: '1', BATCH_WINDOW_MS: '0', CONTEXT_TTL_MS: '0', GITEA_KEEP_ALIVE: 'false' };

export async function runSweep(options: SweepOptions): Promise<SweepFigures> {
  const sim = await SimProcess.start({ latencyMs: options.latencyMs, jitterMs: options.jitterMs, seed: options.seed ?? 7 });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-sweep-'));
  const log = silentLogger();
  try {
    const world = await sim.seed(options.repos, options.issuesPerRepo);
    const config = loadConfig({
      GITEA_URL: sim.url,
      GITEA_TOKEN: sim.token,
      WEBHOOK_SECRET: 'bench-secret',
      DATA_DIR: dataDir,
      ...options.env,
    });
    const store = SqliteStore.open({ dataDir, sync: config.journalSync, log });
    const gitea = giteaClientFromConfig(config, log);
    const evaluator = createTriageEvaluator({ store, gitea, log, config, botLogin: () => sim.botLogin });
    const contextPerRepo = await contextRequests(sim, config, world.repos[0]!);
    await sim.resetStats();
    const cpuBefore = process.cpuUsage();
    const summary = await runBackfill({ gitea, evaluator, repos: world.repos, concurrency: config.concurrency, log });
    const cpu = process.cpuUsage(cpuBefore);
    const stats = await sim.stats();
    gitea.close();
    await store.close();
    const issues = world.issues.length;
    const meanLatency = options.latencyMs + options.jitterMs / 2;
    const listingPages = world.repos.length * Math.max(1, Math.ceil(options.issuesPerRepo / PAGE));
    const context = 1 + world.repos.length * contextPerRepo;
    const floorTotal = listingPages + context + summary.changed;
    const floor: RequestFloor = { listingPages, context, writes: summary.changed, filePages: 0, total: floorTotal, perIssue: floorTotal / issues };
    return {
      mode: options.mode,
      issues,
      concurrency: config.concurrency,
      wallMs: summary.durationMs,
      requests: stats.requests,
      labelWrites: stats.labelWrites,
      otherRequests: stats.requests - stats.labelWrites,
      requestsPerIssue: stats.requests / issues,
      connections: stats.connections,
      changed: summary.changed,
      failed: summary.failed,
      boundMs: (stats.requests * meanLatency) / Math.min(config.concurrency, config.giteaMaxSockets),
      cpuMs: (cpu.user + cpu.system) / 1000,
      floor,
      floorRatio: stats.requests / floorTotal,
    };
  } finally {
    await sim.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Requests one repository's context costs (config, templates, labels), measured by loading it once with
 * a client of its own, less that client's `GET /version` (counted once in the floor).
 */
async function contextRequests(sim: SimProcess, config: Config, repo: string): Promise<number> {
  const log = silentLogger();
  const gitea = giteaClientFromConfig(config, log);
  try {
    await sim.resetStats();
    const [owner, name] = repo.split('/') as [string, string];
    await new ContextLoader({ gitea, ttlMs: 60_000, log }).get(owner, name, log);
    const stats = await sim.stats();
    return stats.requests - (stats.byRoute['GET /version'] ?? 0);
  } finally {
    gitea.close();
  }
}
