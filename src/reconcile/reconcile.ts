import type { GiteaApi } from '../gitea/api.js';
import { GiteaError } from '../gitea/errors.js';
import type { GiteaIssue } from '../gitea/types.js';
import type { JournalApi } from '../journal/api.js';
import type { DeliveryStore } from '../store/api.js';
import type { NewDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import { issueSubject } from '../subject.js';
import { errorText } from '../errors.js';

/** The `action` of a synthetic delivery made by a sweep (event `issues`, like Gitea's issue events). */
export const RECONCILED_ACTION = 'reconciled';

/** Prefix of a synthetic delivery's id: `reconcile:<owner>/<repo>#<n>@<updated_at>`. */
export const RECONCILE_ID_PREFIX = 'reconcile:';

export interface ReconcilerOptions {
  /** The journal: synthetic deliveries are appended to it; its database is read (never written) for what was seen. */
  journal: Pick<JournalApi, 'append'> & Pick<DeliveryStore, 'repoActivity' | 'newestUpdatedAt'>;
  gitea: Pick<GiteaApi, 'listIssues'>;
  /** `RECONCILE_INTERVAL_MS`: time between the end of one sweep and the start of the next. Must be > 0 to `start`. */
  intervalMs: number;
  /**
   * The service's after-journal hook (as for a webhook): hands a pending delivery to the coalescer, so
   * that one-subject-at-a-time and the retry rules hold for synthetic deliveries too.
   */
  onJournaled(delivery: NewDelivery, payload: Record<string, unknown>): void;
  log: Logger;
  /** True once the service is stopping: no sweep starts, a running one stops before its next step. */
  shuttingDown?: () => boolean;
  /** The Gitea client's circuit (`GiteaClient.health()`): a sweep is skipped while it is open. */
  giteaHealth?: () => { state: string };
  /**
   * Asked before each sweep: false skips it (another replica holds the `reconcile` leader lease,
   * docs/architecture.md, "The store"). Default: always sweep.
   */
  mayRun?: () => Promise<boolean>;
  /** Counts synthetic deliveries journaled (metric `gitea_triage_reconciled_total`). */
  onReconciled?(count: number): void;
  /**
   * Issues updated less than this long before a sweep are left to the next one: Gitea delivers from a
   * queue, so their webhook may still be on its way. Default 30 s.
   */
  settleMs?: number;
  /**
   * How far each sweep's window reaches back over the previous one, for clock skew between Gitea and this
   * host (Gitea's `since` is compared with its own clock). Re-listed issues cost nothing: the journal
   * already covers them. Default 60 s.
   */
  overlapMs?: number;
  /** The first sweep of a repo reaches back at most this far (to its newest delivery). Default 7 days. */
  maxLookbackMs?: number;
  /** Repositories listed at once. Default 4. */
  concurrency?: number;
  /** Delay before the first sweep after `start`. Default `min(intervalMs, 60 s)`. */
  firstDelayMs?: number;
  now?: () => number;
}

/** What one sweep did, also logged as `reconcile sweep`. */
export interface SweepSummary {
  /** Repositories swept (those of journaled deliveries). */
  repos: number;
  /** Open issues and pull requests Gitea listed as updated in the sweep's windows. */
  issues: number;
  /** Synthetic deliveries journaled and handed to the pipeline (their delivery was probably lost). */
  enqueued: number;
  /** Updated too recently (within `settleMs`): left for the next sweep. */
  deferred: number;
  /** Repositories whose listing failed (logged at warn; their window is kept for the next sweep). */
  failed: number;
  durationMs: number;
  /** Set when the sweep did not run at all. */
  skipped?: 'stopping' | 'gitea unavailable' | 'another replica sweeps';
}

const DAY_MS = 86_400_000;

/**
 * Repairs lost deliveries (`RECONCILE_INTERVAL_MS`). Gitea never retries a failed delivery, and a delivery
 * refused while this service was down or stopping is gone; so every interval, for each repository that
 * has sent deliveries, the sweep lists the open issues and pull requests updated since the last sweep and
 * compares each one's `updated_at` with the newest journaled delivery of that issue. An issue changed after
 * everything the journal knows about it gets a synthetic delivery (event `issues`, action `reconciled`),
 * journaled and coalesced like a webhook, so the scheduler evaluates it on its current state.
 *
 * The journal is the memory: a synthetic delivery carries the issue's `updated_at`, so the next sweep
 * sees the issue as covered, and its id (`reconcile:<owner>/<repo>#<n>@<updated_at>`) makes a second
 * append of the same state a duplicate. Sweeps never overlap.
 */
export class Reconciler {
  private readonly journal: ReconcilerOptions['journal'];
  private readonly gitea: ReconcilerOptions['gitea'];
  private readonly intervalMs: number;
  private readonly onJournaled: ReconcilerOptions['onJournaled'];
  private readonly log: Logger;
  private readonly shuttingDown: () => boolean;
  private readonly giteaHealth: (() => { state: string }) | undefined;
  private readonly onReconciled: ((count: number) => void) | undefined;
  private readonly mayRun: (() => Promise<boolean>) | undefined;
  private readonly settleMs: number;
  private readonly overlapMs: number;
  private readonly maxLookbackMs: number;
  private readonly concurrency: number;
  private readonly firstDelayMs: number;
  private readonly now: () => number;

  /** Per repository (`owner/name`, lower-cased): where its next sweep's window starts (epoch ms). */
  private readonly cursors = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SweepSummary> | undefined;
  private started = false;
  private stopped = false;

  constructor(options: ReconcilerOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs < 0) {
      throw new RangeError(`reconcile intervalMs must be a number >= 0, got ${options.intervalMs}`);
    }
    this.journal = options.journal;
    this.gitea = options.gitea;
    this.intervalMs = options.intervalMs;
    this.onJournaled = options.onJournaled;
    this.log = options.log;
    this.shuttingDown = options.shuttingDown ?? (() => false);
    this.giteaHealth = options.giteaHealth;
    this.onReconciled = options.onReconciled;
    this.mayRun = options.mayRun;
    this.settleMs = nonNegative(options.settleMs ?? 30_000, 'settleMs');
    this.overlapMs = nonNegative(options.overlapMs ?? 60_000, 'overlapMs');
    this.maxLookbackMs = nonNegative(options.maxLookbackMs ?? 7 * DAY_MS, 'maxLookbackMs');
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
    this.firstDelayMs = nonNegative(options.firstDelayMs ?? Math.min(this.intervalMs, 60_000), 'firstDelayMs');
    this.now = options.now ?? Date.now;
  }

  /** Starts the periodic sweeps (the timer does not keep the process alive). Interval 0: does nothing. */
  start(): void {
    if (this.started || this.stopped || this.intervalMs <= 0) return;
    this.started = true;
    this.schedule(this.firstDelayMs);
    this.log.info('reconcile enabled', { intervalMs: this.intervalMs, settleMs: this.settleMs });
  }

  /**
   * No further sweeps; a running one stops before its next Gitea call or journal write. Does not wait
   * for it: what it already journaled is pending and resumed at the next start.
   */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** True while a sweep runs. */
  get sweeping(): boolean {
    return this.running !== undefined;
  }

  /**
   * Runs one sweep now, or joins the one running (sweeps never overlap). Resolves when its synthetic
   * deliveries are journaled and handed to the pipeline (not when they are evaluated). Never rejects.
   */
  sweepNow(): Promise<SweepSummary> {
    this.running ??= this.sweep().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sweepNow().finally(() => this.schedule(this.intervalMs));
    }, delayMs);
    this.timer.unref();
  }

  private halted(): boolean {
    return this.stopped || this.shuttingDown();
  }

  private async sweep(): Promise<SweepSummary> {
    const startedAt = this.now();
    const summary: SweepSummary = { repos: 0, issues: 0, enqueued: 0, deferred: 0, failed: 0, durationMs: 0 };
    const finish = (): SweepSummary => {
      summary.durationMs = this.now() - startedAt;
      return summary;
    };
    if (this.halted()) {
      summary.skipped = 'stopping';
      return finish();
    }
    if (this.mayRun && !(await this.mayRun().catch(() => false))) {
      summary.skipped = 'another replica sweeps';
      this.log.debug('reconcile sweep skipped: another replica holds the reconcile leader lease');
      return finish();
    }
    const circuit = this.giteaHealth?.().state;
    if (circuit === 'open') {
      // Every listing would wait for the circuit and fail; the windows are kept, so the next sweep covers this one.
      summary.skipped = 'gitea unavailable';
      this.log.warn('reconcile sweep skipped: gitea unavailable (circuit open)', { circuit });
      return finish();
    }

    let repos: SeenRepo[];
    try {
      repos = await this.seenRepos();
    } catch (error) {
      this.log.warn('reconcile sweep failed: cannot read the journal', { error: errorText(error) });
      summary.failed = 1;
      return finish();
    }
    summary.repos = repos.length;

    // Issues updated after this are left for the next sweep (their delivery may be on its way).
    const settledBefore = startedAt - this.settleMs;
    const work = [...repos];
    const worker = async () => {
      for (let repo = work.shift(); repo !== undefined; repo = work.shift()) {
        if (this.halted()) return;
        await this.sweepRepo(repo, startedAt, settledBefore, summary);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, work.length) }, worker));

    finish();
    if (summary.enqueued > 0) this.onReconciled?.(summary.enqueued);
    const fields = { repos: summary.repos, issues: summary.issues, enqueued: summary.enqueued, deferred: summary.deferred, failed: summary.failed, durationMs: summary.durationMs };
    this.log.info('reconcile sweep', fields);
    return summary;
  }

  private async sweepRepo(repo: SeenRepo, startedAt: number, settledBefore: number, summary: SweepSummary): Promise<void> {
    const key = repo.full.toLowerCase();
    const since = this.cursors.get(key) ?? this.firstSince(repo, startedAt);
    let issues: GiteaIssue[];
    try {
      // Gitea's `since` keeps the items whose updated_unix is at or after it (routers/api/v1/repo/issue.go,
      // ListIssues → IssuesOptions.UpdatedAfterUnix); whole seconds in RFC 3339. Open only: the evaluator
      // does not triage a closed issue, and a reopened one is open again.
      issues = await this.gitea.listIssues(repo.owner, repo.name, { state: 'open', since: rfc3339Seconds(since) });
    } catch (error) {
      if (this.halted()) return;
      summary.failed++;
      // The cursor stays: the next sweep lists this repo's window again.
      this.log.warn('reconcile: cannot list issues', {
        repo: repo.full,
        ...(error instanceof GiteaError && error.status !== undefined ? { status: error.status } : {}),
        error: errorText(error),
      });
      return;
    }

    let complete = true;
    for (const issue of issues) {
      if (this.halted()) return;
      summary.issues++;
      const updated = Date.parse(issue.updated_at);
      if (!Number.isInteger(issue.number) || Number.isNaN(updated)) continue;
      if (updated > settledBefore) {
        summary.deferred++;
        continue;
      }
      const subject = issueSubject(repo.owner, repo.name, issue.number).key;
      const last = await this.newestDelivery(subject);
      // Gitea's times have whole seconds (updated_unix): a delivery of the same second is taken to describe
      // this state. A second change within that same second cannot be told apart from it; treating it as
      // lost would re-evaluate every issue the sweep lists.
      if (last !== undefined && seconds(updated) <= seconds(last)) continue;
      try {
        if (await this.enqueue(repo, issue, subject, updated, last)) summary.enqueued++;
      } catch (error) {
        complete = false;
        if (this.halted()) return;
        summary.failed++;
        this.log.warn('reconcile: cannot journal a synthetic delivery', { repo: repo.full, number: issue.number, error: errorText(error) });
        break; // the journal is failing: the next sweep retries the whole window
      }
    }
    // The next window starts where this one was settled, reaching back by the overlap (clock skew).
    if (complete && !this.halted()) this.cursors.set(key, settledBefore - this.overlapMs);
  }

  /** The first sweep of a repo: back one interval, or to its newest delivery if older (a downtime), bounded. */
  private firstSince(repo: SeenRepo, startedAt: number): number {
    let since = startedAt - this.intervalMs - this.settleMs;
    if (repo.newest !== undefined && repo.newest < since) since = repo.newest;
    return Math.max(since - this.overlapMs, startedAt - this.maxLookbackMs);
  }

  /** Journals one synthetic delivery and hands it on; false when the journal already had it. */
  private async enqueue(repo: SeenRepo, issue: GiteaIssue, subject: string, updated: number, last: number | undefined): Promise<boolean> {
    const updatedAt = new Date(updated).toISOString();
    const id = `${RECONCILE_ID_PREFIX}${subject}@${updatedAt}`;
    const lastKnown = last === undefined ? null : new Date(last).toISOString();
    // The shape of Gitea's `issues` event (action, number, issue, repository), so the evaluator, the replay
    // and export tools and `explain` read it like any delivery. No `sender`: nobody sent it; the issue
    // object is Gitea's own (`GET …/issues`), pull requests included (their `pull_request` field is set).
    const payload: Record<string, unknown> = {
      action: RECONCILED_ACTION,
      number: issue.number,
      issue,
      repository: { owner: { login: repo.owner }, name: repo.name, full_name: repo.full },
      reconcile: {
        reason: 'updated after every journaled delivery of this issue: a delivery was probably lost',
        last_delivery_updated_at: lastKnown,
        swept_at: new Date(this.now()).toISOString(),
      },
    };
    const delivery: NewDelivery = {
      id,
      event: 'issues',
      eventType: 'issues',
      action: RECONCILED_ACTION,
      subject,
      repo: repo.full,
      number: issue.number,
      updatedAt,
      sender: null,
      headers: {},
      body: JSON.stringify(payload),
      state: 'pending',
    };
    if (this.halted()) return false;
    const outcome = await this.journal.append(delivery);
    if (outcome === 'duplicate') return false;
    const fields = { delivery: id, event: 'issues', action: RECONCILED_ACTION, repo: repo.full, number: issue.number };
    this.log.info('journaled', { ...fields, state: 'pending', subject, reason: 'reconcile', updatedAt, lastDeliveryUpdatedAt: lastKnown ?? undefined });
    if (this.halted()) return true; // pending in the journal: resumed at the next start
    try {
      this.onJournaled(delivery, payload);
    } catch (error) {
      this.log.error('after-journal hook failed', { ...fields, error: errorText(error) });
    }
    return true;
  }

  /** Repositories of journaled deliveries, with the newest issue time seen for each (pushes excluded: commit times are the committer's). */
  private async seenRepos(): Promise<SeenRepo[]> {
    const rows = await this.journal.repoActivity();
    const out: SeenRepo[] = [];
    for (const row of rows) {
      const m = /^([^/\s]+)\/([^/\s]+)$/.exec(row.repo);
      if (!m) continue;
      const newest = row.newest === null ? NaN : Date.parse(row.newest);
      out.push({ full: row.repo, owner: m[1]!, name: m[2]!, ...(Number.isNaN(newest) ? {} : { newest }) });
    }
    return out;
  }

  /**
   * The newest `updated_at` among every journaled delivery of the subject, whatever its state: an ignored
   * one (the bot's own label echo, a `closed`) describes that state as well as an evaluated one. The
   * receiver stores `updated_at` as `toISOString()`, so the string maximum is the time maximum.
   */
  private async newestDelivery(subject: string): Promise<number | undefined> {
    const newest = await this.journal.newestUpdatedAt(subject);
    if (newest === null) return undefined;
    const t = Date.parse(newest);
    return Number.isNaN(t) ? undefined : t;
  }
}

interface RepoRow {
  repo: string;
  newest: string | null;
}

interface SeenRepo {
  full: string;
  owner: string;
  name: string;
  /** Epoch ms of the newest issue `updated_at` journaled for the repo. */
  newest?: number;
}

function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** `2024-05-01T10:00:00Z`: whole seconds, as Gitea compares them. */
function rfc3339Seconds(ms: number): string {
  return new Date(seconds(ms) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`reconcile ${name} must be a number >= 0, got ${value}`);
  return value;
}
