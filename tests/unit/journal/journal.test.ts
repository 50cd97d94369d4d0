import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { OwnershipStore } from '../../../src/applier/ownership.js';
import { Journal } from '../../../src/journal/journal.js';
import type { NewDelivery } from '../../../src/journal/types.js';
import { createLogger, silentLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { spawnTs } from '../../helpers/process.js';
import { waitFor } from '../../helpers/wait.js';

const dirs: string[] = [];
const open: Journal[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
  dirs.push(dir);
  return dir;
}

function openJournal(dataDir = tempDir(), log = silentLogger()): Journal {
  const journal = Journal.open({ dataDir, sync: 'full', log });
  open.push(journal);
  return journal;
}

let counter = 0;
function delivery(overrides: Partial<NewDelivery> = {}): NewDelivery {
  counter++;
  const number = overrides.number ?? 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `acme/widgets#${number}`,
    repo: 'acme/widgets',
    number,
    updatedAt: '2024-05-01T10:00:00Z',
    sender: 'alice',
    headers: { 'x-gitea-event': 'issues', 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'edited', issue: { number } }),
    state: 'pending',
    ...overrides,
  };
}

/**
 * Commits recorded in the write-ahead log: frames whose header carries a non-zero "database size
 * after commit" and the current salts (https://www.sqlite.org/fileformat2.html#walformat).
 * Counts what SQLite wrote to disk, independent of the journal's own code.
 */
function walCommits(journal: Journal): number {
  const wal = fs.readFileSync(`${journal.path}-wal`);
  if (wal.length < 32) return 0;
  const pageSize = wal.readUInt32BE(8);
  const salt1 = wal.readUInt32BE(16);
  const salt2 = wal.readUInt32BE(20);
  let commits = 0;
  for (let offset = 32; offset + 24 + pageSize <= wal.length; offset += 24 + pageSize) {
    if (wal.readUInt32BE(offset + 8) !== salt1 || wal.readUInt32BE(offset + 12) !== salt2) break;
    if (wal.readUInt32BE(offset + 4) !== 0) commits++;
  }
  return commits;
}

afterEach(async () => {
  for (const journal of open.splice(0)) await journal.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('Journal.open', () => {
  it('creates a missing data directory and a WAL database with the configured sync', () => {
    const dataDir = path.join(tempDir(), 'nested', 'data');
    const journal = Journal.open({ dataDir, sync: 'normal', log: silentLogger() });
    open.push(journal);
    expect(fs.existsSync(path.join(dataDir, 'journal.db'))).toBe(true);
    expect(journal.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(journal.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    // full: SQLite's NORMAL, and the journal fsyncs the WAL after each commit itself (off the loop).
    const full = openJournal();
    expect(full.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(journal.healthy()).toBe(true);
  });

  it('fails with a message naming the directory when it cannot be created', () => {
    const file = path.join(tempDir(), 'not-a-dir');
    fs.writeFileSync(file, 'x');
    const dataDir = path.join(file, 'data');
    expect(() => Journal.open({ dataDir, sync: 'full', log: silentLogger() })).toThrow(
      `journal: cannot create data directory ${dataDir}`,
    );
  });

  it('fails with a message naming the database when it cannot be opened', () => {
    const dataDir = tempDir();
    fs.mkdirSync(path.join(dataDir, 'journal.db'));
    expect(() => Journal.open({ dataDir, sync: 'full', log: silentLogger() })).toThrow(
      `journal: cannot open ${path.join(dataDir, 'journal.db')} for writing`,
    );
  });
});

describe('Journal.append', () => {
  it('stores a delivery with every field and answers duplicate for the same id later', async () => {
    const journal = openJournal();
    const d = delivery({ action: 'opened', reason: undefined });
    const before = Date.now();
    await expect(journal.append(d)).resolves.toBe('accepted');
    const stored = journal.get(d.id)!;
    expect(stored).toMatchObject({
      id: d.id,
      event: 'issues',
      eventType: 'issues',
      action: 'opened',
      subject: 'acme/widgets#1',
      repo: 'acme/widgets',
      number: 1,
      updatedAt: '2024-05-01T10:00:00Z',
      sender: 'alice',
      headers: d.headers,
      body: d.body,
      state: 'pending',
      attempts: 0,
      lastError: null,
    });
    expect(stored.reason).toBeUndefined();
    expect(stored.receivedAt).toBeGreaterThanOrEqual(before);

    await expect(journal.append({ ...d, body: '{"changed":true}' })).resolves.toBe('duplicate');
    expect(journal.get(d.id)!.body).toBe(d.body);
    expect(journal.query({}).length).toBe(1);
  });

  it('answers duplicate for a repeated id inside one group', async () => {
    const journal = openJournal();
    const d = delivery();
    const outcomes = await Promise.all([journal.append(d), journal.append({ ...d })]);
    expect(outcomes).toEqual(['accepted', 'duplicate']);
    expect(journal.query({ id: d.id })).toHaveLength(1);
  });

  it('records ignored deliveries with their reason and never as pending', async () => {
    const journal = openJournal();
    const d = delivery({ state: 'ignored', reason: 'sent by the bot' });
    await journal.append(d);
    expect(journal.get(d.id)).toMatchObject({ state: 'ignored', reason: 'sent by the bot' });
    expect(journal.pendingCount()).toBe(0);
    expect(journal.pendingFor('acme/widgets#1')).toEqual([]);
  });

  it('commits appends made in one tick in a single transaction', async () => {
    const journal = openJournal();
    // The observable counts commits: three awaited appends are three commits.
    const start = walCommits(journal);
    for (let i = 0; i < 3; i++) await journal.append(delivery());
    expect(walCommits(journal)).toBe(start + 3);

    const burst = Array.from({ length: 200 }, (_, i) => delivery({ number: i + 1 }));
    const outcomes = await Promise.all(burst.map((d) => journal.append(d)));
    expect(outcomes.every((o) => o === 'accepted')).toBe(true);
    expect(walCommits(journal)).toBe(start + 4);
    expect(journal.pendingCount()).toBe(203);
  });

  it('resolves only after the commit: a second connection sees the row', async () => {
    const journal = openJournal();
    const d = delivery();
    await journal.append(d);
    const reader = new Database(journal.path, { readonly: true });
    try {
      expect(reader.prepare('SELECT id FROM deliveries WHERE id = ?').get(d.id)).toEqual({ id: d.id });
    } finally {
      reader.close();
    }
  });

  it('keeps what it accepted across close and reopen, including appends still grouping at close', async () => {
    const dataDir = tempDir();
    const first = Journal.open({ dataDir, sync: 'full', log: silentLogger() });
    const a = delivery();
    const b = delivery();
    await first.append(a);
    const late = first.append(b); // not committed yet: close() must commit it
    await first.close();
    await expect(late).resolves.toBe('accepted');
    await expect(first.append(delivery())).rejects.toThrow('is closed');

    const second = openJournal(dataDir);
    expect(second.pendingFor('acme/widgets#1').map((r) => r.id)).toEqual([a.id, b.id]);
    await expect(second.append(a)).resolves.toBe('duplicate');
  });

  it('rejects every append of a group that cannot be written, reports unhealthy, then recovers', async () => {
    const capture = new LogCapture();
    const journal = openJournal(tempDir(), createLogger({ level: 'info', format: 'json', stream: capture.stream }));
    // SQLITE_READONLY on every write, as a read-only file system would answer.
    journal.db.pragma('query_only = 1');
    const a = delivery();
    const b = delivery();
    const results = await Promise.allSettled([journal.append(a), journal.append(b)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/readonly/i);
    expect(journal.healthy()).toBe(false);
    expect(capture.find({ msg: 'journal write failed', level: 'error' })).toHaveLength(1);

    journal.db.pragma('query_only = 0');
    expect(journal.healthy()).toBe(false); // until a write succeeds
    await expect(journal.append(a)).resolves.toBe('accepted');
    expect(journal.healthy()).toBe(true);
    expect(journal.get(b.id)).toBeUndefined();
  });

  it('reports unhealthy when a state change cannot be written', async () => {
    const journal = openJournal();
    const d = delivery();
    await journal.append(d);
    journal.db.pragma('query_only = 1');
    expect(() => journal.markDone([d.id])).toThrow(/readonly/i);
    expect(journal.healthy()).toBe(false);
    journal.db.pragma('query_only = 0');
    journal.markDone([d.id]);
    expect(journal.get(d.id)!.state).toBe('done');
    await journal.settled();
    expect(journal.healthy()).toBe(true); // once a commit succeeded
  });
});

describe('pending rows', () => {
  it('lists the pending rows of one subject in journal order', async () => {
    const journal = openJournal();
    const a1 = delivery({ number: 1, updatedAt: '2024-05-01T12:00:00Z' });
    const b1 = delivery({ number: 2 });
    const a2 = delivery({ number: 1, updatedAt: '2024-05-01T09:00:00Z' });
    const a3 = delivery({ number: 1 });
    for (const d of [a1, b1, a2, a3]) await journal.append(d);
    journal.markDone([a3.id]);
    const rows = journal.pendingFor('acme/widgets#1');
    expect(rows.map((r) => r.id)).toEqual([a1.id, a2.id]);
    expect(rows[0]!.seq).toBeLessThan(rows[1]!.seq);
    expect(journal.pendingCount()).toBe(3);
  });

  it('pages pending subjects by their first pending row', async () => {
    const journal = openJournal();
    // subject numbers in arrival order: 1, 2, 1, 3, 4, 5, 2
    const rows = [1, 2, 1, 3, 4, 5, 2].map((number) => delivery({ number }));
    await Promise.all(rows.map((d) => journal.append(d)));
    journal.markDone([rows[3]!.id]); // #3 has nothing pending any more
    const seqOf = (i: number) => journal.get(rows[i]!.id)!.seq;

    const page1 = journal.pendingSubjects(2);
    expect(page1).toEqual([
      { subject: 'acme/widgets#1', firstSeq: seqOf(0) },
      { subject: 'acme/widgets#2', firstSeq: seqOf(1) },
    ]);
    const page2 = journal.pendingSubjects(2, page1[1]!.firstSeq);
    expect(page2).toEqual([
      { subject: 'acme/widgets#4', firstSeq: seqOf(4) },
      { subject: 'acme/widgets#5', firstSeq: seqOf(5) },
    ]);
    expect(journal.pendingSubjects(2, page2[1]!.firstSeq)).toEqual([]);

    // Once #1's first row is done, its first pending row is the later one.
    journal.markDone([rows[0]!.id]);
    expect(journal.pendingSubjects(10).map((s) => [s.subject, s.firstSeq])).toEqual([
      ['acme/widgets#2', seqOf(1)],
      ['acme/widgets#1', seqOf(2)],
      ['acme/widgets#4', seqOf(4)],
      ['acme/widgets#5', seqOf(5)],
    ]);
  });
});

describe('state changes', () => {
  it('marks done, counts failures, dead-letters and requeues', async () => {
    const journal = openJournal();
    const [a, b, c, ignored] = [delivery(), delivery(), delivery(), delivery({ state: 'ignored', reason: 'bot' })];
    for (const d of [a!, b!, c!, ignored!]) await journal.append(d);

    journal.markDone([a!.id, ignored!.id]);
    expect(journal.get(a!.id)!.state).toBe('done');
    expect(journal.get(ignored!.id)!.state).toBe('ignored'); // only pending rows become done

    journal.recordFailure([b!.id, c!.id], 'HTTP 502 from Gitea');
    journal.recordFailure([b!.id], 'timeout');
    expect(journal.get(b!.id)).toMatchObject({ state: 'pending', attempts: 2, lastError: 'timeout' });
    expect(journal.get(c!.id)).toMatchObject({ state: 'pending', attempts: 1, lastError: 'HTTP 502 from Gitea' });

    journal.markFailed([b!.id], 'issue deleted (404)');
    expect(journal.get(b!.id)).toMatchObject({ state: 'failed', attempts: 3, lastError: 'issue deleted (404)' });
    expect(journal.pendingFor('acme/widgets#1').map((r) => r.id)).toEqual([c!.id]);
    expect(journal.pendingCount()).toBe(1);

    journal.requeue([b!.id, a!.id]); // only failed rows go back
    expect(journal.get(b!.id)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(journal.get(a!.id)!.state).toBe('done');
    expect(journal.pendingFor('acme/widgets#1').map((r) => r.id)).toEqual([b!.id, c!.id]);
  });

  it('prunes done and ignored rows received before the cut-off, keeps pending and failed ones', async () => {
    const journal = openJournal();
    const [done, ignored, pending, failed] = [delivery(), delivery({ state: 'ignored' }), delivery(), delivery()];
    // One group: one commit, one received_at for all four.
    await Promise.all([done!, ignored!, pending!, failed!].map((d) => journal.append(d)));
    journal.markDone([done!.id]);
    journal.markFailed([failed!.id], 'boom');
    const receivedAt = journal.get(done!.id)!.receivedAt;

    expect(journal.prune(receivedAt)).toBe(0); // received at the cut-off: kept
    expect(journal.prune(receivedAt + 1)).toBe(2);
    expect(journal.get(done!.id)).toBeUndefined();
    expect(journal.get(ignored!.id)).toBeUndefined();
    expect(journal.get(pending!.id)!.state).toBe('pending');
    expect(journal.get(failed!.id)!.state).toBe('failed');
  });
});

describe('Journal.query', () => {
  it('filters by repo, subject, state and time, newest last, with a limit keeping the newest', async () => {
    const journal = openJournal();
    const rows = [
      delivery({ number: 1 }),
      delivery({ number: 2 }),
      delivery({ number: 1, repo: 'acme/other', subject: 'acme/other#1' }),
      delivery({ number: 1 }),
    ];
    for (const d of rows) await journal.append(d);
    journal.markDone([rows[0]!.id]);
    const ids = (list: { id: string }[]) => list.map((r) => r.id);

    expect(ids(journal.query({}))).toEqual(rows.map((r) => r.id));
    expect(ids(journal.query({ repo: 'acme/widgets' }))).toEqual([rows[0]!.id, rows[1]!.id, rows[3]!.id]);
    expect(ids(journal.query({ subject: 'acme/widgets#1' }))).toEqual([rows[0]!.id, rows[3]!.id]);
    expect(ids(journal.query({ subject: 'acme/widgets#1', state: 'pending' }))).toEqual([rows[3]!.id]);
    expect(ids(journal.query({ limit: 2 }))).toEqual([rows[2]!.id, rows[3]!.id]);
    expect(ids(journal.query({ id: rows[1]!.id }))).toEqual([rows[1]!.id]);
    const t = journal.get(rows[0]!.id)!.receivedAt;
    expect(journal.query({ since: t + 1_000_000 })).toEqual([]);
    expect(journal.query({ until: t })).toEqual([]);
    expect(journal.query({ since: t, until: Date.now() + 1 })).toHaveLength(4);
  });
});

/** Reads `deliveries` rows through a second connection: what is committed, not what this process sees. */
function committedRows(journal: Journal): Map<string, { state: string; attempts: number }> {
  const reader = new Database(journal.path, { readonly: true });
  try {
    const rows = reader.prepare('SELECT id, state, attempts FROM deliveries').all() as { id: string; state: string; attempts: number }[];
    return new Map(rows.map((r) => [r.id, { state: r.state, attempts: r.attempts }]));
  } finally {
    reader.close();
  }
}

describe('group commit of state changes', () => {
  it('commits the state changes and appends of one tick in one transaction; this process reads them at once', async () => {
    const journal = openJournal();
    const [a, b, c] = [delivery(), delivery(), delivery()];
    await Promise.all([a, b, c].map((d) => journal.append(d)));
    const wal = walCommits(journal);
    const commits = journal.commitCount;

    // One tick: what an evaluator pool finishing together and a webhook arriving meanwhile do.
    journal.markDone([a.id]);
    journal.markDone([b.id]);
    journal.recordFailure([c.id], 'HTTP 502 from Gitea');
    const late = delivery();
    const appended = journal.append(late);
    expect(journal.get(a.id)!.state).toBe('done');
    expect(journal.get(c.id)).toMatchObject({ state: 'pending', attempts: 1 });
    expect(journal.pendingCount()).toBe(1);
    // Not on disk yet: another connection still sees the last commit.
    expect(committedRows(journal).get(a.id)!.state).toBe('pending');

    await journal.settled();
    await expect(appended).resolves.toBe('accepted');
    expect(walCommits(journal)).toBe(wal + 1);
    expect(journal.commitCount).toBe(commits + 1);
    const committed = committedRows(journal);
    expect(committed.get(a.id)!.state).toBe('done');
    expect(committed.get(b.id)!.state).toBe('done');
    expect(committed.get(c.id)).toEqual({ state: 'pending', attempts: 1 });
    expect(committed.get(late.id)!.state).toBe('pending');
  });

  it("the ownership store's writes join the group; an intent is on disk before a label write is sent", async () => {
    const journal = openJournal();
    const store = OwnershipStore.forJournal(journal);
    const d = delivery();
    await journal.append(d);
    const commits = journal.commitCount;
    const committedKnown = () => {
      const reader = new Database(journal.path, { readonly: true });
      try {
        return reader.prepare('SELECT labels FROM triage_known_labels').all();
      } finally {
        reader.close();
      }
    };

    // An evaluation's bookkeeping: label set learned, delivery done — one group, one commit.
    store.setKnown('acme/widgets', 1, ['kind/bug'], '2024-05-01T10:00:00Z');
    journal.markDone([d.id]);
    expect(store.known('acme/widgets', 1)!.labels).toEqual(['kind/bug']); // read back at once
    expect(committedKnown()).toEqual([]);
    await journal.settled();
    expect(journal.commitCount).toBe(commits + 1);
    expect(committedKnown()).toEqual([{ labels: '["kind/bug"]' }]);

    // The intent of a label write is committed (and fsynced) before intend()'s promise resolves;
    // the intents of concurrent evaluations share one commit and one fsync.
    const before = { commits: journal.commitCount, syncs: journal.walSyncCount };
    await Promise.all([
      store.intend('acme/widgets', 1, [{ label: 'size/S', action: 'added', kind: 'rule', user: 'bot' }], { delivery: d.id }),
      store.intend('acme/widgets', 2, [{ label: 'size/M', action: 'added', kind: 'rule', user: 'bot' }], { delivery: d.id }),
    ]);
    expect(journal.commitCount).toBe(before.commits + 1);
    expect(journal.walSyncCount).toBe(before.syncs + 1);
    const reader = new Database(journal.path, { readonly: true });
    try {
      expect(reader.prepare('SELECT label FROM triage_label_pending ORDER BY label').all()).toEqual([{ label: 'size/M' }, { label: 'size/S' }]);
    } finally {
      reader.close();
    }
  });

  it('settled() resolves at once when nothing waits, and close() commits what still does', async () => {
    const dataDir = tempDir();
    const first = Journal.open({ dataDir, sync: 'full', log: silentLogger() });
    await expect(first.settled()).resolves.toBeUndefined();
    const d = delivery();
    await first.append(d);
    first.markDone([d.id]);
    await first.close();
    const second = openJournal(dataDir);
    expect(second.get(d.id)!.state).toBe('done');
  });

  it('requeue and prune are on disk when they return', async () => {
    const journal = openJournal();
    const [failed, done] = [delivery(), delivery()];
    await Promise.all([failed, done].map((d) => journal.append(d)));
    journal.markFailed([failed.id], 'boom');
    journal.markDone([done.id]);
    await journal.settled();

    journal.requeue([failed.id]);
    expect(committedRows(journal).get(failed.id)).toEqual({ state: 'pending', attempts: 0 });
    expect(journal.prune(Date.now() + 1)).toBe(1);
    expect(committedRows(journal).has(done.id)).toBe(false);
  });

  it('a group SQLite rolled back rejects settled(); the rows keep their earlier state; the next group commits', async () => {
    const capture = new LogCapture();
    const journal = openJournal(tempDir(), createLogger({ level: 'info', format: 'json', stream: capture.stream }));
    const [a, b] = [delivery(), delivery()];
    await Promise.all([a, b].map((d) => journal.append(d)));

    journal.markDone([a.id]);
    // What SQLite does on its own on SQLITE_FULL or SQLITE_IOERR inside a transaction.
    journal.db.exec('ROLLBACK');
    await expect(journal.settled()).rejects.toThrow(/rolled back/);
    expect(journal.get(a.id)!.state).toBe('pending');
    expect(journal.healthy()).toBe(false);
    expect(capture.find({ msg: 'journal write failed', level: 'error' })).toHaveLength(1);

    journal.markDone([a.id, b.id]);
    await journal.settled();
    expect(journal.healthy()).toBe(true);
    expect(committedRows(journal).get(a.id)!.state).toBe('done');
  });

  it('a crash before the commit loses that whole group and nothing before it', async () => {
    const dataDir = tempDir();
    const child = spawnTs('tests/unit/journal/crash-child.ts', {}, [dataDir]);
    const before = await child.line({ msg: 'before crash' });
    expect(before).toMatchObject({ b: 'done', cAttempts: 1 }); // what the child read back itself
    expect((await child.exited).signal).toBe('SIGKILL');

    const journal = openJournal(dataDir);
    expect(journal.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(journal.get('a')!.state).toBe('done'); // the first group
    expect(journal.get('b')!.state).toBe('pending'); // the second group: none of it
    expect(journal.get('c')).toMatchObject({ state: 'pending', attempts: 0, lastError: null });
    expect(journal.get('d')).toBeUndefined();
    expect(journal.pendingFor('acme/widgets#2').map((r) => r.id)).toEqual(['b']);
  }, 30_000);
});

describe('background checkpoints', () => {
  /** Row ids in the database file alone, without its WAL: what checkpoints have copied there. */
  function idsInDatabaseFile(journal: Journal): string[] {
    const copy = path.join(tempDir(), 'copy.db');
    fs.copyFileSync(journal.path, copy);
    const reader = new Database(copy, { readonly: true });
    try {
      return (reader.prepare('SELECT id FROM deliveries').all() as { id: string }[]).map((r) => r.id);
    } finally {
      reader.close();
    }
  }

  it('checkpoints from a worker thread once enough was appended, and stops it on close', async () => {
    const dataDir = tempDir();
    const journal = Journal.open({ dataDir, sync: 'full', log: silentLogger(), checkpointer: { afterBytes: 1, intervalMs: 10 } });
    open.push(journal);
    expect(journal.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000); // SQLite's own until then
    const d = delivery();
    await journal.append(d);
    // The journal's connection only checkpoints as a safety net now (64 MiB of WAL).
    expect(journal.db.pragma('wal_autocheckpoint', { simple: true })).toBe(16384);
    await waitFor(() => idsInDatabaseFile(journal).includes(d.id), { what: 'the row checkpointed into journal.db' });

    await journal.close();
    // The worker's connection closed first: the journal's, the last, removed the WAL.
    expect(fs.existsSync(`${journal.path}-wal`)).toBe(false);
  });

  it('leaves checkpoints to SQLite when turned off, or before enough was appended', async () => {
    const off = Journal.open({ dataDir: tempDir(), sync: 'full', log: silentLogger(), checkpointer: false });
    open.push(off);
    await off.append(delivery());
    expect(off.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    const quiet = openJournal(); // default: after 1 MiB
    await quiet.append(delivery());
    expect(quiet.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});

describe('JOURNAL_SYNC=full: the WAL fsync', () => {
  /** A `syncWal` that holds each fsync until the test releases it. */
  function heldSyncs(): { calls: (() => void)[]; syncWal: (fd: number, done: (error: NodeJS.ErrnoException | null) => void) => void } {
    const calls: (() => void)[] = [];
    return { calls, syncWal: (fd, done) => calls.push(() => fs.fsync(fd, done)) };
  }

  it('acknowledges an append only after an fsync that covers its commit; commits meanwhile share the next one', async () => {
    const held = heldSyncs();
    const journal = Journal.open({ dataDir: tempDir(), sync: 'full', log: silentLogger(), syncWal: held.syncWal });
    open.push(journal);
    const first = delivery();
    let acknowledged = false;
    const appended = journal.append(first).then((outcome) => {
      acknowledged = true;
      return outcome;
    });
    await waitFor(() => held.calls.length === 1, { what: 'an fsync started' });
    // Committed (another connection reads it) but not on disk for sure: not acknowledged yet.
    expect(committedRows(journal).has(first.id)).toBe(true);
    expect(acknowledged).toBe(false);

    const commits = journal.commitCount;
    const later = [delivery(), delivery()];
    const laterAppended = Promise.all([journal.append(later[0]!)]).then(async (a) => [...a, await journal.append(later[1]!)]);
    await waitFor(() => journal.commitCount === commits + 1, { what: 'the next group committed' });
    expect(held.calls).toHaveLength(1); // one fsync at a time

    held.calls.shift()!();
    await expect(appended).resolves.toBe('accepted');
    await waitFor(() => held.calls.length === 1, { what: 'the next fsync' });
    held.calls.shift()!();
    await waitFor(() => held.calls.length === 1, { what: 'the fsync of the last group' });
    held.calls.shift()!();
    await expect(laterAppended).resolves.toEqual(['accepted', 'accepted']);
    expect(journal.walSyncCount).toBe(3);
  });

  it('refuses the appends an fsync failed for and reports unhealthy until one succeeds', async () => {
    const capture = new LogCapture();
    let fail = true;
    const journal = Journal.open({
      dataDir: tempDir(),
      sync: 'full',
      log: createLogger({ level: 'info', format: 'json', stream: capture.stream }),
      syncWal: (fd, done) => (fail ? done(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })) : fs.fsync(fd, done)),
    });
    open.push(journal);
    await expect(journal.append(delivery())).rejects.toThrow('EIO');
    expect(journal.healthy()).toBe(false);
    expect(capture.find({ msg: 'journal write failed', operation: 'fsync', level: 'error' })).toHaveLength(1);
    fail = false;
    await expect(journal.append(delivery())).resolves.toBe('accepted');
    expect(journal.healthy()).toBe(true);
  });

  it('settled() waits for the fsync; requeue syncs before it returns; close() acknowledges what waited', async () => {
    const held = heldSyncs();
    const journal = Journal.open({ dataDir: tempDir(), sync: 'full', log: silentLogger(), syncWal: held.syncWal });
    const d = delivery();
    const appended = journal.append(d);
    await waitFor(() => held.calls.length === 1, { what: 'an fsync started' });
    held.calls.shift()!();
    await appended;

    journal.markFailed([d.id], 'boom');
    let settled = false;
    const settling = journal.settled().then(() => (settled = true));
    await waitFor(() => held.calls.length === 1, { what: 'the fsync of the state change' });
    expect(settled).toBe(false);
    held.calls.shift()!();
    await settling;

    const syncs = journal.walSyncCount;
    journal.requeue([d.id]);
    expect(journal.walSyncCount).toBe(syncs + 1); // on the event loop, before it returned

    const late = journal.append(delivery());
    await waitFor(() => held.calls.length === 1, { what: 'an fsync started' });
    const closing = journal.close();
    held.calls.shift()!();
    await closing;
    await expect(late).resolves.toBe('accepted');
  });

  it('JOURNAL_SYNC=normal does not fsync commits', async () => {
    const journal = Journal.open({ dataDir: tempDir(), sync: 'normal', log: silentLogger() });
    open.push(journal);
    await journal.append(delivery());
    journal.requeue([]);
    expect(journal.walSyncCount).toBe(0);
  });
});
