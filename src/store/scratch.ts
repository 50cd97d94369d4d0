import Database from 'better-sqlite3';
import { OwnershipStore as SqliteOwnershipRecords } from '../applier/ownership.js';
import { parseSubject } from '../subject.js';
import type { Evaluator } from '../scheduler/types.js';
import type { OwnershipStore } from './api.js';
import { asyncOwnership } from './sqlite/records.js';

/**
 * The ownership records a dry run may write (backfill --dry-run, replay --local previews), whatever
 * the real store's backend: an in-memory SQLite database, seeded subject by subject from the real
 * store's records read through its {@link OwnershipStore} interface before the subject is
 * evaluated. The evaluator's bookkeeping (who removed which label, the known label set) lands here;
 * the real store, SQLite or PostgreSQL, is only read (docs/architecture.md, "The store").
 *
 * Without a source (a replay of an export file with no store) it starts empty.
 * Not seeded: command replies (they cannot be listed by issue); a dry run posts no reply anyway.
 */
export class ScratchOwnership {
  /** The scratch records behind the store's interface, for the evaluator (no fences: no leases here). */
  readonly ownership: OwnershipStore;
  private readonly db: Database.Database;
  private readonly seeded = new Map<string, Promise<void>>();
  private readonly insert;

  constructor(private readonly source?: Pick<OwnershipStore, 'owned' | 'events' | 'ownership' | 'known' | 'pending'>) {
    this.db = new Database(':memory:');
    this.ownership = asyncOwnership(new SqliteOwnershipRecords(this.db)); // creates the tables
    this.insert = {
      owner: this.db.prepare(
        `INSERT INTO triage_label_owner (repo, number, label, kind, user, rule, config_version, evidence, delivery, added_at)
         VALUES (@repo, @number, @label, @kind, @user, @rule, @configVersion, @evidence, @delivery, @addedAt)`,
      ),
      removed: this.db.prepare(
        `INSERT INTO triage_label_removed (repo, number, label, user, kind, delivery, removed_at)
         VALUES (@repo, @number, @label, @user, @kind, @delivery, @at)`,
      ),
      event: this.db.prepare(
        `INSERT INTO triage_label_event (repo, number, label, action, kind, user, rule, evidence, config_version, delivery, at)
         VALUES (@repo, @number, @label, @action, @kind, @user, @rule, @evidence, @configVersion, @delivery, @at)`,
      ),
      known: this.db.prepare('INSERT INTO triage_known_labels (repo, number, labels, updated_at, recorded_at) VALUES (?, ?, ?, ?, ?)'),
      pending: this.db.prepare(
        'INSERT INTO triage_label_pending (repo, number, label, change, config_version, delivery, at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
    };
  }

  /** Copies the records of the issues (`owner/repo#n`; other subjects have none) once each. */
  async seed(subjects: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const key of subjects) {
      const subject = parseSubject(key);
      if (!subject || subject.kind !== 'issue') continue;
      const repo = `${subject.owner}/${subject.repo}`.toLowerCase();
      const id = `${repo}#${subject.number}`;
      let wait = this.seeded.get(id);
      if (!wait) {
        wait = this.copy(repo, subject.number);
        this.seeded.set(id, wait);
      }
      waits.push(wait);
    }
    await Promise.all(waits);
  }

  /**
   * `inner` with each work item's subject seeded first: for runs whose subjects are not known up
   * front (a backfill lists them from Gitea as it goes).
   */
  seeding(inner: Evaluator): Evaluator {
    return {
      ...inner,
      evaluate: async (item, log) => {
        await this.seed([item.subject.key]);
        return inner.evaluate(item, log);
      },
    };
  }

  close(): void {
    this.db.close();
  }

  private async copy(repo: string, number: number): Promise<void> {
    if (!this.source) return;
    const [owned, events, ownership, known, pending] = await Promise.all([
      this.source.owned(repo, number),
      this.source.events(repo, number),
      this.source.ownership(repo, number),
      this.source.known(repo, number),
      this.source.pending(repo, number),
    ]);
    const write = this.db.transaction(() => {
      for (const o of owned) this.insert.owner.run({ repo, number, ...o });
      for (const e of events) this.insert.event.run({ ...e, repo, number });
      // A removal's who and when are its last `removed` event's (the records are written together).
      for (const label of ownership.humanRemoved) {
        const last = events.findLast((e) => e.label === label && e.action === 'removed');
        this.insert.removed.run({ repo, number, label, user: last?.user ?? null, kind: last?.kind ?? 'unknown', delivery: last?.delivery ?? null, at: last?.at ?? 0 });
      }
      if (known) this.insert.known.run(repo, number, JSON.stringify(known.labels), known.updatedAt, known.recordedAt);
      for (const p of pending) {
        this.insert.pending.run(repo, number, p.change.label, JSON.stringify(p.change), p.meta.configVersion ?? null, p.meta.delivery, 0);
      }
    });
    write();
  }
}
