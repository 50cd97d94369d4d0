import type { DeliveryState, NewDelivery, StoredDelivery } from './types.js';

/**
 * The durable intake log (implemented in `journal.ts` on better-sqlite3, WAL).
 * An id `append` resolved `accepted` for is on disk: it survives `kill -9`.
 */
export interface JournalApi {
  /**
   * Records a verified delivery. Appends arriving together are grouped into one transaction
   * (one commit, one fsync); each promise resolves only after its commit.
   * Resolves `duplicate` when the id is already journaled (nothing changes then).
   * Rejects if the database cannot be written (disk full, read-only): the receiver answers 503.
   */
  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'>;
  /** The pending rows of one subject, in journal order; what the scheduler evaluates next. */
  pendingFor(subject: string): StoredDelivery[];
  /** Distinct subjects with pending rows, oldest first, after `afterSeq` (paging for resume at start). */
  pendingSubjects(limit: number, afterSeq?: number): { subject: string; firstSeq: number }[];
  /** Number of pending rows (metric `journal_pending`). */
  pendingCount(): number;
  /**
   * State changes: `get`/`pendingFor`/`pendingCount` of this process see them on return. The
   * SQLite journal group-commits them with the appends of the same tick; `settled` tells when they
   * are durable. (A crash before that loses them, never a later group without them: the rows keep
   * their earlier state, so an evaluation whose `done` was lost runs again after the restart.)
   */
  markDone(ids: readonly string[]): void;
  /** Counts a failed attempt on each id and stores the error (still pending). */
  recordFailure(ids: readonly string[], error: string): void;
  /** Dead-letters: state failed with the reason. */
  markFailed(ids: readonly string[], error: string): void;
  /** Puts failed rows back to pending (the replay tool's failed-only mode); durable on return. */
  requeue(ids: readonly string[]): void;
  /**
   * Resolves once every write made so far is durable (at once when nothing waits). Rejects when
   * they could not be committed: those state changes are lost, the rows keep their earlier state.
   * Optional: a journal without it writes each change durably on return.
   */
  settled?(): Promise<void>;
  get(id: string): StoredDelivery | undefined;
  /** Rows for tools (replay, export, explain), newest last. */
  query(filter: JournalFilter): StoredDelivery[];
  /** Deletes done and ignored rows received before `before` (epoch ms); returns how many. */
  prune(before: number): number;
  /** True while the database can be written (for `/readyz`). */
  healthy(): boolean;
  /** Commits grouped appends and state changes in flight, then closes the database. */
  close(): Promise<void>;
}

export interface JournalFilter {
  id?: string;
  repo?: string;
  subject?: string;
  state?: DeliveryState;
  /** epoch ms, inclusive */
  since?: number;
  /** epoch ms, exclusive */
  until?: number;
  limit?: number;
}
