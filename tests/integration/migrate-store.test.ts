import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../src/log/logger.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { migrateStoreMain } from '../../src/tools/migrate-store.js';
import { delivery } from '../store/conformance.js';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from '../helpers/postgres.js';

const unavailable = await postgresUnavailable();

/** The tool's streams, kept in memory. */
function io() {
  let out = '';
  let err = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _enc, done) {
        append(chunk.toString());
        done();
      },
    });
  return { stdout: sink((t) => (out += t)), stderr: sink((t) => (err += t)), out: () => out, err: () => err };
}

const meta = { delivery: 'd-1', configVersion: 'v1' };

/** An SQLite store as the service leaves it: deliveries in every state and ownership records. */
async function sqliteStoreWithHistory(dir: string) {
  const store = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
  const rows = [delivery({ number: 1 }), delivery({ number: 2 }), delivery({ number: 1, state: 'ignored', reason: 'bot' }), delivery({ number: 3 })];
  for (const d of rows) await store.deliveries.append(d);
  await store.deliveries.markDone([rows[0]!.id]);
  await store.deliveries.recordFailure([rows[3]!.id], 'HTTP 502');
  await store.deliveries.markFailed([rows[3]!.id], 'HTTP 404');
  await store.ownership.record('acme/widgets', 1, [{ label: 'kind/bug', action: 'added', kind: 'rule', user: 'bot', rule: 'labels.kind/bug.title', evidence: 'crash' }], meta);
  await store.ownership.record('acme/widgets', 1, [{ label: 'prio/high', action: 'removed', kind: 'person', user: 'dave' }], meta);
  await store.ownership.setKnown('acme/widgets', 1, ['kind/bug'], '2024-05-01T10:00:00Z');
  await store.ownership.intend('acme/widgets', 2, [{ label: 'size/S', action: 'added', kind: 'rule', user: 'bot' }], meta);
  await store.ownership.markReplied('acme/widgets', 77, '2024-05-01T10:00:00Z');
  const history = await store.deliveries.query({});
  await store.close();
  return history;
}

if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine('tests/integration/migrate-store.test.ts', unavailable));
  describe.skip('migrate-store (no database)', () => {
    it('needs PostgreSQL', () => {});
  });
} else {
  describe('npm run migrate-store', () => {
    const schemas: string[] = [];
    const dirs: string[] = [];
    afterAll(async () => {
      for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
      await dropSchemas(schemas);
    });

    it('copies the journal and the ownership records into PostgreSQL, once, then only what is new', async () => {
      if (unavailable !== undefined) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-migrate-'));
      dirs.push(dir);
      const schema = testSchemaName('gt_migrate');
      schemas.push(schema);
      const history = await sqliteStoreWithHistory(dir);
      const env = { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema };

      const first = io();
      expect(await migrateStoreMain(['--from', dir], env, first)).toBe(0);
      expect(first.err()).toBe('');
      expect(first.out()).toContain(`(schema ${schema})`);
      expect(first.out()).toContain('deliveries: 4 copied, 0 already there');
      expect(first.out()).toContain('labels owned by the bot or a command: 1 copied, 0 already there');
      expect(first.out()).toContain('labels removed by people: 1 copied');
      expect(first.out()).toContain('label events: 2 copied');
      expect(first.out()).toContain('write intents: 1 copied');
      expect(first.out()).toContain('command replies: 1 copied');

      const pg = await PostgresStore.open({ url: TEST_DATABASE_URL, schema, poolSize: 2, log: silentLogger() });
      try {
        // Same rows, same order, same states and times; the seq is PostgreSQL's own.
        const copied = await pg.deliveries.query({});
        expect(copied.map(({ seq: _seq, ...rest }) => rest)).toEqual(history.map(({ seq: _seq, ...rest }) => rest));
        expect((await pg.deliveries.pendingFor('acme/widgets#2')).map((r) => r.id)).toEqual([history[1]!.id]);
        expect(await pg.deliveries.get(history[3]!.id)).toMatchObject({ state: 'failed', attempts: 2, lastError: 'HTTP 404' });
        // The label promises survive the move: the rule's label stays the bot's, a person's removal sticks.
        const own = await pg.ownership.ownership('acme/widgets', 1);
        expect([...own.botOwned]).toEqual(['kind/bug']);
        expect([...own.humanRemoved]).toEqual(['prio/high']);
        expect(await pg.ownership.owned('acme/widgets', 1)).toEqual([expect.objectContaining({ label: 'kind/bug', rule: 'labels.kind/bug.title', evidence: 'crash' })]);
        expect((await pg.ownership.known('acme/widgets', 1))?.labels).toEqual(['kind/bug']);
        expect((await pg.ownership.pending('acme/widgets', 2)).map((p) => p.change.label)).toEqual(['size/S']);
        expect(await pg.ownership.replied('acme/widgets', 77, '2024-05-01T10:00:00Z')).toBe(true);
        expect((await pg.ownership.events('acme/widgets', 1)).map((e) => [e.label, e.action, e.kind, e.user])).toEqual([
          ['kind/bug', 'added', 'rule', 'bot'],
          ['prio/high', 'removed', 'person', 'dave'],
        ]);
      } finally {
        await pg.close();
      }

      const second = io();
      expect(await migrateStoreMain(['--from', dir], env, second)).toBe(0);
      expect(second.out()).toContain('deliveries: 0 copied, 4 already there');
      expect(second.out()).toContain('label events: 0 copied, 2 already there');
      expect(second.out()).not.toMatch(/: [1-9]\d* copied/);

      // A delivery journaled on SQLite after the first run is the only thing the next run copies.
      const store = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
      await store.deliveries.append(delivery({ number: 9 }));
      await store.close();
      const third = io();
      expect(await migrateStoreMain(['--from', dir], env, third)).toBe(0);
      expect(third.out()).toContain('deliveries: 1 copied, 4 already there');
    });

    it('says what is wrong: usage (exit 2), no journal or no database (exit 1), never the password', async () => {
      const noUrl = io();
      expect(await migrateStoreMain(['--from', '/tmp'], {}, noUrl)).toBe(2);
      expect(noUrl.err()).toBe('migrate-store: DATABASE_URL: required: the PostgreSQL store to copy into (postgres://…)\n');
      const noFrom = io();
      expect(await migrateStoreMain([], { DATABASE_URL: TEST_DATABASE_URL }, noFrom)).toBe(2);
      expect(noFrom.err()).toMatch(/^migrate-store: .*--from/);
      const badSchema = io();
      expect(await migrateStoreMain(['--from', '/tmp'], { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: 'Bad-Name' }, badSchema)).toBe(2);
      expect(badSchema.err()).toMatch(/^migrate-store: DATABASE_SCHEMA: a PostgreSQL schema name/);

      const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-migrate-'));
      dirs.push(empty);
      const noJournal = io();
      expect(await migrateStoreMain(['--from', empty], { DATABASE_URL: TEST_DATABASE_URL }, noJournal)).toBe(1);
      expect(noJournal.err()).toBe(`migrate-store: no journal at ${path.join(empty, 'journal.db')} (is --from right?)\n`);

      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-migrate-'));
      dirs.push(dir);
      await sqliteStoreWithHistory(dir);
      const down = io();
      const url = 'postgres://triage:s3cret-pw@127.0.0.1:1/test';
      expect(await migrateStoreMain(['--from', dir], { DATABASE_URL: url }, down)).toBe(1);
      // The URL is named with its password masked (by the store, or by the tools' error line).
      expect(down.err()).toMatch(/^migrate-store: cannot open the PostgreSQL store at postgres:\/\/\S*@127\.0\.0\.1:1\/test \(schema gitea_triage\): .*ECONNREFUSED/);
      expect(down.err() + down.out()).not.toContain('s3cret-pw');
    });
  });
}
