import { EventEmitter, once } from 'node:events';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { Coalescer } from './coalescer/coalescer.js';
import type { Batch } from './coalescer/api.js';
import type { Config } from './config/config.js';
import type { GiteaApi } from './gitea/api.js';
import { giteaClientFromConfig } from './gitea/client.js';
import { Journal } from './journal/journal.js';
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
import { startJournalPruning } from './service/retention.js';

/** A Gitea API, optionally with the client's circuit state (`GiteaClient.health()`). */
export type GiteaWithHealth = GiteaApi & { health?(): { state: string; consecutiveFailures?: number } };

export type EvaluatorFactory = (parts: {
  journal: Journal;
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
  journal: Journal;
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

function createPipeline(config: Config, log: Logger, journal: Journal, gitea: GiteaWithHealth, evaluator: Evaluator): Pipeline {
  const metrics = new ServiceMetrics();
  const flushes = new EventEmitter();
  const scheduler = new Scheduler({
    journal,
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
    journalPending: () => journal.pendingCount(),
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
  journal: Journal,
  gitea: GiteaWithHealth,
  onJournaled: ReconcilerOptions['onJournaled'],
  metrics: ServiceMetrics,
  shuttingDown: () => boolean,
): Reconciler | undefined {
  const { config, log } = options;
  if (config.reconcileIntervalMs <= 0) return undefined;
  return new Reconciler({
    journal,
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
 * The one place that composes the stages: journal → coalescer → scheduler → evaluator, the receiver
 * in front, the Gitea client and the bot identity beside them.
 */
export async function createService(options: ServiceOptions): Promise<Service> {
  const { config, log } = options;
  const journal = Journal.open({ dataDir: config.dataDir, sync: config.journalSync, log });
  const ownClient = options.gitea === undefined;
  const gitea: GiteaWithHealth = options.gitea ?? giteaClientFromConfig(config, log);
  const identity = new BotIdentity(gitea, log, options.identityBackoff);
  const botLogin = () => identity.login();
  const evaluator: Evaluator =
    typeof options.evaluator === 'function'
      ? options.evaluator({ journal, gitea, log, config, botLogin })
      : (options.evaluator ?? new LoggingEvaluator());
  const pipeline = createPipeline(config, log, journal, gitea, evaluator);
  const { metrics, scheduler, coalescer } = pipeline;

  let shuttingDown = false;
  const isShuttingDown = () => shuttingDown;
  const stopSignal = new AbortController();
  void identity.ask(stopSignal.signal);
  const readiness = (): Readiness =>
    readinessOf({ shuttingDown: isShuttingDown, journal, identity, ...(gitea.health ? { giteaHealth: () => gitea.health!() } : {}) });

  const onJournaled = journaledHandler(pipeline, evaluator, isShuttingDown, log);
  const receiver: ReceiverDeps = {
    secrets: config.webhookSecrets,
    maxBodyBytes: config.maxBodyBytes,
    journal,
    botLogin,
    shuttingDown: isShuttingDown,
    onJournaled,
    log,
    metrics,
  };
  const app = createHttpApp({ receiver, readiness, metrics: () => metrics.text(), log });
  const reconciler = createReconciler(options, journal, gitea, onJournaled, metrics, isShuttingDown);
  reconciler?.start();

  // Deliveries journaled before the last stop (or crash) and not evaluated yet.
  Promise.resolve()
    .then(() => scheduler.resume())
    .catch((error: unknown) => log.error('resume failed', { error: errorText(error) }));
  const stopPruning = startJournalPruning(journal, config.journalRetentionMs, log);
  const listener = new HttpListener(app, config, log);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      stopSignal.abort();
      stopPruning();
      reconciler?.stop();
      await drainAndClose({ config, log, journal, pipeline, listener, gitea: ownClient ? gitea : undefined });
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
    journal,
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
 * The end of a graceful stop, once nothing new is accepted: the coalescer flushed into the
 * scheduler, running evaluations get `shutdownTimeoutMs` (the rest stays pending in the journal),
 * then the server, the journal and a client the service built itself close.
 */
async function drainAndClose(parts: {
  config: Config;
  log: Logger;
  journal: Journal;
  pipeline: Pipeline;
  listener: HttpListener;
  gitea: GiteaWithHealth | undefined;
}): Promise<void> {
  const { config, log, journal, listener } = parts;
  const { scheduler, coalescer } = parts.pipeline;
  log.info('stopping', { pending: safeCount(journal), running: scheduler.running, timeoutMs: config.shutdownTimeoutMs });
  listener.stopAccepting();
  coalescer.flush();
  coalescer.stop();
  const drained = await scheduler.stop(config.shutdownTimeoutMs);
  if (!drained) log.warn('shutdown timeout: evaluations still running stay pending in the journal', { timeoutMs: config.shutdownTimeoutMs });
  await listener.close(1000);
  await journal.close();
  (parts.gitea as { close?(): void } | undefined)?.close?.();
  log.info('stopped', { drained });
}

function safeCount(journal: Journal): number | undefined {
  try {
    return journal.pendingCount();
  } catch {
    return undefined;
  }
}
