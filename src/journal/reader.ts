import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { errorText } from '../errors.js';
import type { JournalFilter } from './api.js';
import { queryDeliveries } from './journal.js';
import type { StoredDelivery } from './types.js';

/**
 * Read-only access to a journal for the operator tools (explain, export, replay, a backfill dry run):
 * nothing in `DATA_DIR` is written, created or locked for writing, so a tool can read the journal of a
 * running service, or one in a read-only directory, and leave `journal.db` byte for byte as it was.
 *
 * Two ways in (see `docs/architecture.md`, the store):
 * - **live**: better-sqlite3 `readonly: true` on the file itself. For a WAL database this needs the
 *   `-wal` and `-shm` files to exist already (a service has the journal open, or was killed): SQLite
 *   would otherwise create them, or fail with SQLITE_READONLY_DIRECTORY where it cannot
 *   (https://www.sqlite.org/wal.html#readonly). Sees what the service commits while it reads.
 * - **snapshot**: an in-memory copy, when the live way is closed: a WAL journal without `-wal`
 *   (the service stopped cleanly: the file holds everything) is read as bytes; one with a `-wal` that
 *   cannot be opened read-only is copied with its `-wal` to a private temporary directory, opened
 *   there (SQLite applies the WAL) and serialized. The copy can be written (the tools' dry runs record
 *   their bookkeeping in a copy anyway); nothing reaches `DATA_DIR`.
 */
export interface JournalReader {
  /** The journal's database: read-only (live) or an in-memory copy (snapshot). */
  readonly db: Database.Database;
  readonly file: string;
  readonly mode: 'live' | 'snapshot';
  /** The journal's rows matching every given field, oldest first (as `JournalApi.query`). */
  query(filter: JournalFilter): StoredDelivery[];
  get(id: string): StoredDelivery | undefined;
  close(): void;
}

/** A journal file that is missing or is not a gitea-triage journal. */
export class JournalReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JournalReadError';
  }
}

/** Opens `<dataDir>/journal.db` for reading only; never creates it. */
export function openJournalReader(dataDir: string): JournalReader {
  const file = path.join(path.resolve(dataDir), 'journal.db');
  if (!fs.existsSync(file)) throw new JournalReadError(`no journal at ${file} (is DATA_DIR right?)`);
  const wal = isWalDatabase(file);
  let db: Database.Database | undefined;
  if (!wal || (fs.existsSync(`${file}-wal`) && fs.existsSync(`${file}-shm`))) db = openLive(file);
  const mode = db ? 'live' : 'snapshot';
  db ??= snapshot(file);
  checkSchema(db, file);
  const opened = db;
  return {
    db: opened,
    file,
    mode,
    query: (filter) => queryDeliveries(opened, filter),
    get: (id) => queryDeliveries(opened, { id })[0],
    close: () => opened.close(),
  };
}

/** Bytes 18-19 of the header are the write/read format versions: 2 for WAL, 1 for a rollback journal (https://www.sqlite.org/fileformat2.html#database_header). */
function isWalDatabase(file: string): boolean {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.readSync(fd, header, 0, 20, 0) < 20) return false;
  } finally {
    fs.closeSync(fd);
  }
  return header[18] === 2 || header[19] === 2;
}

/** The file itself, read-only; undefined when SQLite cannot read it that way (then a snapshot is taken). */
function openLive(file: string): Database.Database | undefined {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.prepare('SELECT count(*) FROM sqlite_master').get(); // the first read is where WAL access fails
    return db;
  } catch {
    db?.close();
    return undefined;
  }
}

/** An in-memory copy of the journal with what its `-wal` holds; DATA_DIR is only read. */
function snapshot(file: string): Database.Database {
  try {
    if (!fs.existsSync(`${file}-wal`)) return memoryDatabase(fs.readFileSync(file));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitea-triage-journal-'));
    try {
      const copy = path.join(dir, 'journal.db');
      fs.copyFileSync(file, copy);
      fs.copyFileSync(`${file}-wal`, `${copy}-wal`);
      const db = new Database(copy, { fileMustExist: true });
      try {
        return memoryDatabase(db.serialize());
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } catch (error) {
    throw new JournalReadError(`cannot read the journal ${file}: ${errorText(error)}`);
  }
}

/**
 * A database image as an in-memory database. An in-memory database cannot be in WAL mode
 * ("unable to open database file"): the header's format bytes are set to 1 (rollback journal).
 */
export function memoryDatabase(image: Buffer): Database.Database {
  if (image[18] === 2) image[18] = 1;
  if (image[19] === 2) image[19] = 1;
  return new Database(image);
}

function checkSchema(db: Database.Database, file: string): void {
  let found: unknown;
  try {
    found = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'").get();
  } catch (error) {
    db.close();
    throw new JournalReadError(`cannot read the journal ${file}: ${errorText(error)}`);
  }
  if (!found) {
    db.close();
    throw new JournalReadError(`${file} is not a gitea-triage journal (no deliveries table)`);
  }
}
