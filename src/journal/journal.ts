import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type DeliveryRow, toStored } from './rows.js';
import type { Logger } from '../log/logger.js';
import type { JournalApi, JournalFilter } from './api.js';
import { BackgroundCheckpointer } from './checkpointer.js';
import type { DeliveryState, NewDelivery, StoredDelivery } from './types.js';
import { errorText } from '../errors.js';

export interface JournalOptions {
  /** Directory of `journal.db`; created if missing. */
  dataDir: string;
  /**
   * `full`: every commit is fsynced before what it holds is acknowledged (an append's promise, a
   * `settled()` waiter): it survives power loss. `normal`: a commit is in the OS page cache when it
   * returns (survives `kill -9`, not a power cut); fsyncs only at checkpoints.
   */
  sync: 'full' | 'normal';
  /**
   * How `full` fsyncs the WAL off the event loop (default `fs.fsync`, on libuv's thread pool).
   * For tests that need to hold or fail the sync.
   */
  syncWal?: (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;
  log: Logger;
  /**
   * Checkpoint the WAL from a worker thread once `afterBytes` of deliveries were appended (default
   * 1 MiB, every 100 ms); `false`: SQLite's automatic checkpoint on the journal's own connection.
   */
  checkpointer?: { afterBytes: number; intervalMs: number } | false;
}

const DEFAULT_CHECKPOINTER = { afterBytes: 1 << 20, intervalMs: 100 };
/** SQLite's default `wal_autocheckpoint` (pages), in force while no background checkpointer runs. */
const AUTOCHECKPOINT_PAGES = 1000;
/** With the background checkpointer: only a safety net, should it fall behind (64 MiB of 4 KiB pages). */
const SAFETY_AUTOCHECKPOINT_PAGES = 16384;

/** Raw row of the `deliveries` table (SQLite gives numbers for its integers). */
interface Row extends DeliveryRow {
  seq: number;
  received_at: number;
  finished_at: number | null;
}

interface Waiting {
  delivery: NewDelivery;
  resolve(outcome: 'accepted' | 'duplicate'): void;
  reject(error: unknown): void;
}

const SCHEMA_VERSION = 1;

/** Someone waiting for the open group to be committed ({@link Journal.settled}). */
interface SettleWaiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** A committed group whose appends and waiters wait for the WAL fsync that covers it (`sync: full`). */
interface Unsynced {
  /** Commit number (`commits` after it). */
  commit: number;
  appends: Waiting[];
  outcomes: ('accepted' | 'duplicate')[];
  waiters: SettleWaiter[];
  /** Earlier writes of the group that SQLite rolled back: its waiters are rejected with this. */
  lost: unknown;
  /** False when the group's appends could not be inserted (the journal stays unhealthy). */
  healthy: boolean;
}

/**
 * Writes of other stores that keep their tables in the journal's database (label ownership):
 * they join the journal's group commit instead of committing (and fsyncing) on their own.
 */
export interface GroupedWriter {
  /**
   * Runs `write` now, atomically (a savepoint), inside the open group transaction: this connection
   * reads it back at once; it is committed with the group before the event loop comes back.
   */
  deferred<T>(write: () => T): T;
  /** Like `deferred`, then commits the whole group before returning: durable on return. */
  durable<T>(write: () => T): T;
  /**
   * Like `deferred`; resolves once the group holding the write is committed and, with `sync: full`,
   * fsynced (off the event loop). Concurrent callers share one commit and one fsync.
   */
  durableSoon(write: () => void): Promise<void>;
}

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
 * Every write is group-committed: appends and state changes made before the event loop comes back
 * to the journal (one `setImmediate`) share one transaction, so a burst of N webhooks and the M
 * evaluations that finished meanwhile cost one commit instead of N + M. better-sqlite3 is
 * synchronous, so the commit blocks the loop while it runs; requests that arrive meanwhile wait in
 * the socket buffers and form the next group. The slow parts of durability stay off the loop:
 * with `sync: full` the WAL's fsync runs on libuv's thread pool after the commit (one at a time;
 * each covers every commit before it), and checkpoints run in a worker thread (checkpointer.ts).
 *
 * - An append's promise resolves only once its group is committed and, with `sync: full`, fsynced
 *   (the receiver's 202 waits for it): what was acknowledged survives `kill -9`, and with `full`
 *   a power cut.
 * - A state change (`markDone`, `recordFailure`, `markFailed`) runs at once inside the open group
 *   transaction, so this process reads it back immediately (`get`, `pendingFor`, `pendingCount`),
 *   and becomes durable with the group. A crash before that loses the group as a whole, never part
 *   of it, and never a later group without it (SQLite recovers the WAL up to its last valid
 *   commit): the rows keep their earlier state, and an evaluation whose `done` was lost runs again
 *   after the restart (evaluations are idempotent). Whoever needs one durable first awaits
 *   {@link Journal.settled}.
 * - `requeue` and `prune` (tools, retention), and the ownership store's durable writes, are
 *   committed and fsynced before they return.
 */
export class Journal implements JournalApi {
  /** Public: other stores (label ownership) keep their tables in the same database file. */
  readonly db: Database.Database;
  readonly path: string;
  /**
   * Writes of the stores that share {@link db} (label ownership: `OwnershipStore.forJournal`) join
   * this journal's group commit through it.
   */
  readonly writer: GroupedWriter;

  private readonly log: Logger;
  private group: Waiting[] = [];
  private flushScheduled: ReturnType<typeof setImmediate> | undefined;
  /** This journal holds an open `BEGIN IMMEDIATE` that the next flush commits. */
  private txOpen = false;
  /** Why earlier writes of the open group were lost (SQLite rolled the transaction back), if they were. */
  private lostError: unknown;
  private settleWaiters: SettleWaiter[] = [];
  private isHealthy = true;
  private closed = false;
  private commits = 0;
  private readonly sync: 'full' | 'normal';
  private readonly syncWal: (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void;
  /** The WAL file, for `sync: full` (undefined: SQLite fsyncs in each COMMIT itself). */
  private walFd: number | undefined;
  /** Committed groups waiting for their fsync, oldest first. */
  private unsynced: Unsynced[] = [];
  /** Commits that an fsync has covered. */
  private syncedCommits = 0;
  private syncing: Promise<void> | undefined;
  private walSyncs = 0;
  private checkpointerOptions: { afterBytes: number; intervalMs: number } | false;
  private checkpointer: BackgroundCheckpointer | undefined;
  /** Bytes of deliveries committed until the background checkpointer starts (then no longer counted). */
  private appendedBytes = 0;

  private readonly insertStmt: Database.Statement;
  private readonly beginStmt: Database.Statement;
  private readonly commitStmt: Database.Statement;
  /** Runs a function in a savepoint of the open group (built once: `db.transaction` is not free). */
  private readonly inSavepoint: (fn: () => unknown) => unknown;
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

  private constructor(db: Database.Database, file: string, options: JournalOptions) {
    this.db = db;
    this.path = file;
    this.log = options.log;
    this.sync = options.sync;
    this.syncWal = options.syncWal ?? fs.fsync;
    this.checkpointerOptions = options.checkpointer ?? DEFAULT_CHECKPOINTER;
    this.writer = {
      deferred: (write) => this.write('ownership', write, { trackHealth: false }),
      durable: (write) => this.write('ownership', write, { durable: true, trackHealth: false }),
      durableSoon: (write) => {
        this.write('ownership', write, { trackHealth: false });
        return this.settled();
      },
    };
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
    // IMMEDIATE: take the write lock at once (busy_timeout waits for another connection's writer)
    // rather than fail later when a read transaction cannot be upgraded.
    this.beginStmt = db.prepare('BEGIN IMMEDIATE');
    this.commitStmt = db.prepare('COMMIT');
    this.inSavepoint = db.transaction((fn: () => unknown) => fn());
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
      throw new Error(`journal: cannot create data directory ${dir}: ${errorText(error)}`);
    }
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma('journal_mode = WAL');
      const mode = db.pragma('journal_mode', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
      // `full` is SQLite's NORMAL plus an fsync of the WAL after each commit, off the event loop
      // (see walSyncNeeded): FULL would fsync inside COMMIT, on the event loop, once per group.
      db.pragma('synchronous = NORMAL');
      // Other connections (tools reading the journal) may hold the lock briefly.
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      // A write probe: SQLite silently opens a write-protected file read-only, and
      // CREATE TABLE IF NOT EXISTS writes nothing when the table exists.
      db.pragma(`user_version = ${SCHEMA_VERSION}`);
    } catch (error) {
      db?.close();
      throw new Error(`journal: cannot open ${file} for writing: ${errorText(error)}`);
    }
    let walFd: number | undefined;
    if (options.sync === 'full') {
      try {
        // The write probe above created the WAL. Its fsyncs (and its directory entry's, once) make
        // the commits durable; the file stays while this connection is open (SQLite removes it
        // when the last connection closes).
        walFd = fs.openSync(`${file}-wal`, 'r+');
        fs.fsyncSync(walFd);
        syncDirectory(dir);
      } catch (error) {
        if (walFd !== undefined) fs.closeSync(walFd);
        walFd = undefined;
        // Without the file, let SQLite fsync inside each COMMIT: same guarantee, on the event loop.
        db.pragma('synchronous = FULL');
        options.log.warn('journal: WAL fsync off the event loop unavailable, SQLite syncs each commit', {
          path: file,
          error: errorText(error),
        });
      }
    }
    const journal = new Journal(db, file, options);
    journal.walFd = walFd;
    options.log.debug('journal opened', { path: file, sync: options.sync, pending: journal.pendingCount() });
    return journal;
  }

  append(delivery: NewDelivery): Promise<'accepted' | 'duplicate'> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    return new Promise((resolve, reject) => {
      this.group.push({ delivery, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Resolves once every write made so far is committed (at once if none waits). Rejects when the
   * group could not be committed: its state changes are lost and the rows keep their earlier state.
   */
  settled(): Promise<void> {
    if (!this.txOpen && this.group.length === 0 && this.lostError === undefined) {
      // Everything is committed; with `sync: full`, wait for the fsync of the last commit too.
      if (this.unsynced.length === 0) return Promise.resolve();
      return new Promise((resolve, reject) => this.unsynced[this.unsynced.length - 1]!.waiters.push({ resolve, reject }));
    }
    return new Promise((resolve, reject) => this.settleWaiters.push({ resolve, reject }));
  }

  /** fsyncs of the WAL done off the event loop so far (`sync: full`). */
  get walSyncCount(): number {
    return this.walSyncs;
  }

  /** Transactions committed so far (each one WAL commit, one fsync with `sync: full`). */
  get commitCount(): number {
    return this.commits;
  }

  /** setImmediate, not a microtask: requests parsed in the same poll phase all join the group. */
  private scheduleFlush(): void {
    this.flushScheduled ??= setImmediate(() => this.flush());
  }

  /** Opens the group transaction if it is not open yet; the next flush commits it. */
  private openGroup(): void {
    if (this.txOpen) {
      if (this.db.inTransaction) return;
      // Rolled back under us (an error SQLite answers with a rollback): what it held is lost.
      this.txOpen = false;
      this.lostError ??= new Error(`journal ${this.path}: the group transaction was rolled back`);
    }
    this.beginStmt.run();
    this.txOpen = true;
    this.scheduleFlush();
  }

  /**
   * Inserts the waiting appends and commits the group in one transaction, then settles each
   * append's promise and every {@link settled} waiter. Returns the commit's error, if any.
   */
  private flush(): unknown {
    if (this.flushScheduled) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    const appends = this.group;
    this.group = [];
    const waiters = this.settleWaiters;
    this.settleWaiters = [];

    let outcomes: ('accepted' | 'duplicate')[] | undefined;
    let appendError: unknown;
    if (appends.length > 0) {
      try {
        this.openGroup();
        // A savepoint inside the group: a failed insert undoes the appends, not the state changes.
        outcomes = this.commitGroup(appends, Date.now());
      } catch (error) {
        appendError = error;
      }
    }
    const lost = this.lostError;
    this.lostError = undefined;
    let commitError: unknown;
    let committed = false;
    if (this.txOpen) {
      this.txOpen = false;
      try {
        if (!this.db.inTransaction) throw new Error(`journal ${this.path}: the group transaction was rolled back`);
        this.commitStmt.run();
        this.commits++;
        committed = true;
      } catch (error) {
        commitError = error;
        // SQLite may or may not have rolled back already (SQLITE_FULL, IOERR, BUSY): make sure.
        if (this.db.inTransaction) {
          try {
            this.db.exec('ROLLBACK');
          } catch {
            // nothing left to undo
          }
        }
      }
    }

    const failure = commitError ?? appendError;
    if (appends.length > 0 && (failure !== undefined || outcomes === undefined)) {
      this.unhealthy('append', failure, appends.length);
      for (const w of appends) w.reject(failure);
    }
    if (commitError !== undefined && appends.length === 0) this.unhealthy('commit', commitError, 0);
    const accepted = failure === undefined && outcomes !== undefined ? appends : [];

    if (committed && this.walFd !== undefined) {
      // Acknowledged once an fsync of the WAL covers this commit (appends, settled() waiters).
      this.unsynced.push({ commit: this.commits, appends: accepted, outcomes: outcomes ?? [], waiters, lost, healthy: appendError === undefined });
      this.walSyncNeeded();
    } else {
      if (committed && appendError === undefined) this.healthyAgain();
      for (let i = 0; i < accepted.length; i++) accepted[i]!.resolve(outcomes![i]!);
      const groupError = commitError ?? lost;
      for (const w of waiters) {
        if (groupError === undefined) w.resolve();
        else w.reject(groupError);
      }
    }
    if (committed && outcomes !== undefined && this.checkpointerOptions && !this.checkpointer) {
      for (const w of appends) this.appendedBytes += w.delivery.body.length;
      if (this.appendedBytes >= this.checkpointerOptions.afterBytes) this.startCheckpointer(this.checkpointerOptions.intervalMs);
    }
    return commitError;
  }

  /**
   * Hands checkpoints to a worker thread (see BackgroundCheckpointer), started only once the journal
   * sees real traffic: a tool or a test that writes a few rows needs no thread.
   */
  private startCheckpointer(intervalMs: number): void {
    if (this.closed) return;
    try {
      this.checkpointer = BackgroundCheckpointer.start({
        file: this.path,
        sync: this.sync,
        intervalMs,
        log: this.log,
        onStopped: () => {
          this.checkpointer = undefined;
          this.checkpointerOptions = false; // not again: checkpoint here, as SQLite does by default
          if (!this.closed) this.db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
        },
      });
    } catch (error) {
      this.log.warn('journal checkpointer not started: checkpointing on the main thread', { path: this.path, error: errorText(error) });
      this.checkpointerOptions = false;
      return;
    }
    this.db.pragma(`wal_autocheckpoint = ${SAFETY_AUTOCHECKPOINT_PAGES}`);
  }

  /**
   * `sync: full`: fsyncs the WAL on the thread pool, one sync at a time; each covers every commit
   * made before it started (an fsync flushes the whole file), so commits made meanwhile share the
   * next one. The event loop goes on serving requests while the disk syncs.
   */
  private walSyncNeeded(): void {
    if (this.syncing || this.walFd === undefined || this.syncedCommits >= this.commits) return;
    const upTo = this.commits;
    const fd = this.walFd;
    let finished!: () => void;
    this.syncing = new Promise<void>((resolve) => (finished = resolve));
    this.syncWal(fd, (error) => {
      this.syncing = undefined;
      finished();
      this.walSynced(upTo, error ?? undefined);
      if (!this.closed) this.walSyncNeeded();
    });
  }

  /** Settles the groups committed up to `upTo`: acknowledged, or rejected if their fsync failed. */
  private walSynced(upTo: number, error: unknown): void {
    this.walSyncs++;
    // Handled either way: a failed fsync is not retried for the same commits (their appends are
    // refused below); the next commit's fsync flushes the whole file again.
    this.syncedCommits = Math.max(this.syncedCommits, upTo);
    const done: Unsynced[] = [];
    while (this.unsynced.length > 0 && this.unsynced[0]!.commit <= upTo) done.push(this.unsynced.shift()!);
    if (error === undefined) {
      if (done.every((u) => u.healthy)) this.healthyAgain();
    } else {
      // The rows are committed but may not be on disk: the appends are refused (the receiver answers
      // 503; Gitea shows the delivery failed and it can be redelivered). If they were written after
      // all, an evaluation of them is harmless (evaluations are idempotent).
      const appends = done.reduce((n, u) => n + u.appends.length, 0);
      this.unhealthy('fsync', error, appends);
    }
    for (const u of done) {
      for (let i = 0; i < u.appends.length; i++) {
        if (error === undefined) u.appends[i]!.resolve(u.outcomes[i]!);
        else u.appends[i]!.reject(error);
      }
      const groupError = error ?? u.lost;
      for (const w of u.waiters) {
        if (groupError === undefined) w.resolve();
        else w.reject(groupError);
      }
    }
  }

  /** `sync: full`: fsyncs the WAL now, on the event loop (durable writes, close). */
  private syncWalNow(): void {
    if (this.walFd === undefined || this.syncedCommits >= this.commits) return;
    const upTo = this.commits;
    let error: unknown;
    try {
      fs.fsyncSync(this.walFd);
    } catch (e) {
      error = e;
    }
    this.walSynced(upTo, error);
    if (error !== undefined) throw error;
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

  /** Joins the group: visible here at once, durable with the group (see the class comment). */
  markDone(ids: readonly string[]): void {
    const now = Date.now();
    this.write(
      'markDone',
      () => {
        for (const id of ids) this.markDoneStmt.run(now, id);
      },
      { single: ids.length === 1 },
    );
  }

  /** Joins the group; the scheduler awaits {@link settled} before it retries. */
  recordFailure(ids: readonly string[], error: string): void {
    this.write(
      'recordFailure',
      () => {
        for (const id of ids) this.recordFailureStmt.run(error, id);
      },
      { single: ids.length === 1 },
    );
  }

  /** Joins the group; the scheduler awaits {@link settled} before it reports the dead letter. */
  markFailed(ids: readonly string[], error: string): void {
    const now = Date.now();
    this.write(
      'markFailed',
      () => {
        for (const id of ids) this.markFailedStmt.run(error, now, id);
      },
      { single: ids.length === 1 },
    );
  }

  /** Durable on return (a tool's request, and other processes read the result). */
  requeue(ids: readonly string[]): void {
    this.write(
      'requeue',
      () => {
        for (const id of ids) this.requeueStmt.run(id);
      },
      { durable: true },
    );
  }

  get(id: string): StoredDelivery | undefined {
    const row = this.getStmt.get(id);
    return row ? toStored(row) : undefined;
  }

  /** Rows matching every given field, oldest first; with `limit`, the newest `limit` rows. */
  query(filter: JournalFilter): StoredDelivery[] {
    return queryDeliveries(this.db, filter);
  }

  prune(before: number): number {
    return this.write('prune', () => this.pruneStmt.run(before).changes, { durable: true, single: true });
  }

  healthy(): boolean {
    return this.isHealthy && !this.closed;
  }

  /** Commits the open group (appends waiting in it and state changes), then closes the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    // The last commits' fsync, then what waited for it is acknowledged.
    await this.syncing;
    try {
      this.syncWalNow();
    } catch {
      // reported (unhealthy) and rejected in walSynced
    }
    if (this.walFd !== undefined) fs.closeSync(this.walFd);
    this.walFd = undefined;
    // Its connection closes first: the journal's, the last one, then checkpoints and removes the WAL.
    const checkpointer = this.checkpointer;
    this.checkpointer = undefined;
    await checkpointer?.close();
    this.db.close();
  }

  /**
   * Runs a write atomically (a savepoint) inside the open group transaction, tracking health like
   * appends do. `durable`: commits (and with `sync: full` fsyncs) the group before returning, and
   * throws if that fails. `single`: one statement, atomic by itself: no savepoint needed.
   * `trackHealth` false: a failing statement of another store (its own bug, e.g. a constraint) does
   * not make the journal unhealthy; a failing commit still does.
   */
  private write<T>(what: string, fn: () => T, options: { durable?: boolean; single?: boolean; trackHealth?: boolean } = {}): T {
    if (this.closed) throw new Error(`journal ${this.path} is closed`);
    let result: T;
    try {
      this.openGroup();
      result = options.single ? fn() : (this.inSavepoint(fn) as T);
    } catch (error) {
      if (options.trackHealth !== false) this.unhealthy(what, error, 0);
      if (this.txOpen && !this.db.inTransaction) {
        // SQLite rolled the whole group back (SQLITE_FULL, IOERR, …): the earlier writes are gone.
        this.txOpen = false;
        this.lostError = error;
        this.scheduleFlush();
      }
      throw error;
    }
    if (options.durable) {
      const error = this.flush();
      if (error !== undefined) throw error;
      this.syncWalNow();
    }
    return result;
  }

  private unhealthy(what: string, error: unknown, deliveries: number): void {
    if (this.isHealthy) {
      this.log.error('journal write failed', {
        operation: what,
        path: this.path,
        error: errorText(error),
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

/**
 * Rows of the `deliveries` table matching every given field, oldest first; with `limit`, the newest
 * `limit` rows. Shared by the {@link Journal} and the tools' read-only reader (src/journal/reader.ts).
 */
export function queryDeliveries(db: Database.Database, filter: JournalFilter): StoredDelivery[] {
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
  const rows = db.prepare<(string | number)[], Row>(sql).all(...params);
  return rows.reverse().map(toStored);
}

/** fsync of a directory, so that a file created in it survives a power cut (Linux; elsewhere best effort). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms cannot open or fsync a directory: their file systems order this themselves.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
