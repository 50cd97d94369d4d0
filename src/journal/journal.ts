import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log/logger.js';
import type { JournalApi, JournalFilter } from './api.js';
import type { DeliveryState, NewDelivery, StoredDelivery } from './types.js';

export interface JournalOptions {
  /** Directory of `journal.db`; created if missing. */
  dataDir: string;
  /** SQLite `synchronous`: `full` fsyncs the WAL on every commit (survives power loss), `normal` only at checkpoints. */
  sync: 'full' | 'normal';
  log: Logger;
}

/** Raw row of the `deliveries` table. */
interface Row {
  seq: number;
  id: string;
  event: string;
  event_type: string;
  action: string | null;
  subject: string | null;
  repo: string | null;
  number: number | null;
  updated_at: string | null;
  sender: string | null;
  headers: string;
  body: string;
  state: DeliveryState;
  reason: string | null;
  attempts: number;
  last_error: string | null;
  received_at: number;
  finished_at: number | null;
}

interface Waiting {
  delivery: NewDelivery;
  resolve(outcome: 'accepted' | 'duplicate'): void;
  reject(error: unknown): void;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS deliveries (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  event       TEXT NOT NULL,
  event_type  TEXT NOT NULL,
  action      TEXT,
  subject     TEXT,
  repo        TEXT,
  number      INTEGER,
  updated_at  TEXT,
  sender      TEXT,
  headers     TEXT NOT NULL,
  body        TEXT NOT NULL,
  state       TEXT NOT NULL,
  reason      TEXT,
  attempts    INTEGER NOT NULL DEFAULT 0,
  last_error  TEXT,
  received_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_state_subject ON deliveries (state, subject);
CREATE INDEX IF NOT EXISTS deliveries_subject ON deliveries (subject);
CREATE INDEX IF NOT EXISTS deliveries_received_at ON deliveries (received_at);
CREATE INDEX IF NOT EXISTS deliveries_repo ON deliveries (repo);
-- Resume walks the pending rows in journal order; done rows (the history) are most of the
-- table, so a partial index keeps that walk proportional to the backlog, not to the history.
CREATE INDEX IF NOT EXISTS deliveries_pending_seq ON deliveries (seq) WHERE state = 'pending';
`;

/**
 * The durable intake log on better-sqlite3 in WAL mode.
 *
 * Appends are group-committed: every `append` made before the event loop comes back to the
 * journal (one `setImmediate`) joins one transaction, so a burst of N webhooks costs one commit
 * and one fsync instead of N. better-sqlite3 is synchronous, so the commit blocks the loop while
 * it runs; requests that arrive meanwhile wait in the socket buffers and form the next group.
 */
export class Journal implements JournalApi {
  /** Public: other stores (label ownership) keep their tables in the same database file. */
  readonly db: Database.Database;
  readonly path: string;

  private readonly log: Logger;
  private group: Waiting[] = [];
  private flushScheduled: ReturnType<typeof setImmediate> | undefined;
  private isHealthy = true;
  private closed = false;

  private readonly insertStmt: Database.Statement;
  private readonly commitGroup: (group: Waiting[], now: number) => ('accepted' | 'duplicate')[];
  private readonly pendingForStmt: Database.Statement<[string], Row>;
  private readonly pendingSubjectsStmt: Database.Statement<[number, number], { subject: string; firstSeq: number }>;
  private readonly pendingCountStmt: Database.Statement<[], { n: number }>;
  private readonly getStmt: Database.Statement<[string], Row>;
  private readonly markDoneStmt: Database.Statement;
  private readonly recordFailureStmt: Database.Statement;
  private readonly markFailedStmt: Database.Statement;
  private readonly requeueStmt: Database.Statement;
  private readonly pruneStmt: Database.Statement;

  private constructor(db: Database.Database, file: string, log: Logger) {
    this.db = db;
    this.path = file;
    this.log = log;
    this.insertStmt = db.prepare(
      `INSERT OR IGNORE INTO deliveries
         (id, event, event_type, action, subject, repo, number, updated_at, sender, headers, body, state, reason, attempts, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
    );
    this.commitGroup = db.transaction((group: Waiting[], now: number) => {
      const outcomes: ('accepted' | 'duplicate')[] = [];
      for (const { delivery: d } of group) {
        const info = this.insertStmt.run(
          d.id,
          d.event,
          d.eventType,
          d.action,
          d.subject,
          d.repo,
          d.number,
          d.updatedAt,
          d.sender,
          JSON.stringify(d.headers),
          d.body,
          d.state,
          d.reason ?? null,
          now,
        );
        // OR IGNORE: an id already journaled (or twice in this group) changes nothing.
        outcomes.push(info.changes === 0 ? 'duplicate' : 'accepted');
      }
      return outcomes;
    });
    this.pendingForStmt = db.prepare(`SELECT * FROM deliveries WHERE state = 'pending' AND subject = ? ORDER BY seq`);
    // Walks pending rows in journal order and keeps each subject's first one; the NOT EXISTS
    // probe uses (state, subject) so a page costs about `limit` index lookups.
    this.pendingSubjectsStmt = db.prepare(
      `SELECT d.subject AS subject, d.seq AS firstSeq FROM deliveries d
        WHERE d.state = 'pending' AND d.subject IS NOT NULL AND d.seq > ?
          AND NOT EXISTS (SELECT 1 FROM deliveries e
                           WHERE e.state = 'pending' AND e.subject = d.subject AND e.seq < d.seq)
        ORDER BY d.seq LIMIT ?`,
    );
    this.pendingCountStmt = db.prepare(`SELECT count(*) AS n FROM deliveries WHERE state = 'pending'`);
    this.getStmt = db.prepare(`SELECT * FROM deliveries WHERE id = ?`);
    this.markDoneStmt = db.prepare(
      `UPDATE deliveries SET state = 'done', finished_at = ? WHERE id = ? AND state = 'pending'`,
    );
    this.recordFailureStmt = db.prepare(
      `UPDATE deliveries SET attempts = attempts + 1, last_error = ? WHERE id = ? AND state = 'pending'`,
    );
    this.markFailedStmt = db.prepare(
      `UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_error = ?, finished_at = ?
        WHERE id = ? AND state = 'pending'`,
    );
    this.requeueStmt = db.prepare(
      `UPDATE deliveries SET state = 'pending', attempts = 0, finished_at = NULL WHERE id = ? AND state = 'failed'`,
    );
    this.pruneStmt = db.prepare(`DELETE FROM deliveries WHERE state IN ('done', 'ignored') AND received_at < ?`);
  }

  /**
   * Opens (creating if needed) `${dataDir}/journal.db`.
   * @throws Error naming the path when the directory or the database cannot be written.
   */
  static open(options: JournalOptions): Journal {
    const dir = path.resolve(options.dataDir);
    const file = path.join(dir, 'journal.db');
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new Error(`journal: cannot create data directory ${dir}: ${messageOf(error)}`);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      const mode = db.pragma('journal_mode', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
      db.pragma(`synchronous = ${options.sync === 'full' ? 'FULL' : 'NORMAL'}`);
      // Other connections (tools reading the journal) may hold the lock briefly.
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      // A write probe: SQLite silently opens a write-protected file read-only, and
      // CREATE TABLE IF NOT EXISTS writes nothing when the table exists.
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (error) {
      db?.close();
      throw new Error(`journal: cannot open ${file} for writing: ${messageOf(error)}`);
    }
    const journal = new Journal(db, file, options.log);
    options.log.debug('journal opened', { path: file, sync: options.sync, pending: journal.pendingCount() });
    return journal;
  }

  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      this.group.push({ delivery, resolve, reject });
      // setImmediate, not a microtask: requests parsed in the same poll phase all join the group.
      this.flushScheduled ??= setImmediate(() => this.commit());
    });
  }

  /** Commits the waiting group in one transaction and settles each append's promise. */
  private commit(): void {
    this.flushScheduled = undefined;
    const group = this.group;
    if (group.length === 0) return;
    this.group = [];
    let outcomes: ('accepted' | 'duplicate')[];
    try {
      outcomes = this.commitGroup(group, Date.now());
    } catch (error) {
      this.unhealthy('append', error, group.length);
      for (const w of group) w.reject(error);
      return;
    }
    this.healthyAgain();
    for (let i = 0; i < group.length; i++) group[i]!.resolve(outcomes[i]!);
  }

  pendingFor(subject: string): StoredDelivery[] {
    return this.pendingForStmt.all(subject).map(toStored);
  }

  pendingSubjects(limit: number, afterSeq = 0): { subject: string; firstSeq: number }[] {
    return this.pendingSubjectsStmt.all(afterSeq, limit);
  }

  pendingCount(): number {
    return this.pendingCountStmt.get()!.n;
  }

  markDone(ids: readonly string[]): void {
    const now = Date.now();
    this.write('markDone', () => {
      for (const id of ids) this.markDoneStmt.run(now, id);
    });
  }

  recordFailure(ids: readonly string[], error: string): void {
    this.write('recordFailure', () => {
      for (const id of ids) this.recordFailureStmt.run(error, id);
    });
  }

  markFailed(ids: readonly string[], error: string): void {
    const now = Date.now();
    this.write('markFailed', () => {
      for (const id of ids) this.markFailedStmt.run(error, now, id);
    });
  }

  requeue(ids: readonly string[]): void {
    this.write('requeue', () => {
      for (const id of ids) this.requeueStmt.run(id);
    });
  }

  get(id: string): StoredDelivery | undefined {
    const row = this.getStmt.get(id);
    return row ? toStored(row) : undefined;
  }

  /** Rows matching every given field, oldest first; with `limit`, the newest `limit` rows. */
  query(filter: JournalFilter): StoredDelivery[] {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = ?`);
      params.push(value);
    };
    eq('id', filter.id);
    eq('repo', filter.repo);
    eq('subject', filter.subject);
    eq('state', filter.state);
    if (filter.since !== undefined) {
      where.push('received_at >= ?');
      params.push(filter.since);
    }
    if (filter.until !== undefined) {
      where.push('received_at < ?');
      params.push(filter.until);
    }
    let sql = `SELECT * FROM deliveries${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC`;
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(Math.max(0, Math.floor(filter.limit)));
    }
    const rows = this.db.prepare<(string | number)[], Row>(sql).all(...params);
    return rows.reverse().map(toStored);
  }

  prune(before: number): number {
    let deleted = 0;
    this.write('prune', () => {
      deleted = this.pruneStmt.run(before).changes;
    });
    return deleted;
  }

  healthy(): boolean {
    return this.isHealthy && !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted into a group are committed before closing.
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.commit();
    this.closed = true;
    this.db.close();
  }

  /** Runs a state change in one transaction, tracking health like appends do. */
  private write(what: string, fn: () => void): void {
    if (this.closed) throw new Error(`journal ${this.path} is closed`);
    try {
      this.db.transaction(fn)();
    } catch (error) {
      this.unhealthy(what, error, 0);
      throw error;
    }
    this.healthyAgain();
  }

  private unhealthy(what: string, error: unknown, deliveries: number): void {
    if (this.isHealthy) {
      this.log.error('journal write failed', {
        operation: what,
        path: this.path,
        error: messageOf(error),
        ...(deliveries ? { deliveries } : {}),
      });
    }
    this.isHealthy = false;
  }

  private healthyAgain(): void {
    if (!this.isHealthy) this.log.warn('journal writable again', { path: this.path });
    this.isHealthy = true;
  }
}

function toStored(row: Row): StoredDelivery {
  const stored: StoredDelivery = {
    seq: row.seq,
    id: row.id,
    event: row.event,
    eventType: row.event_type,
    action: row.action,
    subject: row.subject,
    repo: row.repo,
    number: row.number,
    updatedAt: row.updated_at,
    sender: row.sender,
    headers: parseHeaders(row.headers),
    body: row.body,
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error,
    receivedAt: row.received_at,
  };
  if (row.reason !== null) stored.reason = row.reason;
  return stored;
}

function parseHeaders(text: string): Record<string, string> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, string>) : {};
  } catch {
    return {};
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
