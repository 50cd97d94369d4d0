import type pg from 'pg';
import { quoteIdent } from './schema.js';

/** A statement's parameters. */
export type Params = readonly unknown[];

/** A pooled connection whose statements name the store's tables as `{table}`. */
export interface DbClient {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: Params): Promise<pg.QueryResult<R>>;
  /** Back to the pool; with an error the connection is dropped instead (it may be broken). */
  release(error?: Error): void;
}

/**
 * The pool, with every table qualified by the store's schema: a statement names a table `{deliveries}`
 * and runs as `"schema".deliveries`. Qualified names instead of a connection-level `search_path`:
 * they survive a pooler in transaction mode (PgBouncer), which does not keep session settings.
 */
export class Db {
  private readonly texts = new Map<string, string>();
  private readonly prefix: string;

  constructor(
    readonly pool: pg.Pool,
    readonly schema: string,
  ) {
    this.prefix = `${quoteIdent(schema)}.`;
  }

  /** `text` with each `{table}` qualified (cached: the same statements run again and again). */
  sql(text: string): string {
    let qualified = this.texts.get(text);
    if (qualified === undefined) {
      qualified = text.replace(/\{([a-z_]+)\}/g, (_, table: string) => this.prefix + table);
      this.texts.set(text, qualified);
    }
    return qualified;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: Params): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(this.sql(text), params as unknown[] | undefined);
  }

  async connect(): Promise<DbClient> {
    const client = await this.pool.connect();
    // pg-pool takes its idle 'error' listener off a client it hands out (pg-pool `_acquireClient`),
    // and pg's Client emits 'error' when its connection ends unexpectedly: with no listener that
    // would end the process while the database is unreachable. The query in flight rejects by
    // itself (its caller answers 503); this listener only keeps the process up until `release`.
    const onError = () => undefined;
    client.on('error', onError);
    return {
      query: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, params?: Params) =>
        client.query<R>(this.sql(text), params as unknown[] | undefined),
      release: (error?: Error) => {
        client.removeListener('error', onError);
        client.release(error);
      },
    };
  }
}
