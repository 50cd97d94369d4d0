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
  /**
   * Subjects whose lease the process `pid` holds right now (the holder names carry the pid:
   * src/service/cluster.ts `holderName`); leader leases left out. PostgreSQL only.
   */
  leasedBy(pid: number): Promise<string[]>;
  /** The rows of `subjects` received at or before `before` (epoch ms): how many, how many pending, the last finish. */
  rowsOf(subjects: readonly string[], before: number): Promise<{ rows: number; pending: number; lastFinished: number | null }>;
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
    leasedBy: () => Promise.reject(new Error('leasedBy: PostgreSQL stores only')),
    rowsOf: () => Promise.reject(new Error('rowsOf: PostgreSQL stores only')),
    close: async () => j.close(),
  };
}

function postgresView(url: string, schema: string): StoreView {
  // One connection: the view is read in between the test's steps, never in parallel with itself.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const q = `"${schema.replace(/"/g, '""')}"`;
  const t = `${q}.deliveries`;
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
    leasedBy: async (pid) => {
      const { rows } = await pool.query<{ name: string }>(
        `SELECT name FROM ${q}.leases WHERE holder LIKE $1 AND name NOT LIKE 'leader:%' AND expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
        [`%:${pid}:%`],
      );
      return rows.map((r) => r.name);
    },
    rowsOf: async (subjects, before) => {
      const { rows } = await pool.query<{ n: string; pending: string; last: string | null }>(
        `SELECT count(*) AS n, count(*) FILTER (WHERE state = 'pending') AS pending, max(finished_at) AS last
           FROM ${t} WHERE subject = ANY($1) AND received_at <= $2`,
        [subjects, before],
      );
      const r = rows[0]!;
      return { rows: Number(r.n), pending: Number(r.pending), lastFinished: r.last === null ? null : Number(r.last) };
    },
    close: () => pool.end(),
  };
}
