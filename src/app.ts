import { EventEmitter, once } from 'node:events';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { Coalescer } from './coalescer/coalescer.js';
import type { Batch } from './coalescer/api.js';
import type { Config } from './config/config.js';
import type { GiteaApi } from './gitea/api.js';
import { giteaClientFromConfig } from './gitea/client.js';
import type { Journal } from './journal/journal.js';
import type { NewDelivery } from './journal/types.js';
import type { Logger } from './log/logger.js';
import { ServiceMetrics } from './metrics/metrics.js';
import { createHttpApp, type Readiness } from './receiver/http.js';
import { Reconciler, type ReconcilerOptions } from './reconcile/reconcile.js';
import type { ReceiverDeps } from './receiver/receive.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { EvaluationResult, Evaluator, WorkItem } from './scheduler/types.js';
import { errorText } from './errors.js';
import { BotIdentity } from './service/identity.js';
import { HttpListener } from './service/listener.js';
import { readinessOf } from './service/readiness.js';
import { holderName, isLeader, pidAlive, startOrphanSweep, startPruning, StoreHealth } from './service/cluster.js';
import type { SqliteLeases } from './store/sqlite/leases.js';
import { hostname } from 'node:os';
import { leaderName, openStore, type Store } from './store/api.js';
import { isDefaultBranchPush } from './evaluation/payload.js';

/** The cluster-wide jobs, each run by the holder of its leader lease (docs/architecture.md, "The store"). */
const LEADER_JOBS = ['resume', 'prune', 'reconcile'] as const;

/** A Gitea API, optionally with the client's circuit state (`GiteaClient.health()`). */
export type GiteaWithHealth = GiteaApi & { health?(): { state: string; consecutiveFailures?: number } };

export type EvaluatorFactory = (parts: {
  store: Store;
  gitea: GiteaApi;
  log: Logger;
  config: Config;
  /** The bot's login once the service's `GET /user` succeeded. */
  botLogin: () => string | undefined;
}) => Evaluator;

export interface ServiceOptions {
  config: Config;
  log: Logger;
  /** Defaults to a `GiteaClient` built from `config`. */
  gitea?: GiteaWithHealth;
  /** Defaults to {@link LoggingEvaluator}; a factory receives the service's parts. */
  evaluator?: Evaluator | EvaluatorFactory;
  /** Backoff between `GET /user` attempts at start (default 1 s doubling to 30 s); tests shorten it. */
  identityBackoff?: { firstMs: number; maxMs: number };
  /** Tuning of the reconcile sweep (`RECONCILE_INTERVAL_MS` > 0); tests shorten `settleMs`. */
  reconcile?: Pick<ReconcilerOptions, 'settleMs' | 'overlapMs' | 'firstDelayMs'>;
  /** An open store to use instead of `openStore(config)` (tests); the service closes it when it stops. */
  store?: Store;
  /** This process's name in the store's leases (default: host, pid and a random part). */
  holder?: string;
  /** How often `/readyz`'s store check runs (default 1 s). */
  healthCheckMs?: number;
}

export interface Service {
  /** The Express app (for supertest-style use without `listen`). */
  app: Express;
  /** Listens on `config.host:config.port` (port 0: an ephemeral port); `url` is connectable. */
  listen(): Promise<{ port: number; url: string }>;
  /**
   * Graceful stop: webhooks and `/readyz` answer 503, no new connections, the coalescer is flushed
   * into the scheduler, running evaluations get `config.shutdownTimeoutMs` (the rest stays pending in
   * the journal for the next start), then the journal and the server close. Idempotent.
   */
  stop(): Promise<void>;
  /** Resolves when no notice waits in the coalescer and the scheduler is idle. */
  onIdle(): Promise<void>;
  /** Resolves with the bot's login once `GET /user` succeeded (rejects if the service stops first). */
  identified(): Promise<string>;
  botLogin(): string | undefined;
  readiness(): Readiness;
  /** The store everything persists in (docs/architecture.md, "The store"). */
  store: Store;
  /** This process's name in the store's leases. */
  holder: string;
  /**
   * The SQLite store's journal, for in-process tests and benchmarks (commit counts, synchronous
   * reads). Throws on PostgreSQL: use `store`.
   */
  readonly journal: Journal;
  scheduler: Scheduler;
  coalescer: Coalescer;
  gitea: GiteaWithHealth;
  evaluator: Evaluator;
  metrics: ServiceMetrics;
  registry: Registry;
  /** The periodic sweep for lost deliveries; undefined when `RECONCILE_INTERVAL_MS` is 0. */
  reconciler: Reconciler | undefined;
}

/**
 * The default evaluator until triage is wired in: logs the work item and changes nothing.
 * Lets the ingest pipeline run (and be measured) on its own.
 */
export class LoggingEvaluator implements Evaluator {
  async evaluate(item: WorkItem, log: Logger): Promise<EvaluationResult> {
    log.info('logging evaluator', {
      subject: item.subject.key,
      deliveries: item.deliveries.map((d) => d.id),
      newest: item.newest.id,
      updatedAt: item.newest.updatedAt ?? undefined,
    });
    return { added: [], removed: [], note: 'logging evaluator' };
  }
}

/** The stages behind the receiver: metrics, scheduler and coalescer, and the event of a drained coalescer. */
interface Pipeline {
  metrics: ServiceMetrics;
  scheduler: Scheduler;
  coalescer: Coalescer;
  /** Emits `drained` after a flush that left no notice waiting in the coalescer. */
  flushes: EventEmitter;
}

function createPipeline(config: Config, log: Logger, store: Store, holder: string, gitea: GiteaWithHealth, evaluator: Evaluator): Pipeline {
  const metrics = new ServiceMetrics();
  const flushes = new EventEmitter();
  const scheduler = new Scheduler({
    store: { deliveries: store.deliveries, leases: store.leases },
    holder,
    leaseTtlMs: config.leaseTtlMs,
    coalescing: (subject) => coalescer.holds(subject),
    evaluator,
    concurrency: config.concurrency,
    maxAttempts: config.evalMaxAttempts,
    log,
    hooks: {
      onEvaluated: (outcome, durationMs, item) => metrics.evaluated(outcome, durationMs, item.deliveries.length),
    },
  });
  const coalescer: Coalescer = new Coalescer({
    windowMs: config.batchWindowMs,
    maxEvents: config.batchMax,
    onFlush: (batch: Batch) => {
      try {
        metrics.batch(batch.deliveryIds.length);
        scheduler.schedule(batch);
      } finally {
        if (coalescer.size === 0) flushes.emit('drained');
      }
    },
  });
  metrics.setSources({
    journalPending: () => store.deliveries.pendingCount(),
    ...(gitea.health ? { giteaCircuit: () => gitea.health!().state } : {}),
    queue: () => ({ queued: scheduler.queued, running: scheduler.running, retrying: scheduler.retrying }),
  });
  return { metrics, scheduler, coalescer, flushes };
}

/**
 * What happens to a delivery once the journal has it: the evaluator observes it (its own echo, a
 * push), and a pending one goes to the coalescer, its parse handed to the scheduler.
 */
function journaledHandler(pipeline: Pipeline, evaluator: Evaluator, shuttingDown: () => boolean, log: Logger) {
  const { scheduler, coalescer } = pipeline;
  return (delivery: NewDelivery, payload: Record<string, unknown>): void => {
    try {
      evaluator.observe?.(delivery, payload);
    } catch (error) {
      log.error('evaluator observe failed', { delivery: delivery.id, error: errorText(error) });
    }
    // While stopping, the coalescer is gone: the delivery is pending in the journal, resumed at the next start.
    if (delivery.state === 'pending' && delivery.subject !== null && !shuttingDown()) {
      scheduler.rememberPayload(delivery.id, payload, Buffer.byteLength(delivery.body));
      coalescer.add({ deliveryId: delivery.id, subject: delivery.subject });
    }
  };
}

/** Resolves when no notice waits in the coalescer and the scheduler is idle; awaits their events, never polls. */
async function untilIdle(pipeline: Pipeline): Promise<void> {
  const { coalescer, scheduler, flushes } = pipeline;
  for (;;) {
    if (coalescer.size > 0) await once(flushes, 'drained');
    await scheduler.onIdle();
    if (coalescer.size === 0 && scheduler.running === 0 && scheduler.queued === 0) return;
  }
}

/** Lost deliveries (Gitea never retries one): a periodic sweep journals synthetic ones through `onJournaled`. */
function createReconciler(
  options: ServiceOptions,
  store: Store,
  holder: string,
  gitea: GiteaWithHealth,
  onJournaled: ReconcilerOptions['onJournaled'],
  metrics: ServiceMetrics,
  shuttingDown: () => boolean,
): Reconciler | undefined {
  const { config, log } = options;
  if (config.reconcileIntervalMs <= 0) return undefined;
  return new Reconciler({
    journal: store.deliveries,
    // Cluster-wide once: the `reconcile` leader sweeps; its lease outlives two intervals.
    mayRun: () => isLeader(store.leases, 'reconcile', holder, 2 * config.reconcileIntervalMs + config.leaseTtlMs),
    gitea,
    intervalMs: config.reconcileIntervalMs,
    onJournaled,
    log,
    shuttingDown,
    ...(gitea.health ? { giteaHealth: () => gitea.health!() } : {}),
    onReconciled: (n) => metrics.reconciled(n),
    ...options.reconcile,
  });
}

/**
 * The one place that composes the stages: store → coalescer → scheduler → evaluator, the receiver
 * in front, the Gitea client and the bot identity beside them, and the cluster's jobs (leases,
 * adoption, leader jobs: docs/architecture.md, "The store").
 */
export async function createService(options: ServiceOptions): Promise<Service> {
  const { config, log } = options;
  const store = options.store ?? (await openStore(config, log));
  const holder = options.holder ?? holderName();
  const ownClient = options.gitea === undefined;
  const gitea: GiteaWithHealth = options.gitea ?? giteaClientFromConfig(config, log);
  const identity = new BotIdentity(gitea, log, options.identityBackoff);
  const botLogin = () => identity.login();
  const evaluator: Evaluator =
    typeof options.evaluator === 'function'
      ? options.evaluator({ store, gitea, log, config, botLogin })
      : (options.evaluator ?? new LoggingEvaluator());
  const pipeline = createPipeline(config, log, store, holder, gitea, evaluator);
  const { metrics, scheduler, coalescer } = pipeline;
  const health = new StoreHealth(store, log);
  health.start(options.healthCheckMs ?? 1000);

  let shuttingDown = false;
  const isShuttingDown = () => shuttingDown;
  const stopSignal = new AbortController();
  void identity.ask(stopSignal.signal);
  const readiness = (): Readiness =>
    readinessOf({
      shuttingDown: isShuttingDown,
      storeHealthy: () => health.healthy,
      identity,
      ...(gitea.health ? { giteaHealth: () => gitea.health!() } : {}),
    });

  const onJournaled = journaledHandler(pipeline, evaluator, isShuttingDown, log);
  const receiver: ReceiverDeps = {
    secrets: config.webhookSecrets,
    maxBodyBytes: config.maxBodyBytes,
    journal: observedAppends(store, health),
    botLogin,
    shuttingDown: isShuttingDown,
    beforeJournal: (delivery, payload) => bumpOnPush(store, delivery, payload),
    onJournaled,
    log,
    metrics,
  };
  const app = createHttpApp({ receiver, readiness, metrics: () => metrics.text(), log });
  const reconciler = createReconciler(options, store, holder, gitea, onJournaled, metrics, isShuttingDown);
  reconciler?.start();

  const stopJobs = startClusterJobs(config, log, store, holder, pipeline);
  const listener = new HttpListener(app, config, log);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      stopSignal.abort();
      stopJobs();
      health.stop();
      reconciler?.stop();
      await drainAndClose({ config, log, store, holder, pipeline, listener, gitea: ownClient ? gitea : undefined });
    })();
    return stopping;
  };

  return {
    app,
    listen: () => (shuttingDown ? Promise.reject(new Error('service is stopping')) : listener.listen()),
    stop,
    onIdle: () => untilIdle(pipeline),
    identified: () => identity.whenKnown(),
    botLogin,
    readiness,
    store,
    holder,
    get journal(): Journal {
      return sqliteJournal(store);
    },
    scheduler,
    coalescer,
    gitea,
    evaluator,
    metrics,
    registry: metrics.registry,
    reconciler,
  };
}

/**
 * This process's share of the cluster's work: deliveries journaled before the last stop (or crash)
 * and not evaluated yet, paged through by the `resume` leader; the orphan sweep, which adopts what
 * any process left behind; retention pruning by the `prune` leader. Returns the stop function.
 */
function startClusterJobs(config: Config, log: Logger, store: Store, holder: string, pipeline: Pipeline): () => void {
  const { scheduler, coalescer } = pipeline;
  releaseDeadHolders(store, log)
    .then(() => isLeader(store.leases, 'resume', holder, config.leaseTtlMs))
    .then((leader) => leader && scheduler.resume())
    .catch((error: unknown) => log.error('resume failed', { error: errorText(error) }));
  // A subject waiting in this process's coalescer is not an orphan: its window is about to release it.
  const stopOrphanSweep = startOrphanSweep(
    store.deliveries,
    (subjects) => scheduler.adopt(subjects.filter((s) => !coalescer.holds(s))),
    config.orphanSweepMs,
    log,
    // Two coalescer windows: a live replica has flushed and leased the subject by then.
    Math.max(2 * config.batchWindowMs, 1000),
  );
  const stopPruning = startPruning(store, holder, config.journalRetentionMs, log);
  return () => {
    stopPruning();
    stopOrphanSweep();
  };
}

/**
 * SQLite only (one host): leases of this host's processes that are gone are released at start, so a
 * restart after a crash resumes at once (SqliteLeases `releaseDeadHolders`). PostgreSQL's leases
 * expire: another replica adopts their subjects (docs/architecture.md, "The store").
 */
async function releaseDeadHolders(store: Store, log: Logger): Promise<void> {
  const leases = store.leases as Partial<Pick<SqliteLeases, 'releaseDeadHolders'>>;
  if (store.backend !== 'sqlite' || !leases.releaseDeadHolders) return;
  const released = await leases.releaseDeadHolders(hostname(), pidAlive);
  if (released > 0) log.info('leases of a process that is gone released', { released });
}

/** The SQLite store's journal (`Service.journal`). */
function sqliteJournal(store: Store): Journal {
  const journal = (store as { journal?: Journal }).journal;
  if (!journal) throw new Error(`service.journal: the ${store.backend} store has no SQLite journal; use service.store`);
  return journal;
}

/** The store's appends, each outcome telling the health monitor whether the store answered. */
function observedAppends(store: Store, health: StoreHealth): ReceiverDeps['journal'] {
  return {
    append: (delivery) =>
      store.deliveries.append(delivery).then(
        (outcome) => {
          health.observe(true);
          return outcome;
        },
        (error: unknown) => {
          void health.check();
          throw error;
        },
      ),
  };
}

/**
 * A push to a repository's default branch bumps its context generation before the push's 202 (with
 * its append: see `ReceiverDeps.beforeJournal`): every replica's context loader sees the new
 * generation before it evaluates any event journaled after the push. A failed bump answers 503;
 * the redelivery bumps again (and answers `200 duplicate` if the row had committed). A bump whose
 * append failed only drops caches once more. Gitea sends the push webhook from its push queue after
 * the post-receive hook, once the refs moved (routers/private/hook_post_receive.go `HookPostReceive`
 * → services/repository/push.go `PushUpdates`, `pushUpdates` → `notify_service.PushCommits`,
 * v1.22.2 and v1.25.4): a context loaded after the bump reads the pushed config.
 */
async function bumpOnPush(store: Store, delivery: NewDelivery, payload: Record<string, unknown>): Promise<void> {
  if (delivery.event !== 'push' || !delivery.repo || !isDefaultBranchPush(payload)) return;
  await store.generations.bump(delivery.repo);
}

/**
 * The end of a graceful stop, once nothing new is accepted: the coalescer flushed into the
 * scheduler, running evaluations get `shutdownTimeoutMs` (the rest stays pending in the store, its
 * leases released or left to expire, for another replica or the next start), then the server, the
 * store and a client the service built itself close.
 */
async function drainAndClose(parts: {
  config: Config;
  log: Logger;
  store: Store;
  holder: string;
  pipeline: Pipeline;
  listener: HttpListener;
  gitea: GiteaWithHealth | undefined;
}): Promise<void> {
  const { config, log, store, listener } = parts;
  const { scheduler, coalescer } = parts.pipeline;
  log.info('stopping', { pending: await safeCount(store), running: scheduler.running, timeoutMs: config.shutdownTimeoutMs });
  // The listener stays open while the evaluations drain: `/readyz` answers 503 and webhooks 503
  // (`shutting down`, before the body is read) on new connections too, so a probe sees the stop at
  // once and a load balancer retries the delivery on another replica (docs/architecture.md, "Health").
  coalescer.flush();
  coalescer.stop();
  const drained = await scheduler.stop(config.shutdownTimeoutMs);
  if (!drained) log.warn('shutdown timeout: evaluations still running stay pending in the store', { timeoutMs: config.shutdownTimeoutMs });
  listener.stopAccepting();
  await listener.close(1000);
  // The cluster's jobs go to another replica (or to this one's next start) at once.
  await releaseLeadership(store, parts.holder, log);
  await store.close();
  (parts.gitea as { close?(): void } | undefined)?.close?.();
  log.info('stopped', { drained });
}

async function releaseLeadership(store: Store, holder: string, log: Logger): Promise<void> {
  for (const job of LEADER_JOBS) {
    try {
      const lease = await store.leases.current(leaderName(job));
      if (lease?.holder === holder) await store.leases.release(lease);
    } catch (error) {
      log.warn('leader lease not released: it expires by itself', { job, error: errorText(error) });
    }
  }
}

async function safeCount(store: Store): Promise<number | undefined> {
  try {
    return await store.deliveries.pendingCount();
  } catch {
    return undefined;
  }
}
