import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * Reads a service's journal from outside (another process may be writing it: WAL lets a reader in).
 * Opened read-only, so a test can never repair what it is checking.
 */
export interface JournalView {
  /** Rows per state. */
  states(): Record<string, number>;
  pending(): number;
  /** State of each id asked for (`missing` when the journal has no such row). */
  stateOf(ids: Iterable<string>): Map<string, string>;
  /** When each id asked for was finished (epoch ms; `null` while it is not); absent ids are left out. */
  finishedAt(ids: Iterable<string>): Map<string, number | null>;
  /** Issue numbers with at least one journaled delivery (received at or after `since`, epoch ms). */
  numbers(since?: number): number[];
  /** `PRAGMA integrity_check`: `['ok']` for a sound database. */
  integrity(): string[];
  close(): void;
}

export function openJournal(dataDir: string): JournalView {
  const db = new Database(path.join(dataDir, 'journal.db'), { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const byState = db.prepare<[], { state: string; n: number }>('SELECT state, count(*) AS n FROM deliveries GROUP BY state');
  const numbers = db.prepare<[number], { number: number }>('SELECT DISTINCT number FROM deliveries WHERE number IS NOT NULL AND received_at >= ?');
  const one = db.prepare<[string], { state: string }>('SELECT state FROM deliveries WHERE id = ?');
  const finished = db.prepare<[string], { finished_at: number | null }>('SELECT finished_at FROM deliveries WHERE id = ?');
  return {
    states: () => Object.fromEntries(byState.all().map((r) => [r.state, r.n])),
    pending: () => byState.all().find((r) => r.state === 'pending')?.n ?? 0,
    stateOf: (ids) => {
      const out = new Map<string, string>();
      for (const id of ids) out.set(id, one.get(id)?.state ?? 'missing');
      return out;
    },
    finishedAt: (ids) => {
      const out = new Map<string, number | null>();
      for (const id of ids) {
        const row = finished.get(id);
        if (row) out.set(id, row.finished_at);
      }
      return out;
    },
    numbers: (since = 0) => numbers.all(since).map((r) => r.number),
    integrity: () => (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check),
    close: () => db.close(),
  };
}
