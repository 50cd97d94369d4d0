import pg from 'pg';
import { openJournal } from './reliability/journal-db.js';

/**
 * Reads a service's journal from outside, whichever backend holds it: the SQLite file in a DATA_DIR
 * (read-only, WAL lets a reader in) or a PostgreSQL schema shared by several replicas. Async, because
 * PostgreSQL is; a test can never repair what it is checking (SELECTs only).
 */
export interface StoreView {
  readonly backend: 'sqlite' | 'postgres';
  /** Rows per state. */
  states(): Promise<Record<string, number>>;
  pending(): Promise<number>;
  /** State of each id asked for (`missing` when the journal has no such row). */
  stateOf(ids: Iterable<string>): Promise<Map<string, string>>;
  /** When each id asked for was finished (done, failed): epoch ms, `null` while it is not. */
  finishedAt(ids: Iterable<string>): Promise<Map<string, number | null>>;
  /** Issue numbers with at least one journaled delivery (received at or after `since`, epoch ms). */
  numbers(since?: number): Promise<number[]>;
  /** SQLite: `PRAGMA integrity_check` (`['ok']`); PostgreSQL: delivery ids held by more than one row (none: `['ok']`). */
  integrity(): Promise<string[]>;
  close(): Promise<void>;
}

/** Where a service's store is: its DATA_DIR, or a PostgreSQL URL and schema. */
export type StoreLocation = { dataDir: string } | { databaseUrl: string; schema: string };

export function openStoreView(where: StoreLocation): StoreView {
  return 'dataDir' in where ? sqliteView(where.dataDir) : postgresView(where.databaseUrl, where.schema);
}

function sqliteView(dataDir: string): StoreView {
  const j = openJournal(dataDir);
  return {
    backend: 'sqlite',
    states: async () => j.states(),
    pending: async () => j.pending(),
    stateOf: async (ids) => j.stateOf(ids),
    finishedAt: async (ids) => j.finishedAt(ids),
    numbers: async (since) => j.numbers(since),
    integrity: async () => j.integrity(),
    close: async () => j.close(),
  };
}

function postgresView(url: string, schema: string): StoreView {
  // One connection: the view is read in between the test's steps, never in parallel with itself.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const t = `"${schema.replace(/"/g, '""')}".deliveries`;
  const rowsFor = async <R extends pg.QueryResultRow>(sql: string, ids: Iterable<string>) => (await pool.query<R>(sql, [[...ids]])).rows;
  return {
    backend: 'postgres',
    states: async () => {
      const { rows } = await pool.query<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM ${t} GROUP BY state`);
      return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    },
    pending: async () => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE state = 'pending'`)).rows[0]!.n),
    stateOf: async (ids) => {
      const list = [...ids];
      const found = new Map((await rowsFor<{ id: string; state: string }>(`SELECT id, state FROM ${t} WHERE id = ANY($1)`, list)).map((r) => [r.id, r.state]));
      return new Map(list.map((id) => [id, found.get(id) ?? 'missing']));
    },
    finishedAt: async (ids) => {
      const rows = await rowsFor<{ id: string; finished_at: string | null }>(`SELECT id, finished_at FROM ${t} WHERE id = ANY($1)`, ids);
      return new Map(rows.map((r) => [r.id, r.finished_at === null ? null : Number(r.finished_at)]));
    },
    numbers: async (since = 0) =>
      (await pool.query<{ number: number }>(`SELECT DISTINCT number FROM ${t} WHERE number IS NOT NULL AND received_at >= $1`, [since])).rows.map((r) => r.number),
    integrity: async () => {
      const { rows } = await pool.query<{ id: string }>(`SELECT id FROM ${t} GROUP BY id HAVING count(*) > 1`);
      return rows.length === 0 ? ['ok'] : rows.map((r) => `delivery ${r.id} journaled twice`);
    },
    close: () => pool.end(),
  };
}
