import type Database from 'better-sqlite3';
import type { Journal } from '../../journal/journal.js';
import { checkTtl, type ContextGenerations, type Fence, type Lease, type LeaseStore, leaderName, StaleLeaseError } from '../api.js';
import { writerOf } from './writer.js';

interface LeaseRow {
  name: string;
  holder: string | null;
  token: number;
  expires_at: number;
}

/**
 * Leases in the journal's database. SQLite has one writer at a time across every process on the
 * file, and each write below runs inside the journal's open group transaction (`BEGIN IMMEDIATE`,
 * the write lock): the read and the write of a grant cannot interleave with another process's.
 * Time is this host's clock, which every process on the same DATA_DIR shares.
 * docs/architecture.md, "The store".
 */
export class SqliteLeases implements LeaseStore {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(
    private readonly journal: Journal,
    private readonly now: () => number = Date.now,
  ) {
    this.db = journal.db;
    this.stmt = {
      get: this.db.prepare<[string], LeaseRow>('SELECT name, holder, token, expires_at FROM store_leases WHERE name = ?'),
      upsert: this.db.prepare(
        `INSERT INTO store_leases (name, holder, token, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires_at = excluded.expires_at`,
      ),
      extend: this.db.prepare('UPDATE store_leases SET expires_at = ? WHERE name = ? AND token = ? AND holder = ?'),
      release: this.db.prepare('UPDATE store_leases SET holder = NULL, expires_at = 0 WHERE name = ? AND token = ? AND holder = ?'),
    };
  }

  acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.committed(() => this.grant(name, holder, ttlMs, false));
  }

  leader(job: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.committed(() => this.grant(leaderName(job), holder, ttlMs, true));
  }

  renew(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkTtl(ttlMs);
    return this.committed(() => {
      const expiresAt = this.now() + ttlMs;
      const changed = this.stmt.extend.run(expiresAt, lease.name, lease.token, lease.holder).changes;
      return changed === 1 ? { ...lease, expiresAt } : undefined;
    });
  }

  async release(lease: Lease): Promise<void> {
    await this.committed(() => this.stmt.release.run(lease.name, lease.token, lease.holder));
  }

  async current(name: string): Promise<Lease | undefined> {
    const row = this.stmt.get.get(name);
    return row && live(row, this.now()) ? toLease(row) : undefined;
  }

  /**
   * Releases the live leases of processes that are gone: SQLite is one host's store, so a holder
   * named `host:pid:…` (service/cluster.ts `holderName`) on this host whose pid no longer runs died
   * holding them (a crash, SIGKILL). A restart then takes its subjects at once instead of waiting for
   * their expiry. A pid that runs (maybe reused by another process) keeps its leases: they expire.
   * Returns how many were released.
   */
  async releaseDeadHolders(host: string, isAlive: (pid: number) => boolean): Promise<number> {
    const rows = this.db
      .prepare<[number], LeaseRow>('SELECT name, holder, token, expires_at FROM store_leases WHERE holder IS NOT NULL AND expires_at > ?')
      .all(this.now());
    const dead = rows.filter((row) => {
      const m = /^(.+):(\d+):[^:]+$/.exec(row.holder!);
      return m !== null && m[1] === host && !isAlive(Number(m[2]));
    });
    if (dead.length === 0) return 0;
    await this.committed(() => {
      for (const row of dead) this.stmt.release.run(row.name, row.token, row.holder);
    });
    return dead.length;
  }

  /** Throws {@link StaleLeaseError} unless `fence` carries the subject's current grant. */
  checkFence(fence: Fence): void {
    const row = this.stmt.get.get(fence.subject);
    if (!row || row.holder === null || row.token !== fence.token) throw new StaleLeaseError(fence.subject, fence.token, row?.token);
  }

  private grant(name: string, holder: string, ttlMs: number, renewOwn: boolean): Lease | undefined {
    checkTtl(ttlMs);
    const now = this.now();
    const row = this.stmt.get.get(name);
    const expiresAt = now + ttlMs;
    if (row && live(row, now)) {
      if (!renewOwn || row.holder !== holder) return undefined;
      this.stmt.extend.run(expiresAt, name, row.token, holder);
      return { name, holder, token: row.token, expiresAt };
    }
    const token = (row?.token ?? 0) + 1;
    this.stmt.upsert.run(name, holder, token, expiresAt);
    return { name, holder, token, expiresAt };
  }

  /** Runs `write` in the journal's group transaction; resolves with its result once committed. */
  private async committed<T>(write: () => T): Promise<T> {
    let result!: T;
    await writerOf(this.journal).durableSoon(() => {
      result = write();
    });
    return result;
  }
}

export class SqliteGenerations implements ContextGenerations {
  private readonly stmt;

  constructor(private readonly journal: Journal) {
    this.stmt = {
      bump: journal.db.prepare<[string], { generation: number }>(
        `INSERT INTO store_context_generations (repo, generation) VALUES (?, 1)
         ON CONFLICT (repo) DO UPDATE SET generation = generation + 1 RETURNING generation`,
      ),
      get: journal.db.prepare<[string], { generation: number }>('SELECT generation FROM store_context_generations WHERE repo = ?'),
    };
  }

  async bump(repo: string): Promise<number> {
    let generation = 0;
    await writerOf(this.journal).durableSoon(() => {
      generation = this.stmt.bump.get(repo.toLowerCase())!.generation;
    });
    return generation;
  }

  async get(repo: string): Promise<number> {
    return this.stmt.get.get(repo.toLowerCase())?.generation ?? 0;
  }
}

function live(row: LeaseRow, now: number): boolean {
  return row.holder !== null && row.expires_at > now;
}

function toLease(row: LeaseRow): Lease {
  return { name: row.name, holder: row.holder!, token: row.token, expiresAt: row.expires_at };
}
