import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { OwnershipStore } from '../../../src/applier/ownership.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
let db: Database.Database;
let store: OwnershipStore;
let clock = 1_000;

beforeEach(() => {
  db?.close();
  db = new Database(path.join(dir, `own-${clock}.db`));
  store = new OwnershipStore(db, { now: () => clock++ });
});

afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const meta = { delivery: 'd-1', configVersion: 'v1' };

describe('OwnershipStore', () => {
  it('makes rule adds bot-owned and keeps why', () => {
    store.record('acme/widgets', 7, [
      { label: 'kind/bug', action: 'added', kind: 'rule', user: 'bot', rule: 'labels.kind/bug.title', evidence: 'crash' },
    ], meta);
    expect([...store.ownership('acme/widgets', 7).botOwned]).toEqual(['kind/bug']);
    expect(store.owned('acme/widgets', 7)).toEqual([
      expect.objectContaining({ label: 'kind/bug', kind: 'rule', rule: 'labels.kind/bug.title', evidence: 'crash', configVersion: 'v1', delivery: 'd-1' }),
    ]);
    // Other issues are separate.
    expect(store.ownership('acme/widgets', 8).botOwned.size).toBe(0);
  });

  it('treats command adds as the person\'s, not the rules\'', () => {
    store.record('acme/widgets', 7, [{ label: 'area/docs', action: 'added', kind: 'command', user: 'carol' }], meta);
    expect(store.ownership('acme/widgets', 7).botOwned.size).toBe(0);
    expect(store.owned('acme/widgets', 7)[0]).toMatchObject({ label: 'area/docs', kind: 'command', user: 'carol' });
  });

  it('a person removing a bot label ends the bot\'s ownership and marks it human-removed', () => {
    store.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'added', kind: 'rule', user: 'bot' }], meta);
    store.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'removed', kind: 'person', user: 'bob' }], { delivery: 'd-2' });
    const own = store.ownership('acme/widgets', 7);
    expect(own.botOwned.has('kind/bug')).toBe(false);
    expect([...own.humanRemoved]).toEqual(['kind/bug']);
  });

  it('a rule removing its own label is not a human removal', () => {
    store.record('acme/widgets', 7, [{ label: 'size/S', action: 'added', kind: 'rule', user: 'bot' }], meta);
    store.record('acme/widgets', 7, [{ label: 'size/S', action: 'removed', kind: 'rule', user: 'bot', rule: 'size' }], meta);
    const own = store.ownership('acme/widgets', 7);
    expect(own.botOwned.size).toBe(0);
    expect(own.humanRemoved.size).toBe(0);
  });

  it('a person adding a label again cancels their removal and the label becomes theirs', () => {
    store.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'removed', kind: 'unknown', user: null }], meta);
    expect(store.ownership('acme/widgets', 7).humanRemoved.has('kind/bug')).toBe(true);
    store.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'added', kind: 'person', user: 'bob' }], meta);
    const own = store.ownership('acme/widgets', 7);
    expect(own.humanRemoved.size).toBe(0);
    expect(own.botOwned.size).toBe(0);
  });

  it('keeps an event log with who, how and why, oldest first', () => {
    store.record('Acme/Widgets', 7, [{ label: 'kind/bug', action: 'added', kind: 'rule', user: 'bot', rule: 'r', evidence: 'e' }], meta);
    store.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'removed', kind: 'person', user: 'bob' }], { delivery: 'd-2' });
    const events = store.events('acme/widgets', 7);
    expect(events.map((e) => [e.label, e.action, e.kind, e.user, e.delivery])).toEqual([
      ['kind/bug', 'added', 'rule', 'bot', 'd-1'],
      ['kind/bug', 'removed', 'person', 'bob', 'd-2'],
    ]);
    expect(events[0]!.at).toBeLessThan(events[1]!.at);
  });

  it('never lets an older label set replace a newer one', () => {
    expect(store.setKnown('acme/widgets', 7, ['b', 'a'], '2026-03-02T10:24:02Z')).toBe(true);
    expect(store.setKnown('acme/widgets', 7, ['a'], '2026-03-02T10:20:00Z')).toBe(false);
    expect(store.known('acme/widgets', 7)).toMatchObject({ labels: ['a', 'b'], updatedAt: '2026-03-02T10:24:02Z' });
    // Same time: the later arrival wins (Gitea's times have second resolution).
    expect(store.setKnown('acme/widgets', 7, ['c'], '2026-03-02T10:24:02Z')).toBe(true);
    // Gitea writes the server's offset: compared as instants, not strings.
    expect(store.setKnown('acme/widgets', 7, ['d'], '2026-03-02T11:24:01+01:00')).toBe(false);
    expect(store.known('acme/widgets', 7)?.labels).toEqual(['c']);
  });

  it('remembers replied comments per comment version', () => {
    expect(store.replied('acme/widgets', 55, 't1')).toBe(false);
    store.markReplied('acme/widgets', 55, 't1');
    expect(store.replied('acme/widgets', 55, 't1')).toBe(true);
    expect(store.replied('acme/widgets', 55, 't2')).toBe(false);
  });

  it('survives reopening the database (tables created once)', () => {
    store.record('acme/widgets', 9, [{ label: 'x', action: 'added', kind: 'rule', user: 'bot' }], meta);
    const again = new OwnershipStore(db);
    expect([...again.ownership('acme/widgets', 9).botOwned]).toEqual(['x']);
  });
});
