import type pg from 'pg';
import type { Db, DbClient } from './db.js';
import type { ChangeMeta, KnownLabels, LabelChange, LabelChangeKind, LabelEvent, OwnedLabel } from '../../applier/ownership.js';
import type { Ownership } from '../../triage/types.js';
import { type Fence, type OwnershipStore, StaleLeaseError } from '../api.js';
import { checkFence } from './leases.js';
import { NOW_MS } from './schema.js';

/**
 * The ownership records on PostgreSQL, with the same meaning as the SQLite ones
 * (applier/ownership.ts: who added which label under which rule, what a person removed, write
 * intents). Every write is one transaction, committed when its promise resolves; a fenced one
 * first checks the subject's lease in that transaction (see `checkFence`).
 * Repo keys are lower-cased: Gitea's owner and repo names are case-insensitive (it keys both by
 * `LowerName`: models/user/user.go `User`, models/repo/repo.go `Repository`, v1.22.2).
 */
export class PgOwnership implements OwnershipStore {
  constructor(
    private readonly db: Db,
    private readonly onResult: (error: unknown) => void,
  ) {}

  async ownership(repo: string, number: number): Promise<Ownership> {
    const key = repo.toLowerCase();
    const [owned, removed] = await Promise.all([
      this.db.query<{ label: string }>(`SELECT label FROM {label_owner} WHERE repo = $1 AND number = $2 AND kind = 'rule' ORDER BY label`, [key, number]),
      this.db.query<{ label: string }>('SELECT label FROM {label_removed} WHERE repo = $1 AND number = $2 ORDER BY label', [key, number]),
    ]);
    return { botOwned: new Set(owned.rows.map((r) => r.label)), humanRemoved: new Set(removed.rows.map((r) => r.label)) };
  }

  async owned(repo: string, number: number): Promise<OwnedLabel[]> {
    const { rows } = await this.db.query(
      'SELECT label, kind, actor, rule, config_version, evidence, delivery, added_at FROM {label_owner} WHERE repo = $1 AND number = $2 ORDER BY label',
      [repo.toLowerCase(), number],
    );
    return rows.map((r) => ({
      label: r.label,
      kind: r.kind,
      user: r.actor,
      rule: r.rule,
      configVersion: r.config_version,
      evidence: r.evidence,
      delivery: r.delivery,
      addedAt: Number(r.added_at),
    }));
  }

  async events(repo: string, number: number): Promise<LabelEvent[]> {
    const { rows } = await this.db.query(
      `SELECT repo, number, label, action, kind, actor, rule, evidence, config_version, delivery, at
         FROM {label_event} WHERE repo = $1 AND number = $2 ORDER BY seq`,
      [repo.toLowerCase(), number],
    );
    return rows.map((r) => ({
      repo: r.repo,
      number: r.number,
      label: r.label,
      action: r.action,
      kind: r.kind as LabelChangeKind,
      user: r.actor,
      rule: r.rule,
      evidence: r.evidence,
      configVersion: r.config_version,
      delivery: r.delivery,
      at: Number(r.at),
    }));
  }

  record(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    if (changes.length === 0 && !fence) return Promise.resolve();
    return this.transaction(fence, (c) => applyChanges(c, repo.toLowerCase(), number, changes, meta));
  }

  intend(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    return this.transaction(fence, async (c) => {
      for (const change of changes) {
        await c.query(
          `INSERT INTO {label_pending} (repo, number, label, change, config_version, delivery, at) VALUES ($1, $2, $3, $4, $5, $6, ${NOW_MS})
           ON CONFLICT (repo, number, label) DO UPDATE SET change = excluded.change, config_version = excluded.config_version,
             delivery = excluded.delivery, at = excluded.at`,
          [repo.toLowerCase(), number, change.label, JSON.stringify(change), meta.configVersion ?? null, meta.delivery],
        );
      }
    });
  }

  async pending(repo: string, number: number): Promise<{ change: LabelChange; meta: ChangeMeta }[]> {
    const { rows } = await this.db.query<{ change: string; config_version: string | null; delivery: string | null }>(
      'SELECT change, config_version, delivery FROM {label_pending} WHERE repo = $1 AND number = $2 ORDER BY label',
      [repo.toLowerCase(), number],
    );
    return rows.map((r) => ({ change: JSON.parse(r.change) as LabelChange, meta: { delivery: r.delivery, configVersion: r.config_version } }));
  }

  clearPending(repo: string, number: number, fence?: Fence): Promise<void> {
    return this.transaction(fence, async (c) => {
      await c.query('DELETE FROM {label_pending} WHERE repo = $1 AND number = $2', [repo.toLowerCase(), number]);
    });
  }

  recordApplied(repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta, fence?: Fence): Promise<void> {
    return this.transaction(fence, async (c) => {
      await applyChanges(c, repo.toLowerCase(), number, changes, meta);
      await c.query('DELETE FROM {label_pending} WHERE repo = $1 AND number = $2', [repo.toLowerCase(), number]);
    });
  }

  async unknownRemovals(repo: string, number: number): Promise<string[]> {
    const { rows } = await this.db.query<{ label: string }>(
      `SELECT label FROM {label_removed} WHERE repo = $1 AND number = $2 AND kind = 'unknown' ORDER BY label`,
      [repo.toLowerCase(), number],
    );
    return rows.map((r) => r.label);
  }

  /** The same meaning as applier/ownership.ts's `attributeRemovals`: only rows still `unknown` change. */
  attributeRemovals(repo: string, number: number, labels: readonly string[], user: string, delivery: string | null, fence?: Fence): Promise<void> {
    if (labels.length === 0 && !fence) return Promise.resolve();
    const key = repo.toLowerCase();
    return this.transaction(fence, async (c) => {
      for (const label of labels) {
        const changed = await c.query(
          `UPDATE {label_removed} SET kind = 'person', actor = $4, delivery = $5
            WHERE repo = $1 AND number = $2 AND label = $3 AND kind = 'unknown'`,
          [key, number, label, user, delivery],
        );
        if (changed.rowCount !== 1) continue;
        await c.query(
          `UPDATE {label_event} SET kind = 'person', actor = $4
            WHERE kind = 'unknown' AND seq = (SELECT max(seq) FROM {label_event}
                                               WHERE repo = $1 AND number = $2 AND label = $3 AND action = 'removed')`,
          [key, number, label, user],
        );
      }
    });
  }

  async known(repo: string, number: number): Promise<KnownLabels | undefined> {
    const { rows } = await this.db.query<{ labels: string; updated_at: string | null; recorded_at: string }>(
      'SELECT labels, updated_at, recorded_at FROM {known_labels} WHERE repo = $1 AND number = $2',
      [repo.toLowerCase(), number],
    );
    const row = rows[0];
    return row ? { labels: JSON.parse(row.labels) as string[], updatedAt: row.updated_at, recordedAt: Number(row.recorded_at) } : undefined;
  }

  /** One conditional upsert: an older set (by `updated_at`) loses against a newer one, even when both race. */
  setKnown(repo: string, number: number, labels: readonly string[], updatedAt: string | null, fence?: Fence): Promise<boolean> {
    const sorted = [...new Set(labels)].sort();
    return this.transaction(fence, async (c) => {
      const result = await c.query(
        `INSERT INTO {known_labels} AS k (repo, number, labels, updated_at, recorded_at) VALUES ($1, $2, $3, $4, ${NOW_MS})
         ON CONFLICT (repo, number) DO UPDATE SET labels = excluded.labels, updated_at = excluded.updated_at, recorded_at = excluded.recorded_at
          WHERE excluded.updated_at IS NULL OR k.updated_at IS NULL OR k.updated_at::timestamptz <= excluded.updated_at::timestamptz`,
        [repo.toLowerCase(), number, JSON.stringify(sorted), updatedAt],
      );
      return result.rowCount === 1;
    });
  }

  async replied(repo: string, commentId: number, commentUpdatedAt: string): Promise<boolean> {
    const { rowCount } = await this.db.query('SELECT 1 FROM {command_reply} WHERE repo = $1 AND comment_id = $2 AND comment_updated_at = $3', [
      repo.toLowerCase(),
      commentId,
      commentUpdatedAt,
    ]);
    return rowCount === 1;
  }

  markReplied(repo: string, commentId: number, commentUpdatedAt: string, fence?: Fence): Promise<void> {
    return this.transaction(fence, async (c) => {
      await c.query(
        `INSERT INTO {command_reply} (repo, comment_id, comment_updated_at, at) VALUES ($1, $2, $3, ${NOW_MS}) ON CONFLICT DO NOTHING`,
        [repo.toLowerCase(), commentId, commentUpdatedAt],
      );
    });
  }

  /** Runs `fn` in one transaction, after the fence check when there is a fence. */
  private async transaction<T>(fence: Fence | undefined, fn: (client: DbClient) => Promise<T>): Promise<T> {
    let client: DbClient;
    try {
      client = await this.db.connect();
    } catch (error) {
      this.onResult(error);
      throw error;
    }
    let failed: Error | undefined;
    try {
      await client.query('BEGIN');
      if (fence) await checkFence(client, fence);
      const result = await fn(client);
      await client.query('COMMIT');
      this.onResult(undefined);
      return result;
    } catch (error) {
      if (!(error instanceof StaleLeaseError)) {
        this.onResult(error);
        failed = error instanceof Error ? error : new Error(String(error));
      }
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      // After an error the connection may be broken or mid-query (a timeout): the pool drops it.
      client.release(failed);
    }
  }
}

/** What label changes mean for ownership (the same rules as applier/ownership.ts's `applyChanges`). */
async function applyChanges(c: DbClient, repo: string, number: number, changes: readonly LabelChange[], meta: ChangeMeta): Promise<void> {
  for (const change of changes) {
    const common = [repo, number, change.label];
    await c.query(
      `INSERT INTO {label_event} (repo, number, label, action, kind, actor, rule, evidence, config_version, delivery, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, ${NOW_MS})`,
      [...common, change.action, change.kind, change.user, change.rule ?? null, change.evidence ?? null, meta.configVersion ?? null, meta.delivery],
    );
    if (change.action === 'added') {
      // Whoever adds a label cancels an earlier removal by a person.
      await c.query('DELETE FROM {label_removed} WHERE repo = $1 AND number = $2 AND label = $3', common);
      if (change.kind === 'rule' || change.kind === 'command') {
        await c.query(
          `INSERT INTO {label_owner} (repo, number, label, kind, actor, rule, config_version, evidence, delivery, added_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, ${NOW_MS})
           ON CONFLICT (repo, number, label) DO UPDATE SET kind = excluded.kind, actor = excluded.actor, rule = excluded.rule,
             config_version = excluded.config_version, evidence = excluded.evidence, delivery = excluded.delivery, added_at = excluded.added_at`,
          [...common, change.kind, change.user, change.rule ?? null, meta.configVersion ?? null, change.evidence ?? null, meta.delivery],
        );
      } else {
        // A person's own add makes the label theirs: no rule may remove it.
        await c.query('DELETE FROM {label_owner} WHERE repo = $1 AND number = $2 AND label = $3', common);
      }
    } else {
      await c.query('DELETE FROM {label_owner} WHERE repo = $1 AND number = $2 AND label = $3', common);
      // A rule removing its own label is not a person's decision; anything else is.
      if (change.kind !== 'rule') {
        await c.query(
          `INSERT INTO {label_removed} (repo, number, label, actor, kind, delivery, removed_at) VALUES ($1, $2, $3, $4, $5, $6, ${NOW_MS})
           ON CONFLICT (repo, number, label) DO UPDATE SET actor = excluded.actor, kind = excluded.kind,
             delivery = excluded.delivery, removed_at = excluded.removed_at`,
          [...common, change.user, change.kind, meta.delivery],
        );
      }
    }
  }
}
