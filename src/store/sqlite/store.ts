import type { ChangeMeta, LabelChange } from '../../applier/ownership.js';
import { OwnershipStore as SqliteOwnershipRecords } from './ownership-records.js';
import { Journal } from '../../journal/journal.js';
import type { JournalFilter } from '../../journal/api.js';
import type { NewDelivery, StoredDelivery } from '../../journal/types.js';
import type { Logger } from '../../log/logger.js';
import type { Ownership } from '../../triage/types.js';
import type { DeliveryStore, Fence, OwnershipStore, Store } from '../api.js';
import { SqliteGenerations, SqliteLeases } from './leases.js';
import { migrateSqliteStore } from './schema.js';
import { ownershipRecordsOf, writerOf } from './writer.js';

export interface SqliteStoreOptions {
  dataDir: string;
  sync: 'full' | 'normal';
  log: Logger;
  /** The leases' clock (tests). */
  now?: () => number;
}

/**
 * The embedded store: today's journal (group commit, off-loop fsync of the WAL) and ownership
 * records in `DATA_DIR/journal.db`, plus the leases and context generations in the same file, so
 * every write of a tick shares one commit. docs/architecture.md, "The store".
 */
export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly deliveries: DeliveryStore;
  readonly ownership: OwnershipStore;
  readonly leases: SqliteLeases;
  readonly generations: SqliteGenerations;

  private constructor(readonly journal: Journal, now: () => number) {
    this.location = journal.path;
    this.leases = new SqliteLeases(journal, now);
    this.generations = new SqliteGenerations(journal);
    this.deliveries = new SqliteDeliveries(journal, now);
    this.ownership = new SqliteOwnership(journal, this.leases);
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    const journal = Journal.open({ dataDir: options.dataDir, sync: options.sync, log: options.log });
    try {
      migrateSqliteStore(journal.db);
    } catch (error) {
      void journal.close();
      throw error;
    }
    return new SqliteStore(journal, options.now ?? Date.now);
  }

  async healthy(): Promise<boolean> {
    return this.journal.healthy();
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}

/** The journal behind the async interface; state changes resolve once their group committed. */
class SqliteDeliveries implements DeliveryStore {
  private readonly orphansStmt;
  private readonly activityStmt;
  private readonly newestStmt;

  constructor(
    private readonly journal: Journal,
    private readonly now: () => number,
  ) {
    this.orphansStmt = journal.db.prepare<[number, number, number], { subject: string; firstSeq: number }>(
      `SELECT d.subject AS subject, MIN(d.seq) AS firstSeq FROM deliveries d
        WHERE d.state = 'pending' AND d.subject IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM store_leases l
                           WHERE l.name = d.subject AND l.holder IS NOT NULL AND l.expires_at > ?)
        GROUP BY d.subject HAVING MAX(d.received_at) < ? ORDER BY firstSeq LIMIT ?`,
    );
    this.activityStmt = journal.db.prepare<[], { repo: string; newest: string | null }>(
      `SELECT repo, max(CASE WHEN number IS NOT NULL THEN updated_at END) AS newest
         FROM deliveries WHERE repo IS NOT NULL GROUP BY repo ORDER BY repo`,
    );
    // Uses the journal's index on subject.
    this.newestStmt = journal.db.prepare<[string], { newest: string | null }>('SELECT max(updated_at) AS newest FROM deliveries WHERE subject = ?');
  }

  async repoActivity(): Promise<{ repo: string; newest: string | null }[]> {
    return this.activityStmt.all();
  }

  /** The receiver stores `updated_at` as `toISOString()`: the string maximum is the time maximum. */
  async newestUpdatedAt(subject: string): Promise<string | null> {
    return this.newestStmt.get(subject)?.newest ?? null;
  }

  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    return this.journal.append(delivery);
  }

  async get(id: string): Promise<StoredDelivery | undefined> {
    return this.journal.get(id);
  }

  async pendingFor(subject: string): Promise<StoredDelivery[]> {
    return this.journal.pendingFor(subject);
  }

  async pendingSubjects(limit: number, afterSeq?: number): Promise<{ subject: string; firstSeq: number }[]> {
    return this.journal.pendingSubjects(limit, afterSeq);
  }

  async orphanedSubjects(limit: number, receivedBefore?: number): Promise<{ subject: string; firstSeq: number }[]> {
    return this.orphansStmt.all(this.now(), receivedBefore ?? Number.MAX_SAFE_INTEGER, limit);
  }

  async pendingCount(): Promise<number> {
    return this.journal.pendingCount();
  }

  async markDone(ids: readonly string[]): Promise<void> {
    this.journal.markDone(ids);
    await this.journal.settled();
  }

  async recordFailure(ids: readonly string[], error: string): Promise<void> {
    this.journal.recordFailure(ids, error);
    await this.journal.settled();
  }

  async markFailed(ids: readonly string[], error: string): Promise<void> {
    this.journal.markFailed(ids, error);
    await this.journal.settled();
  }

  async requeue(ids: readonly string[]): Promise<void> {
    this.journal.requeue(ids);
  }

  async query(filter: JournalFilter): Promise<StoredDelivery[]> {
    return this.journal.query(filter);
  }

  async prune(before: number): Promise<number> {
    return this.journal.prune(before);
  }
}

/**
 * The ownership records (applier/ownership.ts) behind the async interface. A fenced write checks
 * the subject's lease token inside the journal's group transaction, which holds SQLite's write
 * lock, and writes in the same transaction: no other process can grant the lease in between.
 */
class SqliteOwnership implements OwnershipStore {
  private readonly records: SqliteOwnershipRecords;

  constructor(
    private readonly journal: Journal,
    private readonly leases: SqliteLeases,
  ) {
    this.records = ownershipRecordsOf(journal);
  }

  async ownership(repo: string, number: number): Promise<Ownership> {
    return this.records.ownership(repo, number);
  }

  async owned(repo: string, number: number) {
    return this.records.owned(repo, number);
  }

  async events(repo: string, number: number) {
    return this.records.events(repo, number);
  }

  record(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.record(repo, number, changes, meta));
  }

  intend(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.intend(repo, number, changes, meta));
  }

  async pending(repo: string, number: number) {
    return this.records.pending(repo, number);
  }

  clearPending(repo: string, number: number, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.clearPending(repo, number));
  }

  recordApplied(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.recordApplied(repo, number, changes, meta));
  }

  async unknownRemovals(repo: string, number: number): Promise<string[]> {
    return this.records.unknownRemovals(repo, number);
  }

  attributeRemovals(repo: string, number: number, labels: readonly string[], user: string, delivery: string | null, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.attributeRemovals(repo, number, labels, user, delivery));
  }

  async known(repo: string, number: number) {
    return this.records.known(repo, number);
  }

  setKnown(repo: string, number: number, labels: readonly string[], updatedAt: string | null, fence?: Fence): Promise<boolean> {
    return this.write(fence, () => this.records.setKnown(repo, number, labels, updatedAt));
  }

  async replied(repo: string, commentId: number, commentUpdatedAt: string): Promise<boolean> {
    return this.records.replied(repo, commentId, commentUpdatedAt);
  }

  markReplied(repo: string, commentId: number, commentUpdatedAt: string, fence?: Fence): Promise<void> {
    return this.write(fence, () => this.records.markReplied(repo, commentId, commentUpdatedAt));
  }

  /**
   * The fence check, then the write in the same tick: the check opens (or joins) the journal's group
   * transaction, which holds SQLite's write lock until the group commits, so no process can grant
   * the lease between the check and the write. Resolves with the write's result once committed.
   */
  private async write<T>(fence: Fence | undefined, fn: () => T): Promise<Awaited<T>> {
    if (fence) writerOf(this.journal).deferred(() => this.leases.checkFence(fence));
    const value = await fn();
    await this.journal.settled();
    return value;
  }
}
