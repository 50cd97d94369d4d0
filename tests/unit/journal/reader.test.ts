import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { OwnershipStore } from '../../../src/applier/ownership.js';
import { Journal } from '../../../src/journal/journal.js';
import { openJournalReader } from '../../../src/journal/reader.js';
import type { NewDelivery } from '../../../src/journal/types.js';
import { silentLogger } from '../../../src/log/logger.js';

const dirs: string[] = [];
const journals: Journal[] = [];

afterEach(async () => {
  for (const j of journals.splice(0)) await j.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-reader-'));
  dirs.push(dir);
  return dir;
}

let counter = 0;
function delivery(number: number): NewDelivery {
  counter++;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    event: 'issues',
    eventType: 'issues',
    action: 'opened',
    subject: `acme/widgets#${number}`,
    repo: 'acme/widgets',
    number,
    updatedAt: '2024-05-01T10:00:00Z',
    sender: 'alice',
    headers: { 'x-gitea-event': 'issues' },
    body: `{"number":${number}}`,
    state: 'pending',
  };
}

/** Every file of a directory with its size, mtime and SHA-256: what "unchanged" means here. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    const hash = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    out[name] = `${stat.size} ${stat.mtimeMs} ${hash}`;
  }
  return out;
}

async function journalWith(dataDir: string, numbers: number[]): Promise<Journal> {
  const journal = Journal.open({ dataDir, sync: 'full', log: silentLogger() });
  for (const n of numbers) await journal.append(delivery(n));
  new OwnershipStore(journal.db); // the ownership tables, as the service creates them
  return journal;
}

describe('openJournalReader', () => {
  it("reads a stopped service's journal from a copy in memory and leaves DATA_DIR exactly as it was", async () => {
    const dataDir = tempDir();
    await (await journalWith(dataDir, [1, 2, 2])).close();
    expect(fs.readdirSync(dataDir)).toEqual(['journal.db']);
    const before = fingerprint(dataDir);

    const reader = openJournalReader(dataDir);
    expect(reader.mode).toBe('snapshot');
    expect(reader.query({ subject: 'acme/widgets#2' }).map((r) => r.number)).toEqual([2, 2]);
    expect(reader.get(reader.query({})[0]!.id)?.subject).toBe('acme/widgets#1');
    // The ownership records can be read (explain) from the copy.
    expect(new OwnershipStore(reader.db).owned('acme/widgets', 1)).toEqual([]);
    reader.close();

    // No -wal or -shm left behind (they would belong to whoever ran the tool), the file untouched.
    expect(fingerprint(dataDir)).toEqual(before);
  });

  it("reads a running service's journal in place, read-only, and sees what it commits meanwhile", async () => {
    const dataDir = tempDir();
    const journal = await journalWith(dataDir, [1]);
    journals.push(journal);
    const reader = openJournalReader(dataDir);
    expect(reader.mode).toBe('live');
    expect(reader.db.readonly).toBe(true);
    expect(reader.query({}).map((r) => r.number)).toEqual([1]);
    await journal.append(delivery(3));
    expect(reader.query({}).map((r) => r.number)).toEqual([1, 3]);
    expect(() => reader.db.prepare('DELETE FROM deliveries').run()).toThrow(/readonly/);
    // The ownership records are readable through the read-only connection too.
    expect(new OwnershipStore(reader.db).owned('acme/widgets', 1)).toEqual([]);
    reader.close();
  });

  it('reads a journal whose -wal cannot be opened in place (no -shm) from a copy that includes the WAL', async () => {
    const live = tempDir();
    const journal = await journalWith(live, [1, 2]);
    journals.push(journal);
    // A copy of the files a killed service left, without the shared-memory index.
    const dataDir = tempDir();
    fs.copyFileSync(path.join(live, 'journal.db'), path.join(dataDir, 'journal.db'));
    fs.copyFileSync(path.join(live, 'journal.db-wal'), path.join(dataDir, 'journal.db-wal'));
    const before = fingerprint(dataDir);
    const reader = openJournalReader(dataDir);
    expect(reader.mode).toBe('snapshot');
    expect(reader.query({}).map((r) => r.number)).toEqual([1, 2]);
    reader.close();
    expect(fingerprint(dataDir)).toEqual(before);
  });

  it('never creates a journal, and refuses a database that is not one', () => {
    const empty = tempDir();
    expect(() => openJournalReader(empty)).toThrow(`no journal at ${path.join(empty, 'journal.db')} (is DATA_DIR right?)`);
    expect(fs.readdirSync(empty)).toEqual([]);

    const other = tempDir();
    const db = new Database(path.join(other, 'journal.db'));
    db.exec('CREATE TABLE t (x)');
    db.close();
    expect(() => openJournalReader(other)).toThrow(`${path.join(other, 'journal.db')} is not a gitea-triage journal (no deliveries table)`);
  });
});
