import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Outcome of one `POST /webhook`, the `outcome` label of `gitea_triage_deliveries_total`. */
export type DeliveryOutcome = 'accepted' | 'duplicate' | 'ignored' | 'rejected';
export type EvaluationOutcome = 'done' | 'retry' | 'failed';

/** The part of the metrics the receiver records into (kept narrow so the replay tool can pass none). */
export interface ReceiverMetrics {
  delivery(event: string, outcome: DeliveryOutcome): void;
  rejected(status: number): void;
}

/** Live values read on each scrape; set once the stages exist. */
export interface MetricSources {
  /** The store's count of pending rows (async: a query on PostgreSQL). */
  journalPending?: () => number | Promise<number>;
  queue?: () => { queued: number; running: number; retrying: number };
  /** The Gitea client's circuit: `closed`, `open` or `half-open`. */
  giteaCircuit?: () => string;
}

const PREFIX = 'gitea_triage_';

/**
 * The service's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * that several services can run in one process (tests) without clashing.
 */
export class ServiceMetrics implements ReceiverMetrics {
  readonly registry = new Registry();
  private sources: MetricSources = {};

  private readonly deliveries = new Counter({
    name: `${PREFIX}deliveries_total`,
    help: 'Webhook deliveries received, by event family and outcome.',
    labelNames: ['event', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly rejections = new Counter({
    name: `${PREFIX}webhook_rejections_total`,
    help: 'Webhook requests answered with an error, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  private readonly batchSize = new Histogram({
    name: `${PREFIX}batch_size`,
    help: 'Deliveries per flushed micro-batch.',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });

  private readonly evaluationDuration = new Histogram({
    name: `${PREFIX}evaluation_duration_seconds`,
    help: 'Time to evaluate one subject, by outcome.',
    labelNames: ['outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private readonly evaluations = new Counter({
    name: `${PREFIX}evaluations_total`,
    help: 'Evaluations finished, by outcome (done, retry, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly deadLetters = new Counter({
    name: `${PREFIX}dead_letters_total`,
    help: 'Deliveries dead-lettered after their last failed evaluation.',
    registers: [this.registry],
  });

  private readonly reconciledDeliveries = new Counter({
    name: `${PREFIX}reconciled_total`,
    help: 'Synthetic deliveries made by the reconcile sweep (RECONCILE_INTERVAL_MS) for issues changed after every delivery received: probably lost deliveries.',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const sources = () => this.sources;
    new Gauge({
      name: `${PREFIX}journal_pending`,
      help: 'Journaled deliveries waiting for evaluation.',
      registers: [this.registry],
      async collect() {
        const read = sources().journalPending;
        if (read) this.set(await safeAsync(read));
      },
    });
    new Gauge({
      name: `${PREFIX}queue_size`,
      help: 'Subjects waiting in the scheduler (queued, or waiting to retry).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const read = sources().queue;
        if (!read) return;
        const q = read();
        this.set({ state: 'queued' }, q.queued);
        this.set({ state: 'retrying' }, q.retrying);
      },
    });
    new Gauge({
      name: `${PREFIX}running`,
      help: 'Evaluations running now.',
      registers: [this.registry],
      collect() {
        const read = sources().queue;
        if (read) this.set(read().running);
      },
    });
    new Gauge({
      name: `${PREFIX}gitea_circuit_open`,
      help: 'Whether calls to Gitea are held back after consecutive failures (1 open or half-open, 0 closed).',
      registers: [this.registry],
      collect() {
        const read = sources().giteaCircuit;
        if (read) this.set(read() === 'closed' ? 0 : 1);
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }

  setSources(sources: MetricSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  delivery(event: string, outcome: DeliveryOutcome): void {
    // Event names come from the request: bound the label's cardinality to Gitea's known families.
    this.deliveries.inc({ event: KNOWN_EVENTS.has(event) ? event : 'other', outcome });
  }

  rejected(status: number): void {
    this.rejections.inc({ status: String(status) });
  }

  batch(deliveries: number): void {
    this.batchSize.observe(deliveries);
  }

  evaluated(outcome: EvaluationOutcome, durationMs: number, deliveries: number): void {
    this.evaluations.inc({ outcome });
    this.evaluationDuration.observe({ outcome }, durationMs / 1000);
    if (outcome === 'failed') this.deadLetters.inc(deliveries);
  }

  reconciled(deliveries: number): void {
    this.reconciledDeliveries.inc(deliveries);
  }

  /** The exposition text for `GET /metrics`. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A scrape must not fail because the store is unreachable or closed: 0 then. */
async function safeAsync(read: () => number | Promise<number>): Promise<number> {
  try {
    return await read();
  } catch {
    return 0;
  }
}

/** Gitea's `X-Gitea-Event` values (modules/webhook/type.go, HookEventType.Event()). */
const KNOWN_EVENTS = new Set([
  'create',
  'delete',
  'fork',
  'push',
  'issues',
  'issue_comment',
  'pull_request',
  'pull_request_approved',
  'pull_request_rejected',
  'pull_request_comment',
  'wiki',
  'repository',
  'release',
  'package',
  'status',
  'workflow_run',
  'workflow_job',
  'unknown',
]);
