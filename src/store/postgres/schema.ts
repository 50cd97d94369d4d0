import type pg from 'pg';

/**
 * The PostgreSQL store's schema, as versioned migrations (docs/architecture.md, "The store").
 * `migratePostgresStore` applies the missing ones in ONE transaction under a transaction-scoped
 * advisory lock: when several replicas start at once, the first migrates and the others wait for
 * its commit, then find nothing to do. Never edit a released migration: add the next version.
 */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE deliveries (
        seq         bigserial PRIMARY KEY,
        id          text NOT NULL UNIQUE,
        event       text NOT NULL,
        event_type  text NOT NULL,
        action      text,
        subject     text,
        repo        text,
        number      integer,
        updated_at  text,
        sender      text,
        headers     text NOT NULL,
        body        text NOT NULL,
        state       text NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'ignored')),
        reason      text,
        attempts    integer NOT NULL DEFAULT 0,
        last_error  text,
        received_at bigint NOT NULL,
        finished_at bigint
      );
      -- The backlog is a small part of the table (done rows are the history): a partial index keeps
      -- the pending walks (per subject, subjects by oldest row, the count) proportional to it.
      -- Every index costs each append: none beyond what a query needs.
      CREATE INDEX deliveries_pending_subject ON deliveries (subject, seq) WHERE state = 'pending';
      CREATE INDEX deliveries_subject ON deliveries (subject, seq);
      CREATE INDEX deliveries_repo ON deliveries (repo, seq);
      CREATE INDEX deliveries_received_at ON deliveries (received_at);

      CREATE TABLE leases (
        name       text PRIMARY KEY,
        holder     text,
        token      bigint NOT NULL,
        expires_at bigint NOT NULL
      );
      CREATE TABLE context_generations (
        repo       text PRIMARY KEY,
        generation bigint NOT NULL
      );

      CREATE TABLE label_owner (
        repo text NOT NULL, number integer NOT NULL, label text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('rule', 'command')),
        actor text, rule text, config_version text, evidence text, delivery text,
        added_at bigint NOT NULL,
        PRIMARY KEY (repo, number, label)
      );
      CREATE TABLE label_removed (
        repo text NOT NULL, number integer NOT NULL, label text NOT NULL,
        actor text, kind text NOT NULL, delivery text, removed_at bigint NOT NULL,
        PRIMARY KEY (repo, number, label)
      );
      CREATE TABLE known_labels (
        repo text NOT NULL, number integer NOT NULL,
        labels text NOT NULL, updated_at text, recorded_at bigint NOT NULL,
        PRIMARY KEY (repo, number)
      );
      CREATE TABLE label_event (
        seq bigserial PRIMARY KEY,
        repo text NOT NULL, number integer NOT NULL, label text NOT NULL,
        action text NOT NULL CHECK (action IN ('added', 'removed')),
        kind text NOT NULL CHECK (kind IN ('rule', 'command', 'person', 'unknown')),
        actor text, rule text, evidence text, config_version text, delivery text,
        at bigint NOT NULL,
        -- Set by migrate-store (the SQLite row it came from): copying twice adds nothing.
        imported_from text UNIQUE
      );
      CREATE INDEX label_event_issue ON label_event (repo, number, seq);
      CREATE TABLE label_pending (
        repo text NOT NULL, number integer NOT NULL, label text NOT NULL, change text NOT NULL,
        config_version text, delivery text, at bigint NOT NULL,
        PRIMARY KEY (repo, number, label)
      );
      CREATE TABLE command_reply (
        repo text NOT NULL, comment_id bigint NOT NULL, comment_updated_at text NOT NULL,
        at bigint NOT NULL,
        PRIMARY KEY (repo, comment_id, comment_updated_at)
      );`,
  },
];

/** The newest schema version this code knows. */
export const POSTGRES_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** First key of the advisory lock (an arbitrary constant: "gt" "st"); the second is the schema's hash. */
const LOCK_KEY = 0x67747374;

/** The store's clock, in epoch ms: PostgreSQL's, the one every replica shares. */
export const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Creates the schema if needed and applies the missing migrations; returns the versions applied. */
export async function migratePostgresStore(pool: pg.Pool, schema: string): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_KEY, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    await client.query('CREATE TABLE IF NOT EXISTS store_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM store_migrations');
    const done = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...done);
    if (newest > POSTGRES_SCHEMA_VERSION) {
      throw new Error(`schema ${schema} is at version ${newest}, newer than this release knows (${POSTGRES_SCHEMA_VERSION}): upgrade gitea-triage`);
    }
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO store_migrations (version) VALUES ($1)', [m.version]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
    client.release();
    return applied;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

/**
 * For a read-only open: the schema holds a store (its migrations table) at a version this release
 * knows. Creates nothing: a mistyped DATABASE_SCHEMA says so instead of showing an empty history.
 */
export async function checkPostgresStore(pool: pg.Pool, schema: string): Promise<void> {
  const { rows } = await pool.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [`${quoteIdent(schema)}.store_migrations`]);
  if (rows[0]?.found == null) throw new Error(`no gitea-triage store in schema ${schema} (is DATABASE_SCHEMA right?)`);
  const versions = await pool.query<{ newest: number | null }>(`SELECT max(version) AS newest FROM ${quoteIdent(schema)}.store_migrations`);
  const newest = versions.rows[0]?.newest ?? 0;
  if (newest > POSTGRES_SCHEMA_VERSION) {
    throw new Error(`schema ${schema} is at version ${newest}, newer than this release knows (${POSTGRES_SCHEMA_VERSION}): upgrade gitea-triage`);
  }
  if (newest < POSTGRES_SCHEMA_VERSION) {
    throw new Error(`schema ${schema} is at version ${newest}, older than this release's (${POSTGRES_SCHEMA_VERSION}): start the service once to migrate it`);
  }
}
