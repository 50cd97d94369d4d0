import type Database from 'better-sqlite3';
import type { GroupedWriter, Journal } from '../../journal/journal.js';
import type { Ownership } from '../../triage/types.js';
import type { ChangeMeta, KnownLabels, LabelChange, LabelChangeKind, LabelEvent, OwnedLabel } from '../../applier/ownership.js';

/**
 * The ownership records (applier/ownership.ts for their meaning) in a SQLite database: the journal's
 * for the SQLite store (src/store/sqlite/store.ts wraps them behind the async interface), or a
 * scratch copy for a dry run (src/store/sqlite/records.ts).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS triage_label_owner (
  repo TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('rule', 'command')),
  user TEXT, rule TEXT, config_version TEXT, evidence TEXT, delivery TEXT,
  added_at INTEGER NOT NULL,
  PRIMARY KEY (repo, number, label)
);
CREATE TABLE IF NOT EXISTS triage_label_removed (
  repo TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL,
  user TEXT, kind TEXT NOT NULL, delivery TEXT, removed_at INTEGER NOT NULL,
  PRIMARY KEY (repo, number, label)
);
CREATE TABLE IF NOT EXISTS triage_known_labels (
  repo TEXT NOT NULL, number INTEGER NOT NULL,
  labels TEXT NOT NULL, updated_at TEXT, recorded_at INTEGER NOT NULL,
  PRIMARY KEY (repo, number)
);
CREATE TABLE IF NOT EXISTS triage_label_event (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  repo TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL,
  action TEXT NOT NULL CHECK (action IN ('added', 'removed')),
  kind TEXT NOT NULL CHECK (kind IN ('rule', 'command', 'person', 'unknown')),
  user TEXT, rule TEXT, evidence TEXT, config_version TEXT, delivery TEXT,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS triage_label_event_issue ON triage_label_event (repo, number, seq);
CREATE TABLE IF NOT EXISTS triage_label_pending (
  repo TEXT NOT NULL, number INTEGER NOT NULL, label TEXT NOT NULL, change TEXT NOT NULL,
  config_version TEXT, delivery TEXT, at INTEGER NOT NULL,
  PRIMARY KEY (repo, number, label)
);
CREATE TABLE IF NOT EXISTS triage_command_reply (
  repo TEXT NOT NULL, comment_id INTEGER NOT NULL, comment_updated_at TEXT NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (repo, comment_id, comment_updated_at)
);
`;

interface OwnerRow {
  label: string;
  kind: 'rule' | 'command';
  user: string | null;
  rule: string | null;
  config_version: string | null;
  evidence: string | null;
  delivery: string | null;
  added_at: number;
}

interface EventRow {
  repo: string;
  number: number;
  label: string;
  action: 'added' | 'removed';
  kind: LabelChangeKind;
  user: string | null;
  rule: string | null;
  evidence: string | null;
  config_version: string | null;
  delivery: string | null;
  at: number;
}

/**
 * The ownership records of every issue, on a better-sqlite3 database (the journal's). Synchronous.
 *
 * On the journal's database, writes join the journal's group commit (one commit and fsync for
 * everything written in one tick, see `Journal`): this process reads them back at once; a crash
 * before the group commits loses them together with the evaluation's `done`, so the evaluation runs
 * again and redoes them. The exceptions must be on disk before a request to Gitea depends on them:
 * `intend` (before a label write) and `markReplied` (after a reply was posted) commit at once.
 * On any other database each write commits on its own.
 */
export interface OwnershipStoreOptions {
  /** The journal's group writer, when the tables live in the journal's database (see `forJournal`). */
  writer?: GroupedWriter;
  /** The clock (epoch ms), for tests. */
  now?: () => number;
}

export class OwnershipStore {
  private readonly db: Database.Database;
  private readonly now: () => number;
  /** The journal's group writer when the tables share its database; undefined: each write commits on its own. */
  private readonly writer: GroupedWriter | undefined;
  private readonly stmt;
  private readonly applyChanges: (repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => void;
  private readonly insertPending: (repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => void;
  private readonly recordAndClear: (repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => void;

  /** The store on the journal's database, its writes joining the journal's group commit. */
  static forJournal(journal: Pick<Journal, 'db' | 'writer'>, options: Omit<OwnershipStoreOptions, 'writer'> = {}): OwnershipStore {
    return new OwnershipStore(journal.db, { ...options, writer: journal.writer });
  }

  /** Without `writer`, each write is its own transaction on `db` (a scratch copy, a test database). */
  constructor(db: Database.Database, options: OwnershipStoreOptions = {}) {
    this.db = db;
    this.now = options.now ?? Date.now;
    this.writer = options.writer;
    // A read-only database (a tool's view of a journal, src/journal/reader.ts) has the tables already
    // and cannot run even `CREATE … IF NOT EXISTS`; its writes fail, its reads work.
    if (!db.readonly) db.exec(SCHEMA);
    this.stmt = {
      owned: db.prepare<[string, number], OwnerRow>(
        'SELECT label, kind, user, rule, config_version, evidence, delivery, added_at FROM triage_label_owner WHERE repo = ? AND number = ? ORDER BY label',
      ),
      removed: db.prepare<[string, number], { label: string }>(
        'SELECT label FROM triage_label_removed WHERE repo = ? AND number = ? ORDER BY label',
      ),
      upsertOwner: db.prepare(
        `INSERT INTO triage_label_owner (repo, number, label, kind, user, rule, config_version, evidence, delivery, added_at)
         VALUES (@repo, @number, @label, @kind, @user, @rule, @configVersion, @evidence, @delivery, @at)
         ON CONFLICT (repo, number, label) DO UPDATE SET kind = excluded.kind, user = excluded.user, rule = excluded.rule,
           config_version = excluded.config_version, evidence = excluded.evidence, delivery = excluded.delivery, added_at = excluded.added_at`,
      ),
      deleteOwner: db.prepare('DELETE FROM triage_label_owner WHERE repo = ? AND number = ? AND label = ?'),
      upsertRemoved: db.prepare(
        `INSERT INTO triage_label_removed (repo, number, label, user, kind, delivery, removed_at)
         VALUES (@repo, @number, @label, @user, @kind, @delivery, @at)
         ON CONFLICT (repo, number, label) DO UPDATE SET user = excluded.user, kind = excluded.kind,
           delivery = excluded.delivery, removed_at = excluded.removed_at`,
      ),
      deleteRemoved: db.prepare('DELETE FROM triage_label_removed WHERE repo = ? AND number = ? AND label = ?'),
      insertEvent: db.prepare(
        `INSERT INTO triage_label_event (repo, number, label, action, kind, user, rule, evidence, config_version, delivery, at)
         VALUES (@repo, @number, @label, @action, @kind, @user, @rule, @evidence, @configVersion, @delivery, @at)`,
      ),
      events: db.prepare<[string, number], EventRow>(
        'SELECT repo, number, label, action, kind, user, rule, evidence, config_version, delivery, at FROM triage_label_event WHERE repo = ? AND number = ? ORDER BY seq',
      ),
      known: db.prepare<[string, number], { labels: string; updated_at: string | null; recorded_at: number }>(
        'SELECT labels, updated_at, recorded_at FROM triage_known_labels WHERE repo = ? AND number = ?',
      ),
      upsertKnown: db.prepare(
        `INSERT INTO triage_known_labels (repo, number, labels, updated_at, recorded_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (repo, number) DO UPDATE SET labels = excluded.labels, updated_at = excluded.updated_at, recorded_at = excluded.recorded_at`,
      ),
      hasReply: db.prepare<[string, number, string], { one: number }>(
        'SELECT 1 AS one FROM triage_command_reply WHERE repo = ? AND comment_id = ? AND comment_updated_at = ?',
      ),
      insertReply: db.prepare(
        'INSERT OR IGNORE INTO triage_command_reply (repo, comment_id, comment_updated_at, at) VALUES (?, ?, ?, ?)',
      ),
      insertPending: db.prepare(
        'INSERT OR REPLACE INTO triage_label_pending (repo, number, label, change, config_version, delivery, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      pending: db.prepare<[string, number], { change: string; config_version: string | null; delivery: string | null }>(
        'SELECT change, config_version, delivery FROM triage_label_pending WHERE repo = ? AND number = ?',
      ),
      clearPending: db.prepare('DELETE FROM triage_label_pending WHERE repo = ? AND number = ?'),
      unknownRemoved: db.prepare<[string, number], { label: string }>(
        "SELECT label FROM triage_label_removed WHERE repo = ? AND number = ? AND kind = 'unknown' ORDER BY label",
      ),
      attributeRemoved: db.prepare(
        `UPDATE triage_label_removed SET kind = 'person', user = @user, delivery = @delivery
         WHERE repo = @repo AND number = @number AND label = @label AND kind = 'unknown'`,
      ),
      attributeEvent: db.prepare(
        `UPDATE triage_label_event SET kind = 'person', user = @user
         WHERE kind = 'unknown' AND seq = (SELECT max(seq) FROM triage_label_event WHERE repo = @repo AND number = @number AND label = @label AND action = 'removed')`,
      ),
    };
    this.insertPending = db.transaction((repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => {
      for (const c of changes) {
        this.stmt.insertPending.run(repo, number, c.label, JSON.stringify(c), meta.configVersion ?? null, meta.delivery, this.now());
      }
    });
    this.recordAndClear = db.transaction((repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => {
      this.record(repo, number, changes, meta);
      this.stmt.clearPending.run(repo.toLowerCase(), number);
    });
    this.applyChanges = db.transaction((repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta) => {
      const at = this.now();
      for (const change of changes) {
        const row = {
          repo,
          number,
          label: change.label,
          kind: change.kind,
          user: change.user,
          rule: change.rule ?? null,
          evidence: change.evidence ?? null,
          configVersion: meta.configVersion ?? null,
          delivery: meta.delivery,
          at,
        };
        this.stmt.insertEvent.run({ ...row, action: change.action });
        if (change.action === 'added') {
          // Whoever adds a label cancels an earlier removal by a person.
          this.stmt.deleteRemoved.run(repo, number, change.label);
          if (change.kind === 'rule' || change.kind === 'command') this.stmt.upsertOwner.run(row);
          // A person's own add makes the label theirs: no rule may remove it.
          else this.stmt.deleteOwner.run(repo, number, change.label);
        } else {
          this.stmt.deleteOwner.run(repo, number, change.label);
          // A rule removing its own label is not a person's decision; anything else is.
          if (change.kind !== 'rule') this.stmt.upsertRemoved.run(row);
        }
      }
    });
  }

  /**
   * Label writes about to be sent (written before the request): if the process dies before their
   * answer is recorded, the next evaluation finds them and does not take them for a person's.
   * Resolves once the intent is on disk: the caller sends the request only then. The intents of
   * concurrent evaluations share the journal's group commit and its fsync (off the event loop).
   */
  intend(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta): Promise<void> {
    return this.durableSoon(() => this.insertPending(repo.toLowerCase(), number, changes, meta));
  }

  /** Writes sent before a crash, whose outcome was never recorded. */
  pending(repo: string, number: number): { change: LabelChange; meta: ChangeMeta }[] {
    return this.stmt.pending
      .all(repo.toLowerCase(), number)
      .map((r) => ({ change: JSON.parse(r.change) as LabelChange, meta: { delivery: r.delivery, configVersion: r.config_version } }));
  }

  clearPending(repo: string, number: number): void {
    this.deferred(() => this.stmt.clearPending.run(repo.toLowerCase(), number));
  }

  /**
   * Records the outcome of the writes and forgets their intent, in one transaction. Deferred: until
   * it commits, the intent (durable) still tells the next evaluation whose labels these are.
   */
  recordApplied(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta): void {
    this.deferred(() => this.recordAndClear(repo, number, changes, meta));
  }

  /** What `decide` needs: labels the rules own, labels a person removed. */
  ownership(repo: string, number: number): Ownership {
    const key = repo.toLowerCase();
    const botOwned = new Set(
      this.stmt
        .owned.all(key, number)
        .filter((r) => r.kind === 'rule')
        .map((r) => r.label),
    );
    const humanRemoved = new Set(this.stmt.removed.all(key, number).map((r) => r.label));
    return { botOwned, humanRemoved };
  }

  /** Labels added by the rules or by commands and not removed since, with why. */
  owned(repo: string, number: number): OwnedLabel[] {
    return this.stmt.owned.all(repo.toLowerCase(), number).map((r) => ({
      label: r.label,
      kind: r.kind,
      user: r.user,
      rule: r.rule,
      configVersion: r.config_version,
      evidence: r.evidence,
      delivery: r.delivery,
      addedAt: r.added_at,
    }));
  }

  /** Records label changes (one transaction) and what they mean for ownership. */
  record(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta): void {
    if (changes.length === 0) return;
    this.deferred(() => this.applyChanges(repo.toLowerCase(), number, changes, meta));
  }

  /** Labels whose removal was recorded without knowing who made it (`unknown`). */
  unknownRemovals(repo: string, number: number): string[] {
    return this.stmt.unknownRemoved.all(repo.toLowerCase(), number).map((r) => r.label);
  }

  /**
   * A removal recorded as `unknown` is explained by a person's label delivery that came later: the
   * removal (and its event) becomes that person's. One removal, not a second one.
   */
  attributeRemovals(repo: string, number: number, labels: readonly string[], user: string, delivery: string | null): void {
    if (labels.length === 0) return;
    const key = repo.toLowerCase();
    this.deferred(() => {
      for (const label of labels) {
        const row = { repo: key, number, label, user, delivery };
        if (this.stmt.attributeRemoved.run(row).changes > 0) this.stmt.attributeEvent.run(row);
      }
    });
  }

  /** The label event log of one issue, oldest first. */
  events(repo: string, number: number): LabelEvent[] {
    return this.stmt.events.all(repo.toLowerCase(), number).map((r) => ({
      repo: r.repo,
      number: r.number,
      label: r.label,
      action: r.action,
      kind: r.kind,
      user: r.user,
      rule: r.rule,
      evidence: r.evidence,
      configVersion: r.config_version,
      delivery: r.delivery,
      at: r.at,
    }));
  }

  known(repo: string, number: number): KnownLabels | undefined {
    const row = this.stmt.known.get(repo.toLowerCase(), number);
    if (!row) return undefined;
    return { labels: JSON.parse(row.labels) as string[], updatedAt: row.updated_at, recordedAt: row.recorded_at };
  }

  /**
   * Stores the label set. With `updatedAt` (from a payload or a read), an older set never
   * replaces a newer one: deliveries arrive out of order. Returns whether the set was stored.
   */
  setKnown(repo: string, number: number, labels: readonly string[], updatedAt: string | null): boolean {
    const key = repo.toLowerCase();
    return this.deferred(() => {
      if (updatedAt !== null) {
        const current = this.stmt.known.get(key, number);
        if (current?.updated_at && Date.parse(current.updated_at) > Date.parse(updatedAt)) return false;
      }
      const sorted = [...new Set(labels)].sort();
      this.stmt.upsertKnown.run(key, number, JSON.stringify(sorted), updatedAt, this.now());
      return true;
    });
  }

  /** True once a reply to this version of the comment was posted (so a retried evaluation does not post twice). */
  replied(repo: string, commentId: number, commentUpdatedAt: string): boolean {
    return this.stmt.hasReply.get(repo.toLowerCase(), commentId, commentUpdatedAt) !== undefined;
  }

  markReplied(repo: string, commentId: number, commentUpdatedAt: string): void {
    // Durable at once: the reply is posted already, a retried evaluation must not post it again.
    this.durable(() => this.stmt.insertReply.run(repo.toLowerCase(), commentId, commentUpdatedAt, this.now()));
  }

  /** A write that joins the journal's group commit (or commits on its own on another database). */
  private deferred<T>(write: () => T): T {
    return this.writer ? this.writer.deferred(write) : write();
  }

  /** A write on disk when this returns. */
  private durable<T>(write: () => T): T {
    return this.writer ? this.writer.durable(write) : write();
  }

  /** A write on disk when the promise resolves; concurrent ones share the group's commit and fsync. */
  private async durableSoon(write: () => void): Promise<void> {
    if (this.writer) await this.writer.durableSoon(write);
    else write();
  }
}
