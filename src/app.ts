import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { createHttpApp, createHttpServer, type Readiness } from './receiver/http.js';
import { Reconciler, type ReconcilerOptions } from './reconcile/reconcile.js';
import type { ReceiverDeps } from './receiver/receive.js';
import { Scheduler } from './scheduler/scheduler.js';
import type { EvaluationResult, Evaluator, WorkItem } from './scheduler/types.js';
import { errorText } from './errors.js';

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

/** Backoff for `GET /user` at start: the client already retried transient errors inside. */
const IDENTITY_BACKOFF = { firstMs: 1000, maxMs: 30_000 };
const PRUNE_EVERY_MS = 3_600_000;

/**
 * The one place that composes the stages: journal → coalescer → scheduler → evaluator, the receiver
 * in front, the Gitea client and the bot identity beside them.
 */
export async function createService(options: ServiceOptions): Promise<Service> {
  const { config, log } = options;
  const journal = Journal.open({ dataDir: config.dataDir, sync: config.journalSync, log });

  const ownClient = options.gitea === undefined;
  const gitea: GiteaWithHealth =
    options.gitea ?? giteaClientFromConfig(config, log);
  let bot: string | undefined; // the bot's login, once `GET /user` answered (below)
  const evaluator: Evaluator =
    typeof options.evaluator === 'function'
      ? options.evaluator({ journal, gitea, log, config, botLogin: () => bot })
      : (options.evaluator ?? new LoggingEvaluator());

  const metrics = new ServiceMetrics();
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
  const coalescer = new Coalescer({
    windowMs: config.batchWindowMs,
    maxEvents: config.batchMax,
    onFlush: (batch: Batch) => {
      metrics.batch(batch.deliveryIds.length);
      scheduler.schedule(batch);
    },
  });
  metrics.setSources({
    journalPending: () => journal.pendingCount(),
    ...(gitea.health ? { giteaCircuit: () => gitea.health!().state } : {}),
    queue: () => ({ queued: scheduler.queued, running: scheduler.running, retrying: scheduler.retrying }),
  });

  let shuttingDown = false;
  const stopSignal = new AbortController();

  // --- the bot's identity: its own events are recorded, never evaluated (no label loops) ---
  let identityFailed = false;
  let resolveIdentity!: (login: string) => void;
  let rejectIdentity!: (error: Error) => void;
  const identity = new Promise<string>((resolve, reject) => {
    resolveIdentity = resolve;
    rejectIdentity = reject;
  });
  identity.catch(() => undefined); // nobody has to wait for it
  const identify = async () => {
    const backoff = options.identityBackoff ?? IDENTITY_BACKOFF;
    let waitMs = backoff.firstMs;
    for (let attempt = 1; !stopSignal.signal.aborted; attempt++) {
      try {
        const [user, version] = await Promise.all([
          gitea.getCurrentUser(),
          gitea.getVersion().catch((error: unknown) => {
            log.warn('gitea version unavailable', { error: errorText(error) });
            return undefined;
          }),
        ]);
        bot = user.login;
        log.info('gitea identity', { login: user.login, version });
        resolveIdentity(user.login);
        return;
      } catch (error) {
        identityFailed = true;
        const retryInMs = Math.round(waitMs * (0.5 + Math.random() / 2));
        // A rejected token needs the operator; anything else is Gitea being away.
        const status = (error as { status?: unknown }).status;
        const level = status === 401 || status === 403 ? 'error' : 'warn';
        log.log(level, 'gitea identity unavailable', { attempt, retryInMs, status, error: errorText(error) });
        try {
          await sleep(retryInMs, undefined, { signal: stopSignal.signal });
        } catch {
          break; // stopping
        }
        waitMs = Math.min(waitMs * 2, backoff.maxMs);
      }
    }
    rejectIdentity(new Error('service stopped before the bot identity was known'));
  };
  void identify();

  const readiness = (): Readiness => {
    const reasons: string[] = [];
    if (shuttingDown) reasons.push('shutting down');
    if (!journalHealthy(journal)) reasons.push('journal unavailable');
    if (bot === undefined) reasons.push(identityFailed ? 'gitea unreachable: bot identity unknown' : 'bot identity unknown');
    // Gitea down after start degrades the service without making it unready: webhooks are still
    // journaled and evaluated once Gitea is back, so taking the receiver out of rotation would only
    // turn acknowledged deliveries into failed ones on Gitea's side.
    const warnings: string[] = [];
    const health = gitea.health?.();
    if (health && health.state !== 'closed') {
      warnings.push(
        `gitea unavailable: circuit ${health.state}` +
          (health.consecutiveFailures !== undefined ? ` after ${health.consecutiveFailures} consecutive failures` : '') +
          '; webhooks are journaled and wait',
      );
    }
    return { ready: reasons.length === 0, reasons, warnings };
  };

  // --- receiver wiring ---
  const onJournaled = (delivery: NewDelivery, payload: Record<string, unknown>) => {
    try {
      evaluator.observe?.(delivery, payload);
    } catch (error) {
      log.error('evaluator observe failed', { delivery: delivery.id, error: errorText(error) });
    }
    // While stopping, the coalescer is gone: the delivery is pending in the journal, resumed at the next start.
    if (delivery.state === 'pending' && delivery.subject !== null && !shuttingDown) {
      scheduler.rememberPayload(delivery.id, payload, Buffer.byteLength(delivery.body));
      coalescer.add({ deliveryId: delivery.id, subject: delivery.subject });
    }
  };
  const receiver: ReceiverDeps = {
    secrets: config.webhookSecrets,
    maxBodyBytes: config.maxBodyBytes,
    journal,
    botLogin: () => bot,
    shuttingDown: () => shuttingDown,
    onJournaled,
    log,
    metrics,
  };
  const app = createHttpApp({ receiver, readiness, metrics: () => metrics.text(), log });

  // Lost deliveries (Gitea never retries one): a periodic sweep journals synthetic ones through onJournaled.
  const reconciler =
    config.reconcileIntervalMs > 0
      ? new Reconciler({
          journal,
          gitea,
          intervalMs: config.reconcileIntervalMs,
          onJournaled,
          log,
          shuttingDown: () => shuttingDown,
          ...(gitea.health ? { giteaHealth: () => gitea.health!() } : {}),
          onReconciled: (n) => metrics.reconciled(n),
          ...options.reconcile,
        })
      : undefined;
  reconciler?.start();

  // Deliveries journaled before the last stop (or crash) and not evaluated yet.
  Promise.resolve()
    .then(() => scheduler.resume())
    .catch((error: unknown) => log.error('resume failed', { error: errorText(error) }));

  // --- journal retention ---
  const prune = () => {
    try {
      const removed = journal.prune(Date.now() - config.journalRetentionMs);
      if (removed > 0) log.info('journal pruned', { removed, retentionMs: config.journalRetentionMs });
    } catch (error) {
      log.warn('journal prune failed', { error: errorText(error) });
    }
  };
  prune();
  const pruneTimer = setInterval(prune, Math.min(PRUNE_EVERY_MS, config.journalRetentionMs));
  pruneTimer.unref();

  let server: http.Server | undefined;
  let closed: Promise<void> | undefined;

  const listen = async (): Promise<{ port: number; url: string }> => {
    if (shuttingDown) throw new Error('service is stopping');
    if (server) throw new Error('service is already listening');
    const s = createHttpServer(app);
    server = s;
    closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(config.port, config.host, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (error) => log.error('http server error', { error: errorText(error) }));
    const port = (s.address() as AddressInfo).port;
    return { port, url: `http://${connectableHost(config.host)}:${port}` };
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shuttingDown = true;
      stopSignal.abort();
      clearInterval(pruneTimer);
      reconciler?.stop();
      log.info('stopping', { pending: safeCount(journal), running: scheduler.running, timeoutMs: config.shutdownTimeoutMs });
      // No new connections; idle keep-alive ones are closed, busy ones finish their request.
      server?.close();
      server?.closeIdleConnections();
      coalescer.flush();
      coalescer.stop();
      const drained = await scheduler.stop(config.shutdownTimeoutMs);
      if (!drained) log.warn('shutdown timeout: evaluations still running stay pending in the journal', { timeoutMs: config.shutdownTimeoutMs });
      if (server && closed) {
        server.closeIdleConnections();
        // A request still in flight had the whole drain time; cut what remains.
        const grace = sleep(1000, undefined, { ref: false }).then(() => server?.closeAllConnections());
        await Promise.race([closed, grace]);
        await closed;
      }
      await journal.close();
      if (ownClient) (gitea as { close?(): void }).close?.();
      log.info('stopped', { drained });
    })();
    return stopping;
  };

  const onIdle = async (): Promise<void> => {
    const poll = Math.max(5, Math.min(config.batchWindowMs, 50));
    for (;;) {
      if (coalescer.size > 0) {
        await sleep(poll);
        continue;
      }
      await scheduler.onIdle();
      if (coalescer.size === 0 && scheduler.running === 0 && scheduler.queued === 0) return;
    }
  };

  return {
    app,
    listen,
    stop,
    onIdle,
    identified: () => identity,
    botLogin: () => bot,
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

function journalHealthy(journal: Journal): boolean {
  try {
    return journal.healthy();
  } catch {
    return false;
  }
}

function safeCount(journal: Journal): number | undefined {
  try {
    return journal.pendingCount();
  } catch {
    return undefined;
  }
}

/** `0.0.0.0`/`::` listen everywhere; a client connects to loopback. */
function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
