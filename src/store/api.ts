import type { ChangeMeta, KnownLabels, LabelChange, LabelEvent, OwnedLabel } from '../applier/ownership.js';
import type { Config } from '../config/config.js';
import type { JournalFilter } from '../journal/api.js';
import type { NewDelivery, StoredDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import type { Ownership } from '../triage/types.js';

/**
 * Everything the service persists, behind async interfaces with two implementations: SQLite in
 * `DATA_DIR` (the embedded default, one service process plus tools beside it) and PostgreSQL
 * (`DATABASE_URL`, several replicas). One conformance suite (tests/store/conformance.ts) holds both
 * to the same promises. See docs/architecture.md, section "The store".
 */

export type { JournalFilter } from '../journal/api.js';
export type { NewDelivery, StoredDelivery } from '../journal/types.js';

/** The journal: deliveries and their states. */
export interface DeliveryStore {
  /**
   * Records a verified delivery. Resolves only after the transaction holding it committed (the 202
   * waits for it); appends arriving together share one transaction. `duplicate`: the id is journaled
   * already, by this process or any other sharing the store (a unique key, not a read-then-write).
   * Rejects when the store cannot be written: the receiver answers 503.
   */
  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'>;
  get(id: string): Promise<StoredDelivery | undefined>;
  /** The pending rows of one subject, in journal order. */
  pendingFor(subject: string): Promise<StoredDelivery[]>;
  /** Distinct subjects with pending rows, by their oldest pending row, after `afterSeq` (paging). */
  pendingSubjects(limit: number, afterSeq?: number): Promise<{ subject: string; firstSeq: number }[]>;
  /**
   * Like {@link pendingSubjects}, only subjects whose lease nobody holds (none, released or
   * expired): pending work of a process that died, for another one to adopt. With
   * `receivedBefore` (epoch ms), only subjects whose newest pending row came in before it: a row
   * just acknowledged waits in its receiver's coalescer window, and is not an orphan yet.
   */
  orphanedSubjects(limit: number, receivedBefore?: number): Promise<{ subject: string; firstSeq: number }[]>;
  pendingCount(): Promise<number>;
  /** State changes: resolve once committed. */
  markDone(ids: readonly string[]): Promise<void>;
  /** Counts a failed attempt on each id and stores the error (the rows stay pending). */
  recordFailure(ids: readonly string[], error: string): Promise<void>;
  /** Dead-letters: state `failed` with the reason. */
  markFailed(ids: readonly string[], error: string): Promise<void>;
  /** Puts failed rows back to pending (replay --failed). */
  requeue(ids: readonly string[]): Promise<void>;
  /** Rows for the tools (replay, export, explain), oldest first; with `limit`, the newest `limit`. */
  query(filter: JournalFilter): Promise<StoredDelivery[]>;
  /**
   * For the reconcile sweep: each repository with journaled deliveries, and the newest issue
   * `updated_at` among them (null when none carries one), by repo name.
   */
  repoActivity(): Promise<{ repo: string; newest: string | null }[]>;
  /** The newest `updated_at` among every journaled delivery of the subject, whatever its state. */
  newestUpdatedAt(subject: string): Promise<string | null>;
  /** Retention: deletes done and ignored rows received before `before` (epoch ms); failed and pending stay. */
  prune(before: number): Promise<number>;
}

/**
 * A lease's grant. `token` grows by one at every grant of the same name (fencing token): a write
 * carrying a token that is no longer the name's current one is refused.
 */
export interface Lease {
  name: string;
  holder: string;
  token: number;
  /** Epoch ms, on the store's clock (PostgreSQL's, shared by every replica). */
  expiresAt: number;
}

/** What a fenced write carries: the subject's lease it was decided under. */
export interface Fence {
  /** The lease name: the subject key (`owner/repo#n`). */
  subject: string;
  token: number;
}

/** A fenced write whose token is no longer the subject's current one: its holder lost the lease. */
export class StaleLeaseError extends Error {
  constructor(
    readonly subject: string,
    readonly token: number,
    readonly current: number | undefined,
  ) {
    super(`lease on ${subject} lost: token ${token} is stale (current ${current ?? 'none'}); the write was refused`);
    this.name = 'StaleLeaseError';
  }
}

/**
 * Leader leases share the leases' table under this name. No subject key (`owner/repo#n`,
 * `owner/repo@ref`) starts like it: Gitea refuses `:` in user and organisation names
 * (modules/validation/helpers.go, `IsValidUsername`: `^[\da-zA-Z][-.\w]*$`, v1.22.2 to v1.25.4).
 */
export function leaderName(job: string): string {
  return `leader:${job}`;
}

/** A lease's time to live must be a positive number of ms: a zero or negative one would grant nothing. */
export function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`lease ttlMs: a positive integer of milliseconds, got ${ttlMs}`);
}

/** Per-subject leases (one evaluation of a subject at a time across processes) and leader leases. */
export interface LeaseStore {
  /**
   * Grants `name` to `holder` for `ttlMs` when nobody holds it (never granted, released or expired),
   * with the next token; `undefined` while someone holds it, `holder` itself included.
   */
  acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined>;
  /**
   * Extends a grant while its token is still the current one (even past its expiry, as long as
   * nobody took the lease meanwhile); `undefined`: the lease was lost, stop and write nothing.
   */
  renew(lease: Lease, ttlMs: number): Promise<Lease | undefined>;
  /** Gives the lease up (nothing happens when its token is no longer current). */
  release(lease: Lease): Promise<void>;
  /** The live grant of `name`, if any. */
  current(name: string): Promise<Lease | undefined>;
  /**
   * Leader lease for a cluster-wide job (`prune`, `reconcile`, `resume`): granted when free or
   * expired, or renewed when `holder` already holds it; `undefined` while another holder does.
   */
  leader(job: string, holder: string, ttlMs: number): Promise<Lease | undefined>;
}

/**
 * The ownership records (see `applier/ownership.ts` for the meaning of each): labels the bot added
 * and under which rule, labels a person removed, write intents, known label sets, command replies.
 * Writes given a {@link Fence} are conditional on it: they reject with {@link StaleLeaseError}
 * and change nothing when the fence's token is not the subject's current lease token.
 */
export interface OwnershipStore {
  ownership(repo: string, number: number): Promise<Ownership>;
  owned(repo: string, number: number): Promise<OwnedLabel[]>;
  events(repo: string, number: number): Promise<LabelEvent[]>;
  record(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void>;
  /** Write intents, durable when this resolves: only then may the label request be sent. */
  intend(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void>;
  pending(repo: string, number: number): Promise<{ change: LabelChange; meta: ChangeMeta }[]>;
  clearPending(repo: string, number: number, fence?: Fence): Promise<void>;
  /** Records the outcome of intended writes and forgets the intents, in one transaction. */
  recordApplied(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void>;
  /** Labels of the issue whose removal is recorded as `unknown`: nobody's yet. */
  unknownRemovals(repo: string, number: number): Promise<string[]>;
  /**
   * A removal recorded as `unknown` is explained by a person's label delivery that came later: the
   * removal (and its latest event) becomes that person's. Labels not removed as `unknown` are left.
   */
  attributeRemovals(repo: string, number: number, labels: readonly string[], user: string, delivery: string | null, fence?: Fence): Promise<void>;
  known(repo: string, number: number): Promise<KnownLabels | undefined>;
  /** An older set (by `updatedAt`) never replaces a newer one; resolves whether it was stored. */
  setKnown(repo: string, number: number, labels: readonly string[], updatedAt: string | null, fence?: Fence): Promise<boolean>;
  replied(repo: string, commentId: number, commentUpdatedAt: string): Promise<boolean>;
  markReplied(repo: string, commentId: number, commentUpdatedAt: string, fence?: Fence): Promise<void>;
}

/** Each repository's context generation: a push to its default branch bumps it on every replica's view. */
export interface ContextGenerations {
  /** The new generation. */
  bump(repo: string): Promise<number>;
  /**
   * 0 for a repository never bumped. Repo keys are case-insensitive, as Gitea's names are: it looks
   * owners and repositories up by `LowerName` (models/user/user.go `User.LowerName`,
   * models/repo/repo.go `Repository.LowerName`, both unique, v1.22.2).
   */
  get(repo: string): Promise<number>;
}

export interface Store {
  readonly backend: 'sqlite' | 'postgres';
  /** Where it is, for logs: a path, or the URL without its password. */
  readonly location: string;
  readonly deliveries: DeliveryStore;
  readonly ownership: OwnershipStore;
  readonly leases: LeaseStore;
  readonly generations: ContextGenerations;
  /** True while the store can be written (`/readyz`); PostgreSQL: a round trip to the server. */
  healthy(): Promise<boolean>;
  /** Commits what is in flight, then closes. */
  close(): Promise<void>;
}

export type StoreConfig = Pick<Config, 'dataDir' | 'journalSync' | 'databaseUrl' | 'databaseSchema' | 'databasePoolSize'>;

export interface OpenStoreOptions {
  /**
   * For the tools that only read (explain, export, replay's sources, dry runs): nothing is created,
   * migrated or written. SQLite: `journal.db` through src/journal/reader.ts (never created: a
   * missing one is an error); PostgreSQL: sessions with `default_transaction_read_only = on`, the
   * schema only checked. Every write rejects.
   */
  readOnly?: boolean;
}

/**
 * Opens the store the configuration selects: PostgreSQL when `databaseUrl` is set (schema created
 * and migrated), else SQLite in `dataDir`. The backends are loaded on demand: SQLite users never
 * load `pg`.
 */
export async function openStore(config: StoreConfig, log: Logger, options: OpenStoreOptions = {}): Promise<Store> {
  if (config.databaseUrl !== undefined) {
    const { PostgresStore } = await import('./postgres/store.js');
    return PostgresStore.open({
      url: config.databaseUrl,
      schema: config.databaseSchema,
      poolSize: config.databasePoolSize,
      log,
      ...(options.readOnly ? { readOnly: true } : {}),
    });
  }
  if (options.readOnly) {
    const { ReadOnlySqliteStore } = await import('./sqlite/readonly.js');
    return ReadOnlySqliteStore.open(config.dataDir);
  }
  const { SqliteStore } = await import('./sqlite/store.js');
  return SqliteStore.open({ dataDir: config.dataDir, sync: config.journalSync, log });
}
