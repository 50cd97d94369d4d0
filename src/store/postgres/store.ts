import pg from 'pg';
import { redactDatabaseUrl } from '../../config/config.js';
import type { Logger } from '../../log/logger.js';
import type { Store } from '../api.js';
import { PgDeliveries } from './deliveries.js';
import { PgGenerations, PgLeases } from './leases.js';
import { PgOwnership } from './ownership.js';
import { Db } from './db.js';
import { checkPostgresStore, migratePostgresStore } from './schema.js';

export interface PostgresStoreOptions {
  /** `postgres://…`; holds a password: never logged as is. */
  url: string;
  /** Schema of the tables (created and migrated by `open`). */
  schema: string;
  /** Most connections this process opens. */
  poolSize: number;
  log: Logger;
  /** How long a connection attempt may take (default 5 s): an unreachable database fails fast. */
  connectTimeoutMs?: number;
  /**
   * How long a query may wait for its answer (default 15 s). A database behind a cut network
   * answers nothing (no reset): without it an append would wait forever instead of failing, and the
   * receiver could neither answer 202 nor 503.
   */
  queryTimeoutMs?: number;
  /**
   * A tool that only reads: every session runs with `default_transaction_read_only = on` (the
   * server refuses any write, SQLSTATE 25006), and the schema is neither created nor migrated, only
   * checked to hold a store this release can read.
   */
  readOnly?: boolean;
}

/**
 * The store for several replicas (docs/architecture.md, "The store"): every table in one schema of
 * one PostgreSQL database, through a bounded `pg` pool; statements name the tables qualified by that
 * schema (see `Db`). Durability and failover are PostgreSQL's (replication, a managed service); this
 * store's job is that the replicas sharing it stay correct when any of them dies.
 */
export class PostgresStore implements Store {
  readonly backend = 'postgres' as const;
  readonly location: string;
  readonly deliveries: PgDeliveries;
  readonly ownership: PgOwnership;
  readonly leases: PgLeases;
  readonly generations: PgGenerations;
  /** The pool with the schema's tables named `{table}` in statements (tools, tests). */
  readonly db: Db;

  private isHealthy = true;
  private closed = false;

  private constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
    url: string,
    private readonly log: Logger,
  ) {
    this.location = `${redactDatabaseUrl(url)} (schema ${schema})`;
    this.db = new Db(pool, schema);
    const onResult = (error: unknown) => this.observe(error);
    this.deliveries = new PgDeliveries(this.db, onResult);
    this.ownership = new PgOwnership(this.db, onResult);
    this.leases = new PgLeases(this.db);
    this.generations = new PgGenerations(this.db);
  }

  /** Connects, creates the schema and applies its migrations (several replicas may do so at once). */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
      query_timeout: options.queryTimeoutMs ?? 15_000,
      keepAlive: true,
      application_name: options.readOnly ? 'gitea-triage-tool' : 'gitea-triage',
      ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // An idle connection dropped by the server (restart, failover) must not crash the process; the
    // pool replaces it, and the next query reports the outage where it matters.
    pool.on('error', (error) => options.log.warn('database connection lost', { error: describe(error, options.url) }));
    const store = new PostgresStore(pool, options.schema, options.url, options.log);
    try {
      if (options.readOnly) {
        await checkPostgresStore(pool, options.schema);
        options.log.info('store opened', { backend: 'postgres', location: store.location, readOnly: true });
      } else {
        const applied = await migratePostgresStore(pool, options.schema);
        options.log.info('store opened', { backend: 'postgres', location: store.location, migrations: applied });
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw new Error(`cannot open the PostgreSQL store at ${store.location}: ${describe(error, options.url)}`);
    }
    return store;
  }

  /** A round trip to the server (for `/readyz`). */
  async healthy(): Promise<boolean> {
    if (this.closed) return false;
    try {
      await this.db.query('SELECT 1');
      this.observe(undefined);
      return true;
    } catch (error) {
      this.observe(error);
      return false;
    }
  }

  /** Waits for the appends in flight, then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.deliveries.close();
    await this.pool.end();
  }

  /** Logs the transitions between reachable and unreachable, once each. */
  private observe(error: unknown): void {
    if (error === undefined) {
      if (!this.isHealthy) this.log.warn('database reachable again', { location: this.location });
      this.isHealthy = true;
      return;
    }
    if (this.isHealthy && isConnectionError(error)) {
      this.log.error('database unreachable', { location: this.location, error: describe(error, '') });
      this.isHealthy = false;
    }
  }
}

/** Errors of the connection, not of a statement (those are bugs or constraint outcomes). */
function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^(08|57P|53)/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|timeout|terminat|Connection/i.test(message);
}

/** One line, without the URL's password even if the driver echoed it. */
function describe(error: unknown, url: string): string {
  let text = error instanceof Error ? error.message || error.name : String(error);
  try {
    const password = url ? decodeURIComponent(new URL(url).password) : '';
    if (password.length >= 1) text = text.split(password).join('***');
  } catch {
    // not a URL: nothing to mask
  }
  return text;
}
