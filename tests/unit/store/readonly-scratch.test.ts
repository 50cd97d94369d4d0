import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../src/log/logger.js';
import { openStore } from '../../../src/store/api.js';
import { ScratchOwnership } from '../../../src/store/scratch.js';
import { SqliteStore } from '../../../src/store/sqlite/store.js';
import { delivery } from '../../store/conformance.js';

/**
 * `openStore(…, { readOnly: true })` on SQLite: reads what the store holds (beside a writer that has
 * it open), refuses every write, creates nothing; and the dry runs' scratch records: a faithful copy
 * of a subject's records that writes never leave.
 */

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-ro-store-'));
  dirs.push(dir);
  return dir;
}

function digest(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex');
  return out;
}

const REPO = 'acme/widgets';
const rule = { label: 'kind/bug', action: 'added' as const, kind: 'rule' as const, user: 'bot', rule: 'labels.kind/bug.title', evidence: 'crash' };

/** A store as a service leaves it: deliveries, ownership records of issue 1, a write intent on 2. */
async function history(store: SqliteStore): Promise<void> {
  await store.deliveries.append(delivery({ number: 1 }));
  await store.deliveries.append(delivery({ number: 2 }));
  await store.ownership.record(REPO, 1, [rule], { delivery: 'd-1', configVersion: 'v1' });
  await store.ownership.record(REPO, 1, [{ label: 'prio/high', action: 'removed', kind: 'person', user: 'dave' }], { delivery: 'd-2' });
  await store.ownership.record(REPO, 1, [{ label: 'area/ui', action: 'removed', kind: 'unknown', user: null }], { delivery: 'd-3' });
  await store.ownership.setKnown(REPO, 1, ['kind/bug'], '2024-05-01T10:00:00Z');
  await store.ownership.intend(REPO, 2, [{ label: 'size/S', action: 'added', kind: 'rule', user: 'bot' }], { delivery: 'd-4' });
}

const config = (dataDir: string) => ({ dataDir, journalSync: 'normal' as const, databaseUrl: undefined, databaseSchema: 'unused', databasePoolSize: 1 });

describe('openStore readOnly on SQLite', () => {
  it('reads beside a running writer, refuses every write, and adds no file', async () => {
    const dir = tempDir();
    const writer = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
    try {
      await history(writer);
      const lease = await writer.leases.acquire(`${REPO}#1`, 'service-a', 60_000);
      await writer.generations.bump(REPO);
      const before = digest(dir);
      const ro = await openStore(config(dir), silentLogger(), { readOnly: true });
      try {
        expect(ro.backend).toBe('sqlite');
        expect((await ro.deliveries.query({ repo: REPO })).map((r) => r.number)).toEqual([1, 2]);
        expect((await ro.deliveries.pendingFor(`${REPO}#2`)).length).toBe(1);
        expect([...(await ro.ownership.ownership(REPO, 1)).humanRemoved].sort()).toEqual(['area/ui', 'prio/high']);
        expect(await ro.ownership.unknownRemovals(REPO, 1)).toEqual(['area/ui']);
        expect((await ro.leases.current(`${REPO}#1`))?.token).toBe(lease!.token);
        expect(await ro.generations.get('ACME/Widgets')).toBe(1);
        // What the writer commits later is seen: the live read-only connection, not a copy.
        await writer.deliveries.append(delivery({ number: 3 }));
        expect((await ro.deliveries.query({ repo: REPO })).length).toBe(3);

        await expect(ro.deliveries.append(delivery({ number: 4 }))).rejects.toThrow(`append a delivery: the store at ${path.join(dir, 'journal.db')} was opened read-only`);
        await expect(ro.deliveries.markDone(['x'])).rejects.toThrow(/opened read-only/);
        await expect(ro.ownership.record(REPO, 1, [rule], { delivery: null })).rejects.toThrow(/record label changes: .* opened read-only/);
        await expect(ro.ownership.setKnown(REPO, 1, [], null)).rejects.toThrow(/opened read-only/);
        await expect(ro.leases.acquire(`${REPO}#9`, 'tool', 1_000)).rejects.toThrow(/acquire a lease: .* opened read-only/);
        await expect(ro.generations.bump(REPO)).rejects.toThrow(/opened read-only/);
        // No file of its own (the writer's journal.db, -wal and -shm only); the bytes-unchanged check of a
        // stopped service's DATA_DIR is in tests/integration/tools-readonly.test.ts.
        expect(Object.keys(digest(dir))).toEqual(Object.keys(before));
      } finally {
        await ro.close();
      }
    } finally {
      await writer.close();
    }
  });

  it('never creates a journal: a DATA_DIR without one is an error and stays empty', async () => {
    const empty = tempDir();
    await expect(openStore(config(empty), silentLogger(), { readOnly: true })).rejects.toThrow(`no journal at ${path.join(empty, 'journal.db')} (is DATA_DIR right?)`);
    expect(fs.readdirSync(empty)).toEqual([]);
  });
});

describe('ScratchOwnership', () => {
  it("copies a subject's records from the store, and its writes never reach the store", async () => {
    const dir = tempDir();
    const source = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
    try {
      await history(source);
      const scratch = new ScratchOwnership(source.ownership);
      try {
        await scratch.seed([`${REPO}#1`, `${REPO}#2`, 'acme/widgets@main']);
        const copy = scratch.ownership;
        for (const n of [1, 2]) {
          expect(await copy.owned(REPO, n)).toEqual(await source.ownership.owned(REPO, n));
          expect(await copy.events(REPO, n)).toEqual(await source.ownership.events(REPO, n));
          expect(await copy.ownership(REPO, n)).toEqual(await source.ownership.ownership(REPO, n));
          expect(await copy.known(REPO, n)).toEqual(await source.ownership.known(REPO, n));
          expect(await copy.unknownRemovals(REPO, n)).toEqual(await source.ownership.unknownRemovals(REPO, n));
          expect((await copy.pending(REPO, n)).map((p) => p.change)).toEqual((await source.ownership.pending(REPO, n)).map((p) => p.change));
        }
        // Seeding again copies nothing twice.
        await scratch.seed([`${REPO}#1`]);
        expect((await copy.events(REPO, 1)).length).toBe(3);

        await copy.record(REPO, 1, [{ label: 'kind/bug', action: 'removed', kind: 'person', user: 'erin' }], { delivery: 'dry' });
        await copy.setKnown(REPO, 1, [], '2024-06-01T00:00:00Z');
        expect([...(await copy.ownership(REPO, 1)).humanRemoved]).toContain('kind/bug');
        expect([...(await source.ownership.ownership(REPO, 1)).humanRemoved]).not.toContain('kind/bug');
        expect((await source.ownership.known(REPO, 1))?.labels).toEqual(['kind/bug']);
        expect((await source.ownership.events(REPO, 1)).length).toBe(3);
      } finally {
        scratch.close();
      }
    } finally {
      await source.close();
    }
  });
});
