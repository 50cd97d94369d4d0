import type pg from 'pg';
import type { Db, DbClient } from './db.js';
import type { JournalFilter } from '../../journal/api.js';
import { type DeliveryRow, toStored } from '../../journal/rows.js';
import type { NewDelivery, StoredDelivery } from '../../journal/types.js';
import type { DeliveryStore } from '../api.js';
import { NOW_MS } from './schema.js';

interface Waiting {
  delivery: NewDelivery;
  resolve(outcome: 'accepted' | 'duplicate'): void;
  reject(error: unknown): void;
}

/** A `deliveries` row; `pg` answers `bigint` columns as strings. */
type Row = DeliveryRow;

/** Appends per group transaction at most (a bound on one statement's size). */
const MAX_GROUP = 500;
/**
 * Group transactions in flight at once: the next group forms while this one commits. One keeps a
 * process's journal order its arrival order (two concurrent INSERTs may interleave their sequence values).
 */
const MAX_IN_FLIGHT = 1;

const COLUMNS = ['id', 'event', 'event_type', 'action', 'subject', 'repo', 'number', 'updated_at', 'sender', 'headers', 'body', 'state', 'reason'];
const TYPES = ['text', 'text', 'text', 'text', 'text', 'text', 'int', 'text', 'text', 'text', 'text', 'text', 'text'];

/**
 * One INSERT for a whole group: the arrays are unnested in order (journal order is the order of
 * arrival), a delivery id already journaled by any replica is skipped by the unique key, and the
 * statement commits before it returns: `accepted` means committed.
 */
const INSERT_GROUP = `
  INSERT INTO {deliveries} (${COLUMNS.join(', ')}, received_at)
  SELECT ${COLUMNS.map((c) => `t.${c}`).join(', ')}, ${NOW_MS}
    FROM unnest(${TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) WITH ORDINALITY
         AS t(${COLUMNS.join(', ')}, ord)
   ORDER BY t.ord
  ON CONFLICT (id) DO NOTHING
  RETURNING id`;

/**
 * The journal on PostgreSQL (docs/architecture.md, "The store"). Appends are group-committed:
 * while a group's INSERT is in flight, the appends arriving form the next group, so under load
 * many deliveries share one transaction, and a lone delivery waits for nobody.
 */
export class PgDeliveries implements DeliveryStore {
  private queue: Waiting[] = [];
  private inFlight = 0;
  private drainWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly onResult: (error: unknown) => void,
  ) {}

  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    if (this.closed) return Promise.reject(new Error('the PostgreSQL store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ delivery, resolve, reject });
      this.kick();
    });
  }

  /** Refuses new appends; resolves once those in flight or waiting are settled. */
  close(): Promise<void> {
    this.closed = true;
    return this.drained();
  }

  /** Resolves once no append is in flight or waiting. */
  drained(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private kick(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const group = this.queue.splice(0, MAX_GROUP);
      this.inFlight++;
      void this.insertGroup(group).finally(() => {
        this.inFlight--;
        this.kick();
        if (this.inFlight === 0 && this.queue.length === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
      });
    }
  }

  private async insertGroup(group: Waiting[]): Promise<void> {
    // An id twice in one group: the first one decides, the others are duplicates of it.
    const first = new Map<string, number>();
    group.forEach((w, i) => {
      if (!first.has(w.delivery.id)) first.set(w.delivery.id, i);
    });
    const unique = [...first.values()].map((i) => group[i]!.delivery);
    let inserted: Set<string>;
    try {
      const columns = COLUMNS.map(() => [] as unknown[]);
      for (const d of unique) {
        const values = [d.id, d.event, d.eventType, d.action, d.subject, d.repo, d.number, d.updatedAt, d.sender, JSON.stringify(d.headers), d.body, d.state, d.reason ?? null];
        values.forEach((v, i) => columns[i]!.push(v));
      }
      const result = await this.db.query<{ id: string }>(INSERT_GROUP, columns);
      inserted = new Set(result.rows.map((r) => r.id));
      this.onResult(undefined);
    } catch (error) {
      this.onResult(error);
      for (const w of group) w.reject(error);
      return;
    }
    group.forEach((w, i) => w.resolve(first.get(w.delivery.id) === i && inserted.has(w.delivery.id) ? 'accepted' : 'duplicate'));
  }

  async get(id: string): Promise<StoredDelivery | undefined> {
    const { rows } = await this.db.query<Row>('SELECT * FROM {deliveries} WHERE id = $1', [id]);
    return rows[0] ? toStored(rows[0]) : undefined;
  }

  async pendingFor(subject: string): Promise<StoredDelivery[]> {
    const { rows } = await this.db.query<Row>(`SELECT * FROM {deliveries} WHERE state = 'pending' AND subject = $1 ORDER BY seq`, [subject]);
    return rows.map(toStored);
  }

  async pendingSubjects(limit: number, afterSeq = 0): Promise<{ subject: string; firstSeq: number }[]> {
    const { rows } = await this.db.query<{ subject: string; first_seq: string }>(
      `SELECT subject, min(seq) AS first_seq FROM {deliveries}
        WHERE state = 'pending' AND subject IS NOT NULL
        GROUP BY subject HAVING min(seq) > $1
        ORDER BY first_seq LIMIT $2`,
      [afterSeq, limit],
    );
    return rows.map((r) => ({ subject: r.subject, firstSeq: Number(r.first_seq) }));
  }

  async orphanedSubjects(limit: number, receivedBefore?: number): Promise<{ subject: string; firstSeq: number }[]> {
    const { rows } = await this.db.query<{ subject: string; first_seq: string }>(
      `SELECT d.subject, min(d.seq) AS first_seq FROM {deliveries} d
        WHERE d.state = 'pending' AND d.subject IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {leases} l
                           WHERE l.name = d.subject AND l.holder IS NOT NULL AND l.expires_at > ${NOW_MS})
        GROUP BY d.subject HAVING max(d.received_at) < $2 ORDER BY first_seq LIMIT $1`,
      [limit, receivedBefore ?? Number.MAX_SAFE_INTEGER],
    );
    return rows.map((r) => ({ subject: r.subject, firstSeq: Number(r.first_seq) }));
  }

  async pendingCount(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM {deliveries} WHERE state = 'pending'`);
    return Number(rows[0]!.n);
  }

  async markDone(ids: readonly string[]): Promise<void> {
    await this.update(`UPDATE {deliveries} SET state = 'done', finished_at = ${NOW_MS} WHERE id = ANY($1) AND state = 'pending'`, [ids]);
  }

  async recordFailure(ids: readonly string[], error: string): Promise<void> {
    await this.update(`UPDATE {deliveries} SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1) AND state = 'pending'`, [ids, error]);
  }

  async markFailed(ids: readonly string[], error: string): Promise<void> {
    await this.update(
      `UPDATE {deliveries} SET state = 'failed', attempts = attempts + 1, last_error = $2, finished_at = ${NOW_MS}
        WHERE id = ANY($1) AND state = 'pending'`,
      [ids, error],
    );
  }

  async requeue(ids: readonly string[]): Promise<void> {
    await this.update(`UPDATE {deliveries} SET state = 'pending', attempts = 0, finished_at = NULL WHERE id = ANY($1) AND state = 'failed'`, [ids]);
  }

  async query(filter: JournalFilter): Promise<StoredDelivery[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (sql: string, value: string | number | undefined) => {
      if (value === undefined) return;
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    add('id = ?', filter.id);
    add('repo = ?', filter.repo);
    add('subject = ?', filter.subject);
    add('state = ?', filter.state);
    add('received_at >= ?', filter.since);
    add('received_at < ?', filter.until);
    let sql = `SELECT * FROM {deliveries}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC`;
    if (filter.limit !== undefined) {
      params.push(Math.max(0, Math.floor(filter.limit)));
      sql += ` LIMIT $${params.length}`;
    }
    const { rows } = await this.db.query<Row>(sql, params);
    return rows.reverse().map(toStored);
  }

  async repoActivity(): Promise<{ repo: string; newest: string | null }[]> {
    const { rows } = await this.db.query<{ repo: string; newest: string | null }>(
      `SELECT repo, max(CASE WHEN number IS NOT NULL THEN updated_at END) AS newest
         FROM {deliveries} WHERE repo IS NOT NULL GROUP BY repo ORDER BY repo`,
    );
    return rows;
  }

  /** The receiver stores `updated_at` as `toISOString()`: the string maximum is the time maximum. */
  async newestUpdatedAt(subject: string): Promise<string | null> {
    const { rows } = await this.db.query<{ newest: string | null }>('SELECT max(updated_at) AS newest FROM {deliveries} WHERE subject = $1', [subject]);
    return rows[0]?.newest ?? null;
  }

  async prune(before: number): Promise<number> {
    const result = await this.update(`DELETE FROM {deliveries} WHERE state IN ('done', 'ignored') AND received_at < $1`, [before]);
    return result.rowCount ?? 0;
  }

  private async update(sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      const result = await this.db.query(sql, params);
      this.onResult(undefined);
      return result;
    } catch (error) {
      this.onResult(error);
      throw error;
    }
  }
}
