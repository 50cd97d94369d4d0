import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { JournalFilter } from '../../../src/journal/api.js';
import { Journal } from '../../../src/journal/journal.js';
import type { NewDelivery, StoredDelivery } from '../../../src/journal/types.js';
import { silentLogger } from '../../../src/log/logger.js';
import { MemoryJournal } from '../../../src/tools/memory-journal.js';

// The dry runs of `replay --local` select rows through MemoryJournal.query: it must answer every
// filter as the SQLite journal does (since inclusive, until exclusive, limit = the newest rows).

let dir: string;
let journal: Journal;
let rows: StoredDelivery[];
let memory: MemoryJournal;

const T0 = Date.UTC(2026, 10, 1);
const MINUTE = 60_000;

function delivery(i: number): NewDelivery {
  const repo = i % 2 === 0 ? 'acme/widgets' : 'acme/gadgets';
  const number = (i % 3) + 1;
  return {
    id: `d-${i}`,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `${repo}#${number}`,
    repo,
    number,
    updatedAt: new Date(T0 + i * MINUTE).toISOString(),
    sender: 'alice',
    headers: {},
    body: '{}',
    state: i % 4 === 0 ? 'ignored' : 'pending',
  };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
  journal = Journal.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
  for (let i = 0; i < 12; i++) await journal.append(delivery(i));
  // Received one minute apart (the journal stamps its own clock at commit; set it as a test would see it).
  const stamp = journal.db.prepare('UPDATE deliveries SET received_at = ? WHERE id = ?');
  for (let i = 0; i < 12; i++) stamp.run(T0 + i * MINUTE, `d-${i}`);
  journal.markDone(['d-1', 'd-2']);
  await journal.settled();
  rows = journal.query({});
  memory = new MemoryJournal(rows, () => false);
});

afterAll(async () => {
  await journal.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const ids = (list: StoredDelivery[]) => list.map((r) => r.id);

describe('MemoryJournal.query', () => {
  it('honours since (inclusive), until (exclusive) and limit (the newest rows, oldest first)', () => {
    expect(ids(memory.query({ since: T0 + 3 * MINUTE, until: T0 + 6 * MINUTE }))).toEqual(['d-3', 'd-4', 'd-5']);
    expect(ids(memory.query({ limit: 2 }))).toEqual(['d-10', 'd-11']);
    expect(ids(memory.query({ repo: 'acme/widgets', until: T0 + 5 * MINUTE, limit: 2 }))).toEqual(['d-2', 'd-4']);
    expect(memory.query({ limit: 0 })).toEqual([]);
  });

  const filters: [string, JournalFilter][] = [
    ['nothing', {}],
    ['since', { since: T0 + 5 * MINUTE }],
    ['until', { until: T0 + 5 * MINUTE }],
    ['a window', { since: T0 + 2 * MINUTE, until: T0 + 9 * MINUTE }],
    ['an empty window', { since: T0 + 9 * MINUTE, until: T0 + 2 * MINUTE }],
    ['limit', { limit: 5 }],
    ['a fractional limit', { limit: 2.7 }],
    ['a negative limit', { limit: -3 }],
    ['a limit over the rows', { limit: 100 }],
    ['repo, window and limit', { repo: 'acme/gadgets', since: T0 + MINUTE, until: T0 + 11 * MINUTE, limit: 3 }],
    ['subject and state', { subject: 'acme/widgets#1', state: 'pending' }],
    ['state and limit', { state: 'ignored', limit: 2 }],
    ['id', { id: 'd-7' }],
    ['id outside the window', { id: 'd-7', until: T0 + 7 * MINUTE }],
  ];
  it.each(filters)('answers %s as the SQLite journal does', (_what, filter) => {
    expect(memory.query(filter)).toEqual(journal.query(filter));
  });
});
