import type { JournalApi, JournalFilter } from '../journal/api.js';
import type { DeliveryState, NewDelivery, StoredDelivery } from '../journal/types.js';

/**
 * A journal in memory over a fixed set of rows, so a dry run can go through the real `Scheduler`
 * (which groups a subject's deliveries into one work item, newest state last, and records each
 * outcome) without touching DATA_DIR. Only what the scheduler calls is implemented.
 */
export class MemoryJournal implements JournalApi {
  private readonly rows = new Map<string, StoredDelivery>();
  /** Ids per subject, in journal order: `pendingFor` runs once per subject. */
  private readonly bySubject = new Map<string, string[]>();

  /** Every row is copied; those `pending` selects start pending (no attempts, no error), the rest keep their state. */
  constructor(rows: readonly StoredDelivery[], pending: (row: StoredDelivery) => boolean) {
    for (const row of [...rows].sort((a, b) => a.seq - b.seq)) {
      const fresh = pending(row);
      this.rows.set(row.id, { ...row, state: fresh ? 'pending' : row.state, attempts: fresh ? 0 : row.attempts, lastError: fresh ? null : row.lastError });
      if (row.subject !== null) {
        const ids = this.bySubject.get(row.subject) ?? [];
        ids.push(row.id);
        this.bySubject.set(row.subject, ids);
      }
    }
  }

  append(_delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    return Promise.reject(new Error('MemoryJournal: append is not supported'));
  }

  /** Every row of a subject (whatever its state), in journal order. */
  rowsOf(subject: string): StoredDelivery[] {
    return (this.bySubject.get(subject) ?? []).map((id) => this.rows.get(id)!);
  }

  pendingFor(subject: string): StoredDelivery[] {
    return this.rowsOf(subject).filter((r) => r.state === 'pending');
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

  /** As the SQLite `Journal.query`: rows matching every given field, oldest first; with `limit`, the newest `limit` rows. */
  query(filter: JournalFilter): StoredDelivery[] {
    const rows = this.all().filter(
      (r) =>
        (filter.id === undefined || r.id === filter.id) &&
        (filter.subject === undefined || r.subject === filter.subject) &&
        (filter.repo === undefined || r.repo === filter.repo) &&
        (filter.state === undefined || r.state === filter.state) &&
        (filter.since === undefined || r.receivedAt >= filter.since) &&
        (filter.until === undefined || r.receivedAt < filter.until),
    );
    if (filter.limit === undefined) return rows;
    const limit = Math.max(0, Math.floor(filter.limit));
    return limit === 0 ? [] : rows.slice(-limit);
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
