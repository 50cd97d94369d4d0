import type { OwnershipStore as SqliteOwnershipRecords } from './ownership-records.js';
import type { OwnershipStore } from '../api.js';

/**
 * The synchronous ownership records on a private better-sqlite3 database (a dry run's scratch copy,
 * a unit test) behind the async interface. No lease exists there: fences are not checked. The
 * service's store checks them (SqliteStore, PostgresStore).
 */
export function asyncOwnership(records: SqliteOwnershipRecords): OwnershipStore {
  return {
    ownership: async (repo, number) => records.ownership(repo, number),
    owned: async (repo, number) => records.owned(repo, number),
    events: async (repo, number) => records.events(repo, number),
    pending: async (repo, number) => records.pending(repo, number),
    known: async (repo, number) => records.known(repo, number),
    replied: async (repo, id, at) => records.replied(repo, id, at),
    unknownRemovals: async (repo, number) => records.unknownRemovals(repo, number),
    record: async (repo, number, changes, meta) => records.record(repo, number, changes, meta),
    intend: (repo, number, changes, meta) => records.intend(repo, number, changes, meta),
    clearPending: async (repo, number) => records.clearPending(repo, number),
    recordApplied: async (repo, number, changes, meta) => records.recordApplied(repo, number, changes, meta),
    setKnown: async (repo, number, labels, updatedAt) => records.setKnown(repo, number, labels, updatedAt),
    markReplied: async (repo, id, at) => records.markReplied(repo, id, at),
    attributeRemovals: async (repo, number, labels, user, delivery) => records.attributeRemovals(repo, number, labels, user, delivery),
  };
}
