import type { Fence, OwnershipStore } from './api.js';

/**
 * The ownership records as seen by one evaluation that holds the subject's lease: reads as they
 * are, every write carrying `fence`, so that none lands once the lease was lost (docs/architecture.md,
 * "The store": leases and fencing). A write given its own fence keeps it.
 */
export function fencedOwnership(store: OwnershipStore, fence: Fence): OwnershipStore {
  return {
    ownership: (repo, number) => store.ownership(repo, number),
    owned: (repo, number) => store.owned(repo, number),
    events: (repo, number) => store.events(repo, number),
    pending: (repo, number) => store.pending(repo, number),
    known: (repo, number) => store.known(repo, number),
    replied: (repo, id, at) => store.replied(repo, id, at),
    unknownRemovals: (repo, number) => store.unknownRemovals(repo, number),
    record: (repo, number, changes, meta, f) => store.record(repo, number, changes, meta, f ?? fence),
    intend: (repo, number, changes, meta, f) => store.intend(repo, number, changes, meta, f ?? fence),
    clearPending: (repo, number, f) => store.clearPending(repo, number, f ?? fence),
    recordApplied: (repo, number, changes, meta, f) => store.recordApplied(repo, number, changes, meta, f ?? fence),
    setKnown: (repo, number, labels, updatedAt, f) => store.setKnown(repo, number, labels, updatedAt, f ?? fence),
    markReplied: (repo, id, at, f) => store.markReplied(repo, id, at, f ?? fence),
    attributeRemovals: (repo, number, labels, user, delivery, f) => store.attributeRemovals(repo, number, labels, user, delivery, f ?? fence),
  };
}
