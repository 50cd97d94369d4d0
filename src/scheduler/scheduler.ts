import { performance } from 'node:perf_hooks';
import PQueue from 'p-queue';
import type { Batch } from '../coalescer/api.js';
import { isGroupedBatch } from '../coalescer/coalescer.js';
import type { JournalApi } from '../journal/api.js';
import type { StoredDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import { type DeliveryStore, type Fence, type Lease, type LeaseStore, StaleLeaseError } from '../store/api.js';
import { parseSubject, repoOf } from '../subject.js';
import type { DeliveryInput, EvaluationResult, Evaluator, WorkItem } from './types.js';
import { errorText } from '../errors.js';

export interface SchedulerHooks {
  /** After each evaluation: `done`, `retry` (scheduled again later) or `failed` (dead-lettered). */
  onEvaluated?(outcome: 'done' | 'retry' | 'failed', durationMs: number, item: WorkItem): void;
  /** For each batch handed to {@link Scheduler.schedule}. */
  onBatch?(batch: Batch): void;
}

/** What the scheduler reads and writes: the journal's rows, and the per-subject leases. */
export interface SchedulerStore {
  deliveries: Pick<DeliveryStore, 'pendingFor' | 'pendingSubjects' | 'pendingCount' | 'markDone' | 'recordFailure' | 'markFailed'>;
  /**
   * Per-subject leases (docs/architecture.md, "The store"): an evaluation runs only while this
   * process holds its subject's lease. Without them (a tool's private copy) nothing is fenced.
   */
  leases?: LeaseStore;
}

export interface SchedulerOptions {
  /** The store (the service's); or `journal`, a synchronous journal (tools' copies, unit tests). */
  store?: SchedulerStore;
  journal?: JournalApi;
  /** This process's name in the leases it takes (default `pid@host`-like, see service/holder). */
  holder?: string;
  /** A subject lease's time to live (ms), renewed every third of it while evaluating. Default 15 s. */
  leaseTtlMs?: number;
  /**
   * True while this process's coalescer holds notices of the subject: its window will schedule it,
   * so the re-check after an evaluation leaves it alone (coalescing stays intact).
   */
  coalescing?: (subject: string) => boolean;
  evaluator: Evaluator;
  /** Evaluations running at once. */
  concurrency: number;
  /** Attempts of one evaluation before its deliveries are dead-lettered. */
  maxAttempts: number;
  log: Logger;
  /** First retry delay cap (ms); doubles per attempt. Default 1000. */
  retryBaseMs?: number;
  /** Largest retry delay (ms). Default 60000. */
  retryMaxMs?: number;
  hooks?: SchedulerHooks;
  /** Limits of the hand-over of parsed payloads (see {@link HAND_OVER_LIMITS}); tests lower them. */
  handOver?: Partial<HandOverLimits>;
}

/** How much of the receiver's parsed payloads the scheduler keeps for the evaluations to come. */
export interface HandOverLimits {
  /** Payloads kept at most. */
  maxEntries: number;
  /** Sum of their bodies' bytes (as received) kept at most: a parsed payload costs a few times that. */
  maxBytes: number;
  /** A body larger than this is not handed over: its evaluation parses it from the journal. */
  maxBodyBytes: number;
}

/**
 * About a second of ordinary deliveries at 1,000/s (a few KB each) fits; a burst of large bodies
 * (up to `MAX_BODY_BYTES`) does not pile up in the heap: the journal holds them, and an evaluation
 * parses what was not handed over (docs/architecture.md, "The invariants": bounded memory).
 */
export const HAND_OVER_LIMITS: HandOverLimits = {
  maxEntries: 1024,
  maxBytes: 16 * 1024 * 1024,
  maxBodyBytes: 1024 * 1024,
};

/** What the hand-over holds now, and how many payloads it turned away or dropped since the start. */
export interface HandOverStats {
  entries: number;
  bytes: number;
  /** Not kept: the body was larger than `maxBodyBytes`. */
  tooLarge: number;
  /** Dropped, oldest first, to stay within `maxEntries` and `maxBytes`. */
  evicted: number;
}

type Phase = 'ready' | 'queued' | 'running' | 'retry';

/** What the scheduler remembers per subject: never deliveries, only where the subject is. */
interface Entry {
  phase: Phase;
  /** The latest batch that released the subject (log field `batch`). */
  batch: string;
  /** Scheduled again while running: run once more afterwards. */
  dirty: boolean;
  /** Consecutive failures of the journal itself (not of the evaluator), for backoff. */
  journalFailures: number;
}

type Next = { retryInMs: number } | undefined;

/** An evaluation's turn: where the subject goes next, and the rows to mark done once it went well. */
interface Outcome {
  next: Next;
  done?: readonly string[];
}

/** How long evaluations may hold the event loop before they let I/O run (ms). */
const SLICE_MS = 5;

/**
 * Runs evaluations concurrently (p-queue, `concurrency`) with one rule: a subject is never
 * evaluated twice at once. It remembers subject names only; the deliveries to evaluate are
 * read from the journal when a subject's turn comes, so memory grows with the number of
 * distinct subjects in flight, never with the backlog.
 */
export class Scheduler {
  private readonly store: SchedulerStore;
  private readonly holder: string;
  private readonly leaseTtlMs: number;
  private readonly coalescing: (subject: string) => boolean;
  private readonly evaluator: Evaluator;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly log: Logger;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly hooks: SchedulerHooks;
  private readonly queue: PQueue;
  /** At most this many tasks sit in p-queue (running + waiting); the rest wait as names in `ready`. */
  private readonly capacity: number;
  private readonly pageSize: number;

  private readonly entries = new Map<string, Entry>();
  /** Subjects waiting for a slot, oldest first. */
  private readonly ready = new Set<string>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private queuedInPQueue = 0;
  private active = 0;
  /** Resume paging: the last `firstSeq` seen; undefined when not resuming. */
  private resumeAfter: number | undefined;
  private resumePage = 0;
  private stopping = false;
  /** A page of pending subjects is being read for resume. */
  private loadingPage = false;
  /** Evaluations whose rows are being marked done and lease released, after their slot was freed. */
  private tails = 0;
  /** Consecutive failures to mark an evaluation's rows done (backoff of the re-run). */
  private lostCommits = 0;
  /** The leases of the evaluations running now. */
  private readonly keepers = new Set<LeaseKeeper>();
  /**
   * Leases whose release failed (the store was unreachable): still this process's until they expire.
   * The subject's next turn renews one instead of waiting for its expiry.
   */
  private readonly unreleased = new Map<string, Lease>();
  private adoptions = 0;
  /** When the evaluations of this turn of the event loop began (see sliceUsed). */
  private sliceStartedAt: number | undefined;
  private idleWaiters: (() => void)[] = [];
  private drainWaiters: (() => void)[] = [];
  /**
   * Payloads the receiver has parsed already, by delivery id: an evaluation soon after uses them
   * instead of parsing the journaled body again. Bounded in entries and in bytes ({@link HandOverLimits};
   * the oldest go first); a delivery without one (resumed, retried, too large, dropped from here) is
   * parsed from the journal.
   */
  private readonly parsed = new Map<string, { payload: Record<string, unknown>; bytes: number }>();
  private readonly handOverLimits: HandOverLimits;
  private readonly handOverCounts = { bytes: 0, tooLarge: 0, evicted: 0 };

  constructor(options: SchedulerOptions) {
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`concurrency must be an integer >= 1, got ${options.concurrency}`);
    }
    if (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1) {
      throw new RangeError(`maxAttempts must be an integer >= 1, got ${options.maxAttempts}`);
    }
    if (options.store) this.store = options.store;
    else if (options.journal) this.store = { deliveries: journalDeliveries(options.journal) };
    else throw new TypeError('Scheduler: a store or a journal is required');
    this.holder = options.holder ?? `scheduler-${process.pid}`;
    this.leaseTtlMs = options.leaseTtlMs ?? 15_000;
    this.coalescing = options.coalescing ?? (() => false);
    this.evaluator = options.evaluator;
    this.concurrency = options.concurrency;
    this.maxAttempts = options.maxAttempts;
    this.log = options.log;
    this.retryBaseMs = options.retryBaseMs ?? 1000;
    this.retryMaxMs = options.retryMaxMs ?? 60_000;
    this.hooks = options.hooks ?? {};
    this.handOverLimits = { ...HAND_OVER_LIMITS, ...options.handOver };
    this.capacity = 2 * this.concurrency;
    this.pageSize = Math.max(16, this.capacity);
    this.queue = new PQueue({ concurrency: this.concurrency });
    // 'next' fires after p-queue has released a finished task's slot.
    this.queue.on('next', () => this.pump());
  }

  /** Evaluations running now. */
  get running(): number {
    return this.active;
  }

  /** Subjects waiting for a slot. */
  get queued(): number {
    return this.ready.size + this.queuedInPQueue;
  }

  /** Subjects waiting on a retry timer. */
  get retrying(): number {
    return this.retryTimers.size;
  }

  /**
   * Hands over the receiver's parse of a journaled, pending delivery (see `parsed`); `bodyBytes` is
   * the size of its body as received. Within {@link HandOverLimits}: a large body is not kept, and
   * the oldest payloads go first when the entries or their bytes would exceed the caps.
   */
  rememberPayload(id: string, payload: Record<string, unknown>, bodyBytes: number): void {
    if (this.stopping) return;
    const limits = this.handOverLimits;
    if (bodyBytes > limits.maxBodyBytes || bodyBytes > limits.maxBytes) {
      this.handOverCounts.tooLarge++;
      return;
    }
    this.forgetPayload(id);
    this.parsed.set(id, { payload, bytes: bodyBytes });
    this.handOverCounts.bytes += bodyBytes;
    while (this.parsed.size > limits.maxEntries || this.handOverCounts.bytes > limits.maxBytes) {
      this.forgetPayload(this.parsed.keys().next().value!);
      this.handOverCounts.evicted++;
    }
  }

  /** The hand-over of parsed payloads now (for tests and diagnostics). */
  get handOverStats(): HandOverStats {
    return { entries: this.parsed.size, ...this.handOverCounts };
  }

  /** Takes a handed-over payload out (undefined when there is none). */
  private takePayload(id: string): Record<string, unknown> | undefined {
    const entry = this.parsed.get(id);
    if (entry) this.forgetPayload(id);
    return entry?.payload;
  }

  private forgetPayload(id: string): void {
    const entry = this.parsed.get(id);
    if (!entry) return;
    this.parsed.delete(id);
    this.handOverCounts.bytes -= entry.bytes;
  }

  /** Queues the subjects of a flushed micro-batch. */
  schedule(batch: Batch): void {
    if (this.stopping) {
      this.log.debug('batch not scheduled: stopping (its deliveries stay pending)', { batch: batch.id });
      return;
    }
    this.callHook(() => this.hooks.onBatch?.(batch));
    if (isGroupedBatch(batch)) {
      for (const group of batch.groups) {
        for (const id of group.deliveryIds) this.log.info('batched', { delivery: id, batch: batch.id, subject: group.subject });
      }
    } else {
      const subject = batch.subjects.length === 1 ? batch.subjects[0] : undefined;
      for (const id of batch.deliveryIds) this.log.info('batched', { delivery: id, batch: batch.id, subject });
    }
    for (const subject of batch.subjects) this.enqueue(subject, batch.id);
    this.pump();
  }

  /**
   * Feeds the subjects left pending by an earlier run (stop, crash) page by page, as slots free
   * up; the backlog stays in the journal.
   */
  resume(): void {
    if (this.stopping || this.resumeAfter !== undefined) return;
    this.resumeAfter = 0;
    this.resumePage = 0;
    this.store.deliveries.pendingCount().then(
      (pending) => {
        if (pending) this.log.info('resuming pending deliveries', { pending });
      },
      () => undefined,
    );
    this.pump();
  }

  /**
   * Schedules subjects found pending with no live lease (their process died, or the row came in
   * while another process held the lease and released it): the orphan sweep's adoption.
   * Subjects this scheduler already has are left as they are.
   */
  adopt(subjects: readonly string[]): number {
    if (this.stopping) return 0;
    const batch = `adopt-${++this.adoptions}`;
    let added = 0;
    for (const subject of subjects) {
      if (this.entries.has(subject)) continue;
      this.entries.set(subject, { phase: 'ready', batch, dirty: false, journalFailures: 0 });
      this.ready.add(subject);
      added++;
    }
    if (added > 0) this.log.info('adopting pending subjects', { batch, subjects: added });
    this.pump();
    return added;
  }

  /**
   * Resolves when nothing is ready, queued, running, or waiting for a retry timer, and the journal
   * has committed what the evaluations recorded (their `done` is group-committed, see JournalApi).
   */
  async onIdle(): Promise<void> {
    for (;;) {
      if (!this.isIdle()) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (this.isIdle()) return;
    }
  }

  /**
   * Starts nothing new (waiting subjects stay pending in the journal), clears retry timers and
   * waits up to `timeoutMs` for running evaluations. True if all of them finished.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.resumeAfter = undefined;
    this.queue.clear();
    this.queuedInPQueue = 0;
    this.ready.clear();
    // What was queued stays pending in the journal; its handed-over payloads are no longer needed.
    this.parsed.clear();
    this.handOverCounts.bytes = 0;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    for (const [subject, entry] of this.entries) if (entry.phase !== 'running') this.entries.delete(subject);
    if (this.active > 0 || this.tails > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          timer.unref();
        }),
      ]);
      clearTimeout(timer);
    }
    // Evaluations still running give their subjects up: another process may take them now, and
    // whatever they would still write carries a token that is no longer current (refused).
    await Promise.all([...this.keepers].map((k) => k.release()));
    await Promise.all([...this.unreleased.values()].map((l) => this.store.leases?.release(l).catch(() => undefined)));
    this.unreleased.clear();
    // What the finished evaluations recorded was committed before they finished (the store's writes resolve once committed).
    this.checkIdle();
    return this.active === 0;
  }

  private enqueue(subject: string, batch: string): void {
    const entry = this.entries.get(subject);
    if (!entry) {
      this.entries.set(subject, { phase: 'ready', batch, dirty: false, journalFailures: 0 });
      this.ready.add(subject);
      return;
    }
    entry.batch = batch;
    // Ready or queued: its turn reads the journal, new deliveries included. Waiting on a retry:
    // the retry takes them (same subject, same backoff). Running: one more turn afterwards.
    if (entry.phase === 'running') entry.dirty = true;
  }

  /** Moves ready subjects into p-queue while it holds fewer than `capacity` tasks. */
  private pump(): void {
    if (!this.stopping) {
      while (this.queue.size + this.queue.pending < this.capacity) {
        // Top the ready set up from the backlog so that live traffic cannot starve it.
        if (this.resumeAfter !== undefined && this.ready.size < this.pageSize) this.loadResumePage();
        const subject = first(this.ready);
        // Nothing ready: a page being read calls pump again when it is in.
        if (subject === undefined) break;
        this.ready.delete(subject);
        const entry = this.entries.get(subject)!;
        entry.phase = 'queued';
        this.queuedInPQueue++;
        this.queue.add(() => this.run(subject, entry)).catch((error: unknown) => {
          this.log.error('scheduler task failed', { subject, error: errorText(error) });
        });
      }
    }
    this.checkIdle();
  }

  /** Reads the next page of pending subjects in the background; pumps when it is in. */
  private loadResumePage(): void {
    if (this.loadingPage || this.resumeAfter === undefined) return;
    this.loadingPage = true;
    this.store.deliveries.pendingSubjects(this.pageSize, this.resumeAfter).then(
      (page) => {
        this.loadingPage = false;
        if (this.resumeAfter === undefined) return; // stopped meanwhile
        this.takeResumePage(page);
        this.pump();
      },
      (error: unknown) => {
        this.loadingPage = false;
        this.log.error('resume failed: cannot read pending subjects', { error: errorText(error) });
        this.resumeAfter = undefined;
        this.checkIdle();
      },
    );
  }

  private takeResumePage(page: { subject: string; firstSeq: number }[]): void {
    const batch = `resume-${++this.resumePage}`;
    for (const { subject, firstSeq } of page) {
      this.resumeAfter = firstSeq;
      if (this.entries.has(subject)) continue;
      this.entries.set(subject, { phase: 'ready', batch, dirty: false, journalFailures: 0 });
      this.ready.add(subject);
    }
    if (page.length > 0) this.log.debug('resumed subjects', { batch, subjects: page.length });
    if (page.length < this.pageSize) {
      this.resumeAfter = undefined;
      this.log.debug('resume complete', { pages: this.resumePage });
    }
  }

  private async run(subject: string, entry: Entry): Promise<void> {
    this.queuedInPQueue--;
    entry.phase = 'running';
    this.active++;
    let next: Next;
    try {
      if (this.sliceUsed()) await new Promise<void>((resolve) => setImmediate(resolve));
      // Deliveries added until now are read by this evaluation: no extra turn for them.
      entry.dirty = false;
      // Stopped meanwhile: not started, its rows stay pending (settle forgets the subject).
      if (!this.stopping) next = await this.evaluateUnderLease(subject, entry);
      entry.journalFailures = 0;
    } catch (error) {
      // The journal could not be read or written (disk full, closed): the rows stay pending.
      entry.journalFailures++;
      const retryInMs = this.backoff(entry.journalFailures);
      this.log.error('evaluation bookkeeping failed: journal unavailable', {
        subject,
        batch: entry.batch,
        error: errorText(error),
        retryInMs,
      });
      next = { retryInMs };
    } finally {
      this.active--;
    }
    this.settle(subject, entry, next);
  }

  /**
   * True once evaluations have held the event loop for {@link SLICE_MS} in this turn of the loop.
   * Evaluations that finish at once (a cached context, nothing to change) chain through microtasks:
   * without a break, one flushed batch of 250 subjects keeps webhooks waiting for their 202 for
   * tens of milliseconds. A break costs one more journal group commit, so it is taken per slice,
   * not per evaluation.
   */
  private sliceUsed(): boolean {
    const now = performance.now();
    if (this.sliceStartedAt === undefined) {
      this.sliceStartedAt = now;
      // The loop came back to its check phase: the next evaluation starts a new slice.
      setImmediate(() => {
        this.sliceStartedAt = undefined;
      });
      return false;
    }
    return now - this.sliceStartedAt >= SLICE_MS;
  }

  /** Decides where a subject goes after its turn. */
  private settle(subject: string, entry: Entry, next: Next): void {
    if (this.stopping) {
      // Whatever is left is pending in the journal, for the next start.
      this.entries.delete(subject);
    } else if (next) {
      entry.phase = 'retry';
      entry.dirty = false;
      const timer = setTimeout(() => {
        this.retryTimers.delete(subject);
        entry.phase = 'ready';
        this.ready.add(subject);
        this.pump();
      }, next.retryInMs);
      timer.unref();
      this.retryTimers.set(subject, timer);
    } else if (entry.dirty) {
      entry.phase = 'ready';
      entry.dirty = false;
      this.ready.add(subject);
    } else {
      this.entries.delete(subject);
    }
    if (this.active === 0 && this.tails === 0) this.resolveDrain();
  }

  /**
   * The subject's lease, then its evaluation (docs/architecture.md, "The store"). Not granted: another
   * process holds it and evaluates every pending row of the subject, these included (its check after
   * release, or the orphan sweep, takes any it missed). After the release, rows that came in
   * meanwhile (here or at another process) give the subject another turn.
   */
  private async evaluateUnderLease(subject: string, entry: Entry): Promise<Next> {
    const leases = this.store.leases;
    if (!leases) {
      const outcome = await this.evaluate(subject, entry.batch, undefined);
      if (outcome.done) await this.store.deliveries.markDone(outcome.done);
      return outcome.next;
    }
    const lease = await this.takeLease(leases, subject);
    if (!lease) {
      this.log.debug('subject leased by another process: left to it', { subject, batch: entry.batch });
      return undefined;
    }
    const keeper = new LeaseKeeper(leases, lease, this.leaseTtlMs, this.log);
    this.keepers.add(keeper);
    let outcome: Outcome;
    try {
      outcome = await this.evaluate(subject, entry.batch, { subject, token: lease.token });
    } catch (error) {
      this.finish(subject, entry.batch, keeper, undefined, false);
      throw error;
    }
    this.finish(subject, entry.batch, keeper, outcome.done, outcome.next === undefined);
    return outcome.next;
  }

  /**
   * The end of an evaluation under a lease, off its slot (the next evaluation need not wait for
   * these commits; SQLite: they join the journal's group commit): its rows marked done, committed
   * before the lease is released (a crash in between only means this idempotent evaluation runs
   * again), then the subject checked once more, so rows that came in meanwhile, here or at another
   * process, get their turn.
   */
  private finish(subject: string, batch: string, keeper: LeaseKeeper, done: readonly string[] | undefined, recheck: boolean): void {
    this.tails++;
    void this.finishTail(subject, batch, keeper, done, recheck)
      .catch((error: unknown) => this.log.error('scheduler task failed', { subject, error: errorText(error) }))
      .finally(() => {
        this.tails--;
        this.afterTail();
      });
  }

  private async finishTail(subject: string, batch: string, keeper: LeaseKeeper, done: readonly string[] | undefined, recheck: boolean): Promise<void> {
    let lost: unknown;
    if (done) {
      try {
        await this.store.deliveries.markDone(done);
        this.lostCommits = 0;
      } catch (error) {
        lost = error ?? new Error('commit failed');
      }
    }
    this.keepers.delete(keeper);
    const kept = await keeper.release();
    if (kept) this.unreleased.set(subject, kept);
    if (this.stopping) return; // pending in the store: another process or the next start takes it
    if (lost !== undefined) {
      this.lostDone(subject, batch, lost);
      return;
    }
    if (!recheck || this.coalescing(subject) || this.entries.has(subject)) return;
    const left = await this.store.deliveries.pendingFor(subject).catch(() => []);
    if (left.length > 0 && !this.stopping) {
      this.enqueue(subject, batch);
      this.pump();
    }
  }

  /** The rows of an evaluation could not be marked done (disk full, store down): evaluate again later. */
  private lostDone(subject: string, batch: string, error: unknown): void {
    this.lostCommits++;
    const retryInMs = this.backoff(this.lostCommits);
    this.log.error('evaluation bookkeeping failed: journal unavailable', { subject, batch, error: errorText(error), retryInMs });
    if (this.entries.has(subject)) {
      // Coming back anyway (ready, queued, retry: it reads the store); running: once more after.
      this.enqueue(subject, batch);
      return;
    }
    const fresh: Entry = { phase: 'ready', batch, dirty: false, journalFailures: 0 };
    this.entries.set(subject, fresh);
    this.settle(subject, fresh, { retryInMs });
  }

  private afterTail(): void {
    if (this.active === 0 && this.tails === 0) this.resolveDrain();
    this.checkIdle();
  }

  private resolveDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** A grant of the subject's lease: this process's own unreleased one renewed, else a new one. */
  private async takeLease(leases: LeaseStore, subject: string): Promise<Lease | undefined> {
    const own = this.unreleased.get(subject);
    if (own) {
      this.unreleased.delete(subject);
      const renewed = await leases.renew(own, this.leaseTtlMs);
      if (renewed) return renewed;
    }
    return leases.acquire(subject, this.holder, this.leaseTtlMs);
  }

  /** One evaluation of a subject: its pending deliveries, newest state last. Returns a retry, if any. */
  private async evaluate(subject: string, batch: string, fence: Fence | undefined): Promise<Outcome> {
    const item = await this.workItem(subject, batch);
    if (!item) return { next: undefined };
    if (fence) item.fence = fence;
    const log = this.log.child({
      delivery: item.newest.id,
      batch,
      subject,
      repo: repoOf(item.subject),
      ...(item.subject.kind === 'issue' ? { number: item.subject.number } : {}),
      attempt: item.attempt,
    });

    const started = performance.now();
    let result: EvaluationResult;
    try {
      result = await this.evaluator.evaluate(item, log);
    } catch (error) {
      if (error instanceof StaleLeaseError) {
        // This process stalled past the lease's expiry and another took it: it evaluates these rows.
        log.warn('lease lost during the evaluation: nothing written, left to the new holder', { error: error.message });
        return { next: undefined };
      }
      return { next: await this.evaluationFailed(item, log, error, elapsedMs(started)) };
    }
    const durationMs = elapsedMs(started);
    const ids = item.deliveries.map((d) => d.id);
    log.info('evaluated', {
      deliveries: ids,
      durationMs,
      added: result?.added ?? [],
      removed: result?.removed ?? [],
      ...(result?.note !== undefined ? { note: result.note } : {}),
    });
    this.callHook(() => this.hooks.onEvaluated?.('done', durationMs, item));
    return { next: undefined, done: ids };
  }

  /**
   * The subject's pending deliveries as a work item, oldest first, or undefined when there is nothing
   * to evaluate. A delivery that cannot be evaluated (not a subject key, a broken payload) is
   * dead-lettered here, without holding back the others.
   */
  private async workItem(subject: string, batch: string): Promise<WorkItem | undefined> {
    const rows = await this.store.deliveries.pendingFor(subject);
    if (rows.length === 0) {
      this.log.debug('nothing pending', { subject, batch });
      return undefined;
    }
    const parsed = parseSubject(subject);
    if (!parsed) {
      const error = `not a subject key: ${subject}`;
      await this.store.deliveries.markFailed(
        rows.map((r) => r.id),
        error,
      );
      for (const row of rows) this.log.error('failed', { delivery: row.id, batch, subject, error });
      return undefined;
    }

    const deliveries: DeliveryInput[] = [];
    for (const row of rows) {
      const payload = this.takePayload(row.id) ?? parsePayload(row);
      if (typeof payload === 'string') {
        // One broken row must not hold back the subject's other deliveries.
        await this.store.deliveries.markFailed([row.id], payload);
        this.log.error('failed', { delivery: row.id, batch, subject, error: payload });
        continue;
      }
      deliveries.push({ ...row, payload });
    }
    if (deliveries.length === 0) return undefined;
    // Gitea delivers from several workers, out of order: "newest" is by the payload's updated_at.
    deliveries.sort(byUpdatedAtThenSeq);

    const newest = deliveries[deliveries.length - 1]!;
    let attempt = 1;
    for (const d of deliveries) attempt = Math.max(attempt, d.attempts + 1);
    return { subject: parsed, batch, attempt, deliveries, newest };
  }

  /** A failed evaluation: dead-lettered when permanent or out of attempts, else retried later. */
  private async evaluationFailed(item: WorkItem, log: Logger, failure: unknown, durationMs: number): Promise<Next> {
    const ids = item.deliveries.map((d) => d.id);
    const { attempt } = item;
    const error = errorText(failure);
    const permanent = (failure as { permanent?: unknown } | null)?.permanent === true;
    if (permanent || attempt >= this.maxAttempts) {
      // Durable before it is reported: a dead letter in the logs and metrics is one on disk.
      await this.store.deliveries.markFailed(ids, error);
      log.error('failed', { deliveries: ids, durationMs, error, permanent, attempts: attempt });
      if (failure instanceof Error && failure.stack) log.debug('failure stack', { stack: failure.stack });
      this.callHook(() => this.hooks.onEvaluated?.('failed', durationMs, item));
      return undefined;
    }
    // Durable before the retry is scheduled, so the attempt counts even across a crash.
    await this.store.deliveries.recordFailure(ids, error);
    const retryInMs = this.backoff(attempt);
    log.warn('retry scheduled', { deliveries: ids, durationMs, error, retryInMs, maxAttempts: this.maxAttempts });
    this.callHook(() => this.hooks.onEvaluated?.('retry', durationMs, item));
    return { retryInMs };
  }

  /** Capped exponential backoff with full jitter: uniform in [0, min(max, base·2^(attempt-1))]. */
  private backoff(attempt: number): number {
    const cap = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(Math.random() * cap);
  }

  private callHook(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log.warn('scheduler hook failed', { error: errorText(error) });
    }
  }

  private isIdle(): boolean {
    return (
      this.ready.size === 0 &&
      this.queue.size === 0 &&
      this.queue.pending === 0 &&
      this.active === 0 &&
      this.retryTimers.size === 0 &&
      this.tails === 0 &&
      this.resumeAfter === undefined &&
      !this.loadingPage
    );
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/** The parsed payload, or why it cannot be evaluated. */
function parsePayload(row: StoredDelivery): Record<string, unknown> | string {
  let payload: unknown;
  try {
    payload = JSON.parse(row.body);
  } catch (error) {
    return `payload is not valid JSON: ${errorText(error)}`;
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return 'payload is not a JSON object';
  return payload as Record<string, unknown>;
}

/** Oldest first: by the payload's updated_at (missing or unparsable first), then journal order. */
function byUpdatedAtThenSeq(a: DeliveryInput, b: DeliveryInput): number {
  const ta = timeOf(a.updatedAt);
  const tb = timeOf(b.updatedAt);
  if (ta !== tb) return ta - tb;
  return a.seq - b.seq;
}

/** Epoch ms of an ISO time (Gitea sends offsets like `+02:00`, so strings do not compare); -Infinity if none. */
function timeOf(iso: string | null): number {
  if (iso === null) return -Infinity;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? -Infinity : t;
}

/** Milliseconds since `started` (a `performance.now()`), to a tenth. */
function elapsedMs(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function first(set: Set<string>): string | undefined {
  for (const value of set) return value;
  return undefined;
}

/**
 * Keeps an evaluation's lease: renews it every third of its time to live until released. A renewal
 * that finds it lost stops renewing; the evaluation's fenced writes are refused from then on.
 */
class LeaseKeeper {
  private lease: Lease | undefined;
  private readonly timer: NodeJS.Timeout;
  private renewing: Promise<void> = Promise.resolve();

  constructor(
    private readonly leases: LeaseStore,
    lease: Lease,
    ttlMs: number,
    private readonly log: Logger,
  ) {
    this.lease = lease;
    this.timer = setInterval(() => {
      this.renewing = this.renew(ttlMs);
    }, Math.max(1, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(ttlMs: number): Promise<void> {
    const held = this.lease;
    if (!held) return;
    try {
      const renewed = await this.leases.renew(held, ttlMs);
      if (this.lease !== held) return; // released meanwhile
      this.lease = renewed;
      if (!renewed) {
        clearInterval(this.timer);
        this.log.warn('lease lost: another process took the subject', { subject: held.name, token: held.token });
      }
    } catch (error) {
      // The store is unreachable: try again at the next period; the lease may expire meanwhile.
      this.log.warn('lease renewal failed', { subject: held.name, error: errorText(error) });
    }
  }

  /**
   * Stops renewing and gives the lease up. Resolves with the lease when the release failed (the
   * store unreachable): it stays this process's until it expires.
   */
  async release(): Promise<Lease | undefined> {
    clearInterval(this.timer);
    await this.renewing;
    const held = this.lease;
    this.lease = undefined;
    if (!held) return undefined;
    try {
      await this.leases.release(held);
      return undefined;
    } catch (error) {
      this.log.warn('lease release failed: it expires by itself', { subject: held.name, error: errorText(error) });
      return held;
    }
  }
}

/** A synchronous journal (a tool's copy, unit tests) as the scheduler's async store: each write resolves once committed. */
export function journalDeliveries(journal: JournalApi): SchedulerStore['deliveries'] {
  const settled = () => (journal.settled ? journal.settled() : Promise.resolve());
  return {
    pendingFor: async (subject) => journal.pendingFor(subject),
    pendingSubjects: async (limit, afterSeq) => journal.pendingSubjects(limit, afterSeq),
    pendingCount: async () => journal.pendingCount(),
    markDone: async (ids) => {
      journal.markDone(ids);
      await settled();
    },
    recordFailure: async (ids, error) => {
      journal.recordFailure(ids, error);
      await settled();
    },
    markFailed: async (ids, error) => {
      journal.markFailed(ids, error);
      await settled();
    },
  };
}
