import type pg from 'pg';
import type { Db, DbClient } from './db.js';
import { checkTtl, type ContextGenerations, type Fence, type Lease, type LeaseStore, leaderName, StaleLeaseError } from '../api.js';
import { NOW_MS } from './schema.js';

interface Granted {
  token: string;
  expires_at: string;
}

/**
 * Grants `name` when it is free (never granted, released, expired), with the next fencing token,
 * in one statement: the row lock of ON CONFLICT serialises concurrent grants, and the loser sees
 * the winner's row in its WHERE and gets no row back. With `$4` (leader leases) the holder's own
 * live grant is renewed under the same token.
 */
const GRANT = `
  INSERT INTO {leases} AS l (name, holder, token, expires_at) VALUES ($1, $2, 1, ${NOW_MS} + $3)
  ON CONFLICT (name) DO UPDATE
     SET holder = excluded.holder,
         expires_at = excluded.expires_at,
         token = CASE WHEN $4 AND l.holder = excluded.holder AND l.expires_at > ${NOW_MS} THEN l.token ELSE l.token + 1 END
   WHERE l.holder IS NULL OR l.expires_at <= ${NOW_MS} OR ($4 AND l.holder = excluded.holder)
  RETURNING token, expires_at`;

/**
 * Leases on PostgreSQL, on its clock (one for every replica). docs/architecture.md, "The store".
 * A fenced write (see {@link checkFence}) reads the lease row FOR SHARE inside its own transaction:
 * a grant to another holder waits for that transaction, so the write either commits under a
 * current token or is refused.
 */
export class PgLeases implements LeaseStore {
  constructor(private readonly db: Db) {}

  acquire(name: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.grant(name, holder, ttlMs, false);
  }

  leader(job: string, holder: string, ttlMs: number): Promise<Lease | undefined> {
    return this.grant(leaderName(job), holder, ttlMs, true);
  }

  async renew(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkTtl(ttlMs);
    const { rows } = await this.db.query<{ expires_at: string }>(
      `UPDATE {leases} SET expires_at = ${NOW_MS} + $4 WHERE name = $1 AND token = $2 AND holder = $3 RETURNING expires_at`,
      [lease.name, lease.token, lease.holder, ttlMs],
    );
    return rows[0] ? { ...lease, expiresAt: Number(rows[0].expires_at) } : undefined;
  }

  async release(lease: Lease): Promise<void> {
    await this.db.query('UPDATE {leases} SET holder = NULL, expires_at = 0 WHERE name = $1 AND token = $2 AND holder = $3', [
      lease.name,
      lease.token,
      lease.holder,
    ]);
  }

  async current(name: string): Promise<Lease | undefined> {
    const { rows } = await this.db.query<{ holder: string } & Granted>(
      `SELECT holder, token, expires_at FROM {leases} WHERE name = $1 AND holder IS NOT NULL AND expires_at > ${NOW_MS}`,
      [name],
    );
    const row = rows[0];
    return row ? { name, holder: row.holder, token: Number(row.token), expiresAt: Number(row.expires_at) } : undefined;
  }

  private async grant(name: string, holder: string, ttlMs: number, renewOwn: boolean): Promise<Lease | undefined> {
    checkTtl(ttlMs);
    const { rows } = await this.db.query<Granted>(GRANT, [name, holder, ttlMs, renewOwn]);
    const row = rows[0];
    return row ? { name, holder, token: Number(row.token), expiresAt: Number(row.expires_at) } : undefined;
  }
}

/** Inside a write's transaction: throws {@link StaleLeaseError} unless `fence` holds the current grant. */
export async function checkFence(client: DbClient, fence: Fence): Promise<void> {
  const { rows } = await client.query<{ holder: string | null; token: string }>('SELECT holder, token FROM {leases} WHERE name = $1 FOR SHARE', [
    fence.subject,
  ]);
  const row = rows[0];
  if (!row || row.holder === null || Number(row.token) !== fence.token) {
    throw new StaleLeaseError(fence.subject, fence.token, row ? Number(row.token) : undefined);
  }
}

export class PgGenerations implements ContextGenerations {
  constructor(private readonly db: Db) {}

  async bump(repo: string): Promise<number> {
    const { rows } = await this.db.query<{ generation: string }>(
      `INSERT INTO {context_generations} AS g (repo, generation) VALUES ($1, 1)
       ON CONFLICT (repo) DO UPDATE SET generation = g.generation + 1 RETURNING generation`,
      [repo.toLowerCase()],
    );
    return Number(rows[0]!.generation);
  }

  async get(repo: string): Promise<number> {
    const { rows } = await this.db.query<{ generation: string }>('SELECT generation FROM {context_generations} WHERE repo = $1', [repo.toLowerCase()]);
    return rows[0] ? Number(rows[0].generation) : 0;
  }
}
