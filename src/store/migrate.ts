import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { DbClient } from './postgres/db.js';
import type { PostgresStore } from './postgres/store.js';

/**
 * Copies an embedded store (DATA_DIR/journal.db) into a PostgreSQL store: the journal (every
 * delivery with its state, attempts and times, in journal order) and the ownership records (labels
 * the bot owns, removals by people, known label sets, the label event log, write intents, command
 * replies), so the label promises survive the move. Leases and context generations are not copied:
 * they only matter while processes run.
 *
 * Idempotent: every row is inserted with ON CONFLICT DO NOTHING on its key (a delivery's id; an
 * issue's label; a label event's origin in the SQLite file), so a second run copies nothing new and
 * a run after new deliveries copies only those. One transaction: a failed run copies nothing.
 * docs/architecture.md, "The store".
 */
export interface CopiedTable {
  /** Rows in the SQLite store. */
  read: number;
  /** Rows inserted into PostgreSQL (the others were there already). */
  copied: number;
}

export type CopyReport = Record<(typeof TABLES)[number]['name'], CopiedTable>;

interface TableCopy {
  name: string;
  /** The SQLite table; a store that never recorded ownership may lack it. */
  source: string;
  select: string;
  target: string;
  columns: readonly string[];
  types: readonly string[];
  conflict: string;
}

const TABLES = [
  {
    name: 'deliveries',
    source: 'deliveries',
    select: `SELECT id, event, event_type, action, subject, repo, number, updated_at, sender, headers, body, state, reason,
                    attempts, last_error, received_at, finished_at FROM deliveries ORDER BY seq`,
    target: 'deliveries',
    columns: ['id', 'event', 'event_type', 'action', 'subject', 'repo', 'number', 'updated_at', 'sender', 'headers', 'body', 'state', 'reason', 'attempts', 'last_error', 'received_at', 'finished_at'],
    types: ['text', 'text', 'text', 'text', 'text', 'text', 'int', 'text', 'text', 'text', 'text', 'text', 'text', 'int', 'text', 'bigint', 'bigint'],
    conflict: '(id)',
  },
  {
    name: 'labelOwners',
    source: 'triage_label_owner',
    select: 'SELECT repo, number, label, kind, user, rule, config_version, evidence, delivery, added_at FROM triage_label_owner ORDER BY repo, number, label',
    target: 'label_owner',
    columns: ['repo', 'number', 'label', 'kind', 'actor', 'rule', 'config_version', 'evidence', 'delivery', 'added_at'],
    types: ['text', 'int', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint'],
    conflict: '(repo, number, label)',
  },
  {
    name: 'labelsRemoved',
    source: 'triage_label_removed',
    select: 'SELECT repo, number, label, user, kind, delivery, removed_at FROM triage_label_removed ORDER BY repo, number, label',
    target: 'label_removed',
    columns: ['repo', 'number', 'label', 'actor', 'kind', 'delivery', 'removed_at'],
    types: ['text', 'int', 'text', 'text', 'text', 'text', 'bigint'],
    conflict: '(repo, number, label)',
  },
  {
    name: 'knownLabels',
    source: 'triage_known_labels',
    select: 'SELECT repo, number, labels, updated_at, recorded_at FROM triage_known_labels ORDER BY repo, number',
    target: 'known_labels',
    columns: ['repo', 'number', 'labels', 'updated_at', 'recorded_at'],
    types: ['text', 'int', 'text', 'text', 'bigint'],
    conflict: '(repo, number)',
  },
  {
    name: 'labelEvents',
    source: 'triage_label_event',
    // The origin key: the row's seq in the file, with enough of the row that another file's seq 1 differs.
    select: `SELECT repo, number, label, action, kind, user, rule, evidence, config_version, delivery, at,
                    'sqlite:' || seq || ':' || at || ':' || repo || '#' || number || ':' || label AS imported_from
               FROM triage_label_event ORDER BY seq`,
    target: 'label_event',
    columns: ['repo', 'number', 'label', 'action', 'kind', 'actor', 'rule', 'evidence', 'config_version', 'delivery', 'at', 'imported_from'],
    types: ['text', 'int', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text'],
    conflict: '(imported_from)',
  },
  {
    name: 'writeIntents',
    source: 'triage_label_pending',
    select: 'SELECT repo, number, label, change, config_version, delivery, at FROM triage_label_pending ORDER BY repo, number, label',
    target: 'label_pending',
    columns: ['repo', 'number', 'label', 'change', 'config_version', 'delivery', 'at'],
    types: ['text', 'int', 'text', 'text', 'text', 'text', 'bigint'],
    conflict: '(repo, number, label)',
  },
  {
    name: 'commandReplies',
    source: 'triage_command_reply',
    select: 'SELECT repo, comment_id, comment_updated_at, at FROM triage_command_reply ORDER BY repo, comment_id',
    target: 'command_reply',
    columns: ['repo', 'comment_id', 'comment_updated_at', 'at'],
    types: ['text', 'bigint', 'text', 'bigint'],
    conflict: '(repo, comment_id, comment_updated_at)',
  },
] as const satisfies readonly TableCopy[];

/** Rows per INSERT. */
const BATCH = 500;

/** Opens `dataDir/journal.db` read-only; throws naming the file when there is none. */
export function openSqliteSource(dataDir: string): Database.Database {
  const file = path.join(path.resolve(dataDir), 'journal.db');
  if (!fs.existsSync(file)) throw new Error(`no journal at ${file} (is --from right?)`);
  return new Database(file, { readonly: true, fileMustExist: true });
}

/** Copies everything in one transaction of `target`; returns the counts per table. */
export async function copySqliteToPostgres(source: Database.Database, target: PostgresStore): Promise<CopyReport> {
  const client = await target.db.connect();
  const report = {} as CopyReport;
  try {
    await client.query('BEGIN');
    for (const table of TABLES) report[table.name] = await copyTable(source, client, table);
    await client.query('COMMIT');
    client.release();
    return report;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
}

async function copyTable(source: Database.Database, client: DbClient, table: TableCopy): Promise<CopiedTable> {
  const exists = source.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table.source);
  if (!exists) return { read: 0, copied: 0 };
  const sql = `INSERT INTO {${table.target}} (${table.columns.join(', ')})
    SELECT ${table.columns.map((c) => `t.${c}`).join(', ')}
      FROM unnest(${table.types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) WITH ORDINALITY AS t(${table.columns.join(', ')}, ord)
     ORDER BY t.ord
    ON CONFLICT ${table.conflict} DO NOTHING`;
  let read = 0;
  let copied = 0;
  let batch: unknown[][] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const columns = table.columns.map((_, i) => batch.map((row) => row[i]));
    copied += (await client.query(sql, columns)).rowCount ?? 0;
    batch = [];
  };
  // iterate(): rows stream from SQLite, a batch at a time in memory.
  for (const row of source.prepare(table.select).raw().iterate() as Iterable<unknown[]>) {
    batch.push(row);
    read++;
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return { read, copied };
}
