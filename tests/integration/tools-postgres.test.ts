import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { silentLogger } from '../../src/log/logger.js';
import { openStore } from '../../src/store/api.js';
import { backfillMain } from '../../src/tools/backfill-cli.js';
import { explainMain } from '../../src/tools/explain-cli.js';
import { exportMain } from '../../src/tools/export-cli.js';
import { migrateStoreMain } from '../../src/tools/migrate-store.js';
import { replayMain } from '../../src/tools/replay-cli.js';
import { delivery } from '../store/conformance.js';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from '../helpers/postgres.js';
import { runMain, simEnv, tempDir } from './ops-harness.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

/**
 * The operator tools on a PostgreSQL store (DATABASE_URL, DATABASE_SCHEMA), after `migrate-store`
 * moved a service's SQLite store there: explain, export and replay --local read what was migrated,
 * and read the same as from SQLite; backfill --dry-run seeds its scratch records from PostgreSQL;
 * none of the read-only tools changes a row; a wrong schema is an error and is not created.
 */

const unavailable = await postgresUnavailable();
const ORG = 'acme';
const REPO = 'widgets';

if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine('tests/integration/tools-postgres.test.ts', unavailable));
  describe.skip('tools on PostgreSQL (no database)', () => {
    it('needs PostgreSQL', () => {});
  });
} else {
  let h: TriageHarness;
  let dataDir: string;
  let kept: number;
  let removed: number;
  const schema = testSchemaName('gt_tools');
  const schemas = [schema];
  const dirs: string[] = [];
  const pgEnv = () => ({ ...simEnv(h.sim, '/nonexistent/not-used'), DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema });
  const sqliteEnv = () => simEnv(h.sim, dataDir);

  /** Every table of the schema with a digest of all its rows: equal digests, no row changed. */
  async function schemaDigest(name: string): Promise<Record<string, string>> {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await client.connect();
    try {
      const tables = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
        [name],
      );
      const out: Record<string, string> = {};
      for (const { table_name: table } of tables.rows) {
        const q = `"${name}"."${table}"`;
        const { rows } = await client.query<{ n: string; digest: string | null }>(`SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS digest FROM ${q} t`);
        out[table] = `${rows[0]!.n} ${rows[0]!.digest ?? '-'}`;
      }
      return out;
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
    h = await startTriage({
      seed: (sim) => {
        sim.addOrg(ORG);
        for (const u of ['alice', 'bob']) sim.addUser(u);
        seedTriagedRepo(sim, ORG, REPO);
      },
    });
    kept = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: 'It stops.' });
    removed = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Viewer crashes on open', body: 'It stops too.' });
    await h.settle();
    expect(h.sim.issueLabels(ORG, REPO, removed)).toContain('kind/bug');
    // A person takes the rule's label off: no rule may put it back, on SQLite or after the move.
    h.sim.setLabelsAsUser(ORG, REPO, removed, 'bob', h.sim.issueLabels(ORG, REPO, removed).filter((l) => l !== 'kind/bug'));
    await h.settle();
    dataDir = path.dirname(h.service.journal.path);
    await h.service.stop(); // the simulated Gitea stays up for replay --local and backfill
    const moved = await runMain(migrateStoreMain, ['--from', dataDir], { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: schema });
    expect(moved.err).toBe('');
    expect(moved.code).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await h?.sim.close();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    await dropSchemas(schemas);
  });

  describe('tools on a PostgreSQL store', () => {
    it('explain, export and replay --local read what migrate-store moved, as they read it from SQLite', async () => {
      const onPg = await runMain(explainMain, ['--json', `${ORG}/${REPO}#${removed}`], pgEnv());
      expect(onPg.err).toBe('');
      const story = JSON.parse(onPg.out) as { removedByPerson: { label: string; user: string | null }[]; deliveries: unknown[] };
      expect(story.removedByPerson).toEqual([{ label: 'kind/bug', user: 'bob' }]);
      expect(story.deliveries.length).toBeGreaterThanOrEqual(2);
      const onSqlite = await runMain(explainMain, ['--json', `${ORG}/${REPO}#${removed}`], { DATA_DIR: dataDir });
      expect(onPg.out).toBe(onSqlite.out);

      const exportPg = await runMain(exportMain, ['--repo', `${ORG}/${REPO}`, '--out', '-'], pgEnv());
      expect(exportPg.code).toBe(0);
      const exportSqlite = await runMain(exportMain, ['--repo', `${ORG}/${REPO}`, '--out', '-'], { DATA_DIR: dataDir });
      expect(exportPg.lines.length).toBeGreaterThanOrEqual(3);
      expect(exportPg.out).toBe(exportSqlite.out);

      const replayPg = await runMain(replayMain, ['--issue', `${ORG}/${REPO}#${kept}`, '--local'], pgEnv());
      expect(replayPg.err).toBe('');
      expect(replayPg.lines[0]).toBe(`${ORG}/${REPO}#${kept}  issues/opened (1 delivery)`);
      const replaySqlite = await runMain(replayMain, ['--issue', `${ORG}/${REPO}#${kept}`, '--local'], sqliteEnv());
      expect(replayPg.out).toBe(replaySqlite.out);
    });

    it('backfill --dry-run seeds its scratch records from PostgreSQL: a label a person removed is not proposed again', async () => {
      const row = (out: string, n: number) => out.split('\n').find((l) => l.includes(`#${n} `)) ?? '';
      const onPg = await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`, '--dry-run'], pgEnv());
      expect(onPg.err).not.toMatch(/failed/);
      expect(onPg.code).toBe(0);
      expect(row(onPg.out, removed)).not.toContain('kind/bug');
      // Without the records (no store at all) the same dry run would put it back: the records decide.
      const empty = tempDir();
      dirs.push(empty);
      const bare = await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`, '--dry-run'], simEnv(h.sim, empty));
      expect(bare.code).toBe(0);
      expect(row(bare.out, removed)).toContain('kind/bug');
      expect(fs.readdirSync(empty)).toEqual([]);
    });

    it('the read-only tools change no row of the PostgreSQL store, and its sessions refuse writes', async () => {
      const before = await schemaDigest(schema);
      expect(Object.keys(before)).toEqual(expect.arrayContaining(['deliveries', 'label_event', 'label_removed', 'leases']));
      const candidate = path.join(tempDir(), 'candidate.yml');
      dirs.push(path.dirname(candidate));
      fs.writeFileSync(candidate, 'labels: {}\n');
      const runs = [
        await runMain(explainMain, [`${ORG}/${REPO}#${removed}`], pgEnv()),
        await runMain(exportMain, ['--repo', `${ORG}/${REPO}`, '--out', '-'], pgEnv()),
        await runMain(replayMain, ['--repo', `${ORG}/${REPO}`, '--local'], pgEnv()),
        await runMain(replayMain, ['--repo', `${ORG}/${REPO}`, '--local', '--config', candidate], pgEnv()),
        await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`, '--dry-run'], pgEnv()),
      ];
      expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0, 0]);
      for (const r of runs) expect(r.err).not.toMatch(/read-only|failed|error/i);
      expect(await schemaDigest(schema)).toEqual(before);

      const store = await openStore({ dataDir: '/nonexistent', journalSync: 'normal', databaseUrl: TEST_DATABASE_URL, databaseSchema: schema, databasePoolSize: 1 }, silentLogger(), { readOnly: true });
      try {
        await expect(store.deliveries.append(delivery({ number: 99 }))).rejects.toThrow(/read-only transaction/);
        await expect(store.leases.acquire(`${ORG}/${REPO}#${kept}`, 'tool', 1_000)).rejects.toThrow(/read-only transaction/);
      } finally {
        await store.close();
      }
      expect(await schemaDigest(schema)).toEqual(before);
    });

    it('a schema without a store is an error, and a read-only tool does not create it; the password never shows', async () => {
      const missing = testSchemaName('gt_tools_missing');
      schemas.push(missing);
      const run = await runMain(explainMain, [`${ORG}/${REPO}#${kept}`], { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: missing });
      expect(run.code).toBe(1);
      expect(run.err).toMatch(/^explain: cannot open the PostgreSQL store at postgres:\/\/\S+@127\.0\.0\.1:5432\/test \(schema \w+\): /);
      expect(run.err).toContain(`: no gitea-triage store in schema ${missing} (is DATABASE_SCHEMA right?)\n`);
      expect(await schemaDigest(missing)).toEqual({});
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      try {
        const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [missing]);
        expect(found.rowCount).toBe(0);
      } finally {
        await client.end();
      }

      const secret = 'Sup3r-s3cret-pw';
      const refused = await runMain(exportMain, ['--out', '-'], { DATABASE_URL: `postgres://triage:${secret}@127.0.0.1:1/test` });
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/^export: cannot open the PostgreSQL store at postgres:\/\/\S+@127\.0\.0\.1:1\/test /);
      expect(refused.err).not.toContain(secret);
    });
  });

  describe('tools that write, on a PostgreSQL store', () => {
    const written = testSchemaName('gt_tools_rw');
    schemas.push(written);
    const rwEnv = (extra: Record<string, string> = {}) => ({ ...pgEnv(), DATABASE_SCHEMA: written, ...extra });
    const openWritten = () =>
      openStore({ dataDir: '/nonexistent', journalSync: 'normal', databaseUrl: TEST_DATABASE_URL, databaseSchema: written, databasePoolSize: 2 }, silentLogger());

    beforeAll(async () => {
      const moved = await runMain(migrateStoreMain, ['--from', dataDir], { DATABASE_URL: TEST_DATABASE_URL, DATABASE_SCHEMA: written });
      expect(moved.code).toBe(0);
    });

    it('backfill labels issues for real and records ownership in PostgreSQL; a person removal read from there sticks', async () => {
      // An issue Gitea never delivered (created while nothing listened).
      const missed = h.sim.addIssue(ORG, REPO, { user: 'alice', title: 'Importer crashes on empty files', body: 'It stops.' });
      const run = await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`], rwEnv());
      expect(run.code).toBe(0);
      expect(h.sim.issueLabels(ORG, REPO, missed)).toContain('kind/bug');
      expect(h.sim.issueLabels(ORG, REPO, removed)).not.toContain('kind/bug');
      const store = await openWritten();
      try {
        const owned = await store.ownership.owned(`${ORG}/${REPO}`, missed);
        expect(owned).toEqual(expect.arrayContaining([expect.objectContaining({ label: 'kind/bug', kind: 'rule', rule: 'labels.kind/bug.title' })]));
        // Every lease it took was given back.
        for (const n of [kept, removed, missed]) expect(await store.leases.current(`${ORG}/${REPO}#${n}`)).toBeUndefined();
      } finally {
        await store.close();
      }
      const story = await runMain(explainMain, ['--json', `${ORG}/${REPO}#${missed}`], rwEnv());
      expect((JSON.parse(story.out) as { owned: { label: string }[] }).owned.map((o) => o.label)).toContain('kind/bug');
    });

    it('backfill never evaluates an issue whose lease another process holds (whatever case --repo is typed in); it waits, then gives that one up', async () => {
      const busy = h.sim.addIssue(ORG, REPO, { user: 'alice', title: 'Renderer crashes on resize', body: 'It stops.' });
      const store = await openWritten();
      try {
        const held = await store.leases.acquire(`${ORG}/${REPO}#${busy}`, 'service-replica-a', 60_000);
        expect(held).toBeDefined();
        // Typed in another case (Gitea finds repositories case-insensitively): still the same lease.
        const run = await runMain(backfillMain, ['--repo', `${ORG.toUpperCase()}/${REPO.toUpperCase()}`], rwEnv({ LEASE_TTL_MS: '200' }));
        expect(run.code).toBe(1);
        expect(run.err).toContain(`${ORG}/${REPO}#${busy} is being evaluated by service-replica-a`);
        expect(h.sim.issueLabels(ORG, REPO, busy)).toEqual([]);
        expect(await store.ownership.known(`${ORG}/${REPO}`, busy)).toBeUndefined();
        expect((await store.leases.current(`${ORG}/${REPO}#${busy}`))?.holder).toBe('service-replica-a');
        await store.leases.release(held!);
        const again = await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`], rwEnv());
        expect(again.code).toBe(0);
        expect(h.sim.issueLabels(ORG, REPO, busy)).toContain('kind/bug');
      } finally {
        await store.close();
      }
    });

    it('replay --failed --local reprocesses the dead letters of PostgreSQL for real', async () => {
      const store = await openWritten();
      try {
        const [opened] = await store.deliveries.query({ subject: `${ORG}/${REPO}#${kept}`, state: 'done' });
        expect(opened).toBeDefined();
        const { seq: _s, receivedAt: _r, attempts: _a, lastError: _e, ...row } = opened!;
        const id = '11111111-2222-4333-8444-555555555555';
        expect(await store.deliveries.append({ ...row, id, state: 'pending' })).toBe('accepted');
        await store.deliveries.markFailed([id], 'HTTP 502 from Gitea');
        expect((await store.deliveries.get(id))?.state).toBe('failed');
        const run = await runMain(replayMain, ['--failed', '--local'], rwEnv());
        expect(run.err).toBe('');
        expect(run.lines).toEqual([`${id}  issues/opened  ${ORG}/${REPO}#${kept}  done`, '1 failed delivery reprocessed: 1 done, 0 still failed']);
        expect(run.code).toBe(0);
        expect((await store.deliveries.get(id))?.state).toBe('done');
        expect(await store.leases.current(`${ORG}/${REPO}#${kept}`)).toBeUndefined();
      } finally {
        await store.close();
      }
    });
  });
}
