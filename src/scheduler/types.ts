import type { Logger } from '../log/logger.js';
import type { NewDelivery, StoredDelivery } from '../journal/types.js';
import type { Subject } from '../subject.js';
import type { Reason } from '../triage/types.js';
import type { Fence } from '../store/api.js';

/** A journaled delivery with its payload parsed, handed to an evaluator. */
export interface DeliveryInput extends StoredDelivery {
  payload: Record<string, unknown>;
}

/**
 * One evaluation of one subject: every pending delivery of the subject claimed at once.
 * `deliveries` are ordered oldest to newest by the payload's `updated_at` (then journal order),
 * so `newest` is the last one: the state to evaluate. Comments (each may carry a command)
 * and label changes (who removed what) are all in `deliveries`.
 */
export interface WorkItem {
  subject: Subject;
  /** Id of the micro-batch that released this subject (log field `batch`). */
  batch: string;
  /** 1 for the first try of these deliveries, then 2, 3, … on retries. */
  attempt: number;
  deliveries: DeliveryInput[];
  newest: DeliveryInput;
  /**
   * The subject's lease the evaluation runs under (the scheduler's, or a tool's): the evaluator's
   * ownership writes carry it and are refused once it is lost. Absent: unfenced (dry runs, tests).
   */
  fence?: Fence;
}

/** What an evaluation reports back, for logs and metrics. */
export interface EvaluationResult {
  added: string[];
  removed: string[];
  /** Free-form reason when nothing was done (no config, config error, dry run, …). */
  note?: string;
  /**
   * Why each label was added, removed, kept or skipped: the triage decision's reasons (rule, label,
   * action, evidence), in dry run and in real runs; absent when no decision was made (no config,
   * closed, push, …). For tools (replay, backfill); the scheduler's log line does not carry them.
   */
  reasons?: Reason[];
}

/**
 * The seam between ingest and triage: the scheduler calls `evaluate` once per work item, never
 * twice at once for one subject. Throwing means "try the whole evaluation again later"; an error
 * with `permanent: true` dead-letters the deliveries at once.
 */
export interface Evaluator {
  evaluate(item: WorkItem, log: Logger): Promise<EvaluationResult>;
  /**
   * Called for every delivery right after the journal committed it, accepted or ignored, before
   * coalescing (cheap and synchronous; must not throw, must not call Gitea). Used to drop a repo's
   * cached context on a push to its default branch, and to learn the label set from the bot's own
   * `label_updated` echoes, which are never evaluated.
   */
  observe?(delivery: NewDelivery, payload: Record<string, unknown>): void;
  /**
   * Starts loading what evaluations of a repository need (its triage config, templates, labels), so
   * that a sweep's listing of the repo's issues and that load overlap. Must not throw; a failed load
   * is retried by the first evaluation that needs it.
   */
  prepare?(owner: string, repo: string, log: Logger): void;
}

/** An evaluation error that retrying cannot fix (e.g. a 404 for a deleted issue): dead-letter at once. */
export class PermanentError extends Error {
  readonly permanent = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}
