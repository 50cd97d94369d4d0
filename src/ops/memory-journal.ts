import type { JournalApi, JournalFilter } from '../journal/api.js';
import type { DeliveryState, NewDelivery, StoredDelivery } from '../journal/types.js';

/**
 * A journal in memory over a fixed set of rows, so a dry run can go through the real `Scheduler`
 * (which groups a subject's deliveries into one work item, newest state last, and records each
 * outcome) without touching DATA_DIR. Only what the scheduler calls is implemented.
 */
export class MemoryJournal implements JournalApi {
  private readonly rows = new Map<string, StoredDelivery>();

  /** Every row is copied; those given in `pending` start pending, the rest keep their state. */
  constructor(rows: readonly StoredDelivery[], pending: (row: StoredDelivery) => boolean) {
    for (const row of rows) {
      this.rows.set(row.id, { ...row, state: pending(row) ? 'pending' : row.state, attempts: 0, lastError: pending(row) ? null : row.lastError });
    }
  }

  append(_delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    return Promise.reject(new Error('MemoryJournal: append is not supported'));
  }

  pendingFor(subject: string): StoredDelivery[] {
    return this.all().filter((r) => r.state === 'pending' && r.subject === subject);
  }

  pendingSubjects(limit: number, afterSeq = 0): { subject: string; firstSeq: number }[] {
    const seen = new Map<string, number>();
    for (const r of this.all()) {
      if (r.state === 'pending' && r.subject !== null && !seen.has(r.subject)) seen.set(r.subject, r.seq);
    }
    return [...seen]
      .filter(([, seq]) => seq > afterSeq)
      .slice(0, limit)
      .map(([subject, firstSeq]) => ({ subject, firstSeq }));
  }

  pendingCount(): number {
    return this.all().filter((r) => r.state === 'pending').length;
  }

  markDone(ids: readonly string[]): void {
    this.update(ids, 'pending', (r) => ({ ...r, state: 'done' }));
  }

  recordFailure(ids: readonly string[], error: string): void {
    this.update(ids, 'pending', (r) => ({ ...r, attempts: r.attempts + 1, lastError: error }));
  }

  markFailed(ids: readonly string[], error: string): void {
    this.update(ids, 'pending', (r) => ({ ...r, state: 'failed', attempts: r.attempts + 1, lastError: error }));
  }

  requeue(ids: readonly string[]): void {
    this.update(ids, 'failed', (r) => ({ ...r, state: 'pending', attempts: 0 }));
  }

  get(id: string): StoredDelivery | undefined {
    return this.rows.get(id);
  }

  query(filter: JournalFilter): StoredDelivery[] {
    return this.all().filter(
      (r) =>
        (filter.id === undefined || r.id === filter.id) &&
        (filter.subject === undefined || r.subject === filter.subject) &&
        (filter.repo === undefined || r.repo === filter.repo) &&
        (filter.state === undefined || r.state === filter.state),
    );
  }

  prune(): number {
    return 0;
  }

  healthy(): boolean {
    return true;
  }

  async close(): Promise<void> {}

  private all(): StoredDelivery[] {
    return [...this.rows.values()].sort((a, b) => a.seq - b.seq);
  }

  private update(ids: readonly string[], from: DeliveryState, fn: (row: StoredDelivery) => StoredDelivery): void {
    for (const id of ids) {
      const row = this.rows.get(id);
      if (row && row.state === from) this.rows.set(id, fn(row));
    }
  }
}
