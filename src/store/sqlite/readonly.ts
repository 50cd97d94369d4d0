import { OwnershipStore as SqliteOwnershipRecords } from '../../applier/ownership.js';
import type { JournalFilter } from '../../journal/api.js';
import { type JournalReader, openJournalReader } from '../../journal/reader.js';
import type { StoredDelivery } from '../../journal/types.js';
import type { DeliveryStore, ContextGenerations, Lease, LeaseStore, OwnershipStore, Store } from '../api.js';

/** A write attempted through a store opened read-only (`openStore(…, { readOnly: true })`). */
export class ReadOnlyStoreError extends Error {
  constructor(what: string, location: string) {
    super(`${what}: the store at ${location} was opened read-only`);
    this.name = 'ReadOnlyStoreError';
  }
}

/**
 * The SQLite store for a tool that only reads (explain, export, replay's sources, a dry run's
 * ownership records): `DATA_DIR/journal.db` opened through src/journal/reader.ts, so nothing in
 * `DATA_DIR` is written, created or locked for writing (docs/architecture.md, "The store"). Every
 * write rejects with {@link ReadOnlyStoreError}.
 */
export class ReadOnlySqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  readonly location: string;
  readonly deliveries: DeliveryStore;
  readonly ownership: OwnershipStore;
  readonly leases: LeaseStore;
  readonly generations: ContextGenerations;

  private constructor(private readonly reader: JournalReader) {
    this.location = reader.file;
    const refuse = (what: string) => Promise.reject(new ReadOnlyStoreError(what, reader.file));
    this.deliveries = readOnlyDeliveries(reader, refuse);
    this.ownership = readOnlyOwnership(new SqliteOwnershipRecords(reader.db), refuse);
    this.leases = readOnlyLeases(reader, refuse);
    this.generations = {
      bump: () => refuse('bump a context generation'),
      get: async (repo) => {
        if (!hasTable(reader, 'store_context_generations')) return 0;
        const row = reader.db.prepare<[string], { generation: number }>('SELECT generation FROM store_context_generations WHERE repo = ?').get(repo.toLowerCase());
        return row?.generation ?? 0;
      },
    };
  }

  /** @throws JournalReadError when `dataDir` holds no journal (never creates one). */
  static open(dataDir: string): ReadOnlySqliteStore {
    return new ReadOnlySqliteStore(openJournalReader(dataDir));
  }

  /** A read-only store cannot be written: not healthy for a service, fine for a tool. */
  async healthy(): Promise<boolean> {
    return false;
  }

  async close(): Promise<void> {
    this.reader.close();
  }
}

function readOnlyDeliveries(reader: JournalReader, refuse: (what: string) => Promise<never>): DeliveryStore {
  const pending = (filter: JournalFilter = {}) => reader.query({ ...filter, state: 'pending' });
  const subjects = (rows: StoredDelivery[]) => {
    const first = new Map<string, number>();
    for (const r of rows) if (r.subject !== null && !first.has(r.subject)) first.set(r.subject, r.seq);
    return [...first].map(([subject, firstSeq]) => ({ subject, firstSeq }));
  };
  return {
    append: () => refuse('append a delivery'),
    get: async (id) => reader.get(id),
    pendingFor: async (subject) => pending({ subject }),
    pendingSubjects: async (limit, afterSeq = 0) => subjects(pending()).filter((s) => s.firstSeq > afterSeq).slice(0, limit),
    orphanedSubjects: async (limit, receivedBefore) =>
      subjects(pending().filter((d) => receivedBefore === undefined || d.receivedAt < receivedBefore)).slice(0, limit),
    pendingCount: async () => pending().length,
    markDone: () => refuse('mark deliveries done'),
    recordFailure: () => refuse('record a failure'),
    markFailed: () => refuse('mark deliveries failed'),
    requeue: () => refuse('requeue deliveries'),
    query: async (filter) => reader.query(filter),
    // The same statements as SqliteStore's.
    repoActivity: async () =>
      reader.db
        .prepare<[], { repo: string; newest: string | null }>(
          `SELECT repo, max(CASE WHEN number IS NOT NULL THEN updated_at END) AS newest
             FROM deliveries WHERE repo IS NOT NULL GROUP BY repo ORDER BY repo`,
        )
        .all(),
    newestUpdatedAt: async (subject) =>
      reader.db.prepare<[string], { newest: string | null }>('SELECT max(updated_at) AS newest FROM deliveries WHERE subject = ?').get(subject)?.newest ?? null,
    prune: () => refuse('prune the journal'),
  };
}

function readOnlyOwnership(records: SqliteOwnershipRecords, refuse: (what: string) => Promise<never>): OwnershipStore {
  return {
    ownership: async (repo, number) => records.ownership(repo, number),
    owned: async (repo, number) => records.owned(repo, number),
    events: async (repo, number) => records.events(repo, number),
    pending: async (repo, number) => records.pending(repo, number),
    known: async (repo, number) => records.known(repo, number),
    replied: async (repo, commentId, updatedAt) => records.replied(repo, commentId, updatedAt),
    unknownRemovals: async (repo, number) => records.unknownRemovals(repo, number),
    attributeRemovals: () => refuse('attribute label removals'),
    record: () => refuse('record label changes'),
    intend: () => refuse('record write intents'),
    clearPending: () => refuse('clear write intents'),
    recordApplied: () => refuse('record applied label changes'),
    setKnown: () => refuse('record a known label set'),
    markReplied: () => refuse('record a command reply'),
  };
}

function readOnlyLeases(reader: JournalReader, refuse: (what: string) => Promise<never>): LeaseStore {
  return {
    acquire: () => refuse('acquire a lease'),
    renew: () => refuse('renew a lease'),
    release: () => refuse('release a lease'),
    leader: () => refuse('take a leader lease'),
    current: async (name) => {
      if (!hasTable(reader, 'store_leases')) return undefined;
      const row = reader.db
        .prepare<[string, number], { name: string; holder: string; token: number; expires_at: number }>(
          'SELECT name, holder, token, expires_at FROM store_leases WHERE name = ? AND holder IS NOT NULL AND expires_at > ?',
        )
        .get(name, Date.now());
      return row ? ({ name: row.name, holder: row.holder, token: row.token, expiresAt: row.expires_at } satisfies Lease) : undefined;
    },
  };
}

/** A journal written by a release before the store's own tables (leases, generations) has none. */
function hasTable(reader: JournalReader, name: string): boolean {
  return reader.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}
