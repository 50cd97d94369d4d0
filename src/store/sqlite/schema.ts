import type Database from 'better-sqlite3';

/**
 * The SQLite store's own tables beside the journal's and the ownership records' (which create
 * theirs themselves): leases and context generations. Versioned: `store_migrations` holds the
 * versions applied, each migration runs once, in one transaction with its version row.
 * docs/architecture.md, "The store".
 */
const MIGRATIONS: readonly { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE store_leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT,
        token      INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE TABLE store_context_generations (
        repo       TEXT PRIMARY KEY,
        generation INTEGER NOT NULL
      );`,
  },
];

/** Applies the migrations not applied yet; returns the versions it applied. */
export function migrateSqliteStore(db: Database.Database): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS store_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
  const applied: number[] = [];
  // IMMEDIATE: a tool opening the same DATA_DIR at the same moment waits, then finds nothing to do.
  const run = db.transaction(() => {
    const done = new Set(db.prepare<[], { version: number }>('SELECT version FROM store_migrations').all().map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO store_migrations (version, applied_at) VALUES (?, ?)').run(m.version, Date.now());
      applied.push(m.version);
    }
  });
  run.immediate();
  return applied;
}
