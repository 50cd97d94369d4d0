import { afterAll, describe, expect, it } from '@jest/globals';
import net from 'node:net';
import pg from 'pg';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { openStore } from '../../src/store/api.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { delivery, storeConformance } from '../store/conformance.js';
import { waitFor } from '../helpers/wait.js';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from '../helpers/postgres.js';

/**
 * A TCP proxy in front of PostgreSQL that the test can cut (every connection reset, new ones
 * refused) and restore on the same port: the database "unreachable" for the store under test only.
 */
async function cuttableProxy(target: { host: string; port: number }) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(target.port, target.host);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => {});
        }
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server!.address() as net.AddressInfo).port));
    });
  const port = await listen(0);
  const cut = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server!.close(() => resolve());
    });
  return { port, cut, restore: () => listen(port).then(() => undefined), close: cut };
}

const unavailable = await postgresUnavailable();

if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine('tests/integration/store-postgres.test.ts', unavailable));
  describe.skip('PostgreSQL store (no database)', () => {
    it('needs PostgreSQL', () => {});
  });
} else if (unavailable !== undefined) {
  describe('PostgreSQL store', () => {
    it('needs PostgreSQL (GITEA_TRIAGE_REQUIRE_POSTGRES=1)', () => {
      throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
    });
  });
} else {
  const created: string[] = [];
  const open = (schema: string, poolSize = 4) => PostgresStore.open({ url: TEST_DATABASE_URL, schema, poolSize, log: silentLogger() });

  // Each test its own schema: two stores on it stand for two replicas.
  storeConformance('postgres', {
    async open() {
      const schema = testSchemaName('gt_conf');
      created.push(schema);
      const a = await open(schema);
      const b = await open(schema);
      return { a, b };
    },
    async cleanup() {
      await dropSchemas(created.splice(0));
    },
  });

  describe('PostgreSQL store: schema and connections', () => {
    const schemas: string[] = [];
    afterAll(() => dropSchemas(schemas));

    it('migrates once when several processes open a new schema at the same moment', async () => {
      const schema = testSchemaName('gt_mig');
      schemas.push(schema);
      const stores = await Promise.all(Array.from({ length: 6 }, () => open(schema, 2)));
      try {
        const { rows } = await stores[0]!.db.query<{ version: number }>('SELECT version FROM {store_migrations} ORDER BY version');
        expect(rows.map((r) => r.version)).toEqual([1]);
        // Every one of them works on the same tables.
        const outcomes = await Promise.all(stores.map((s) => s.deliveries.append(delivery({ id: 'same-id' }))));
        expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
      // Opening again later applies nothing and keeps the data.
      const again = await open(schema);
      try {
        expect(await again.deliveries.get('same-id')).toBeDefined();
      } finally {
        await again.close();
      }
    });

    it('group-commits concurrent appends: a burst shares few transactions, each acknowledged after its commit', async () => {
      const schema = testSchemaName('gt_group');
      schemas.push(schema);
      const store = await open(schema, 4);
      const other = await open(schema, 2);
      try {
        const burst = Array.from({ length: 300 }, (_, i) => delivery({ number: i % 30 }));
        const acknowledged: string[] = [];
        await Promise.all(
          burst.map(async (d) => {
            expect(await store.deliveries.append(d)).toBe('accepted');
            // Acknowledged means committed: another connection reads it at that moment.
            if (acknowledged.length % 50 === 0) expect(await other.deliveries.get(d.id)).toBeDefined();
            acknowledged.push(d.id);
          }),
        );
        // Rows written by one transaction share its id (xmin): PostgreSQL's own record of the grouping.
        const { rows } = await store.db.query<{ n: string }>('SELECT count(DISTINCT xmin::text) AS n FROM {deliveries}');
        expect(Number(rows[0]!.n)).toBeLessThanOrEqual(30);
        expect(await other.deliveries.pendingCount()).toBe(300);
        // Journal order is arrival order within and across groups.
        const seqs = (await other.deliveries.query({})).map((r) => r.id);
        expect(seqs).toEqual(burst.map((d) => d.id));
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    });

    it('refuses a schema migrated by a newer release, naming both versions', async () => {
      const schema = testSchemaName('gt_newer');
      schemas.push(schema);
      const first = await open(schema);
      await first.db.query('INSERT INTO {store_migrations} (version) VALUES (99)');
      await first.close();
      await expect(open(schema)).rejects.toThrow(new RegExp(`schema ${schema} is at version 99, newer than this release knows \\(1\\): upgrade gitea-triage`));
    });

    it('keeps installations apart by schema, and openStore picks PostgreSQL from DATABASE_URL', async () => {
      const [s1, s2] = [testSchemaName('gt_iso'), testSchemaName('gt_iso')];
      schemas.push(s1, s2);
      const one = await openStore(
        { dataDir: '/nonexistent', journalSync: 'full', databaseUrl: TEST_DATABASE_URL, databaseSchema: s1, databasePoolSize: 2 },
        silentLogger(),
      );
      const two = await open(s2);
      try {
        expect(one.backend).toBe('postgres');
        const d = delivery();
        expect(await one.deliveries.append(d)).toBe('accepted');
        expect(await two.deliveries.append(d)).toBe('accepted');
        await one.deliveries.markDone([d.id]);
        expect((await two.deliveries.get(d.id))?.state).toBe('pending');
        const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
        await client.connect();
        const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${s1}".deliveries`);
        await client.end();
        expect(rows[0]!.n).toBe('1');
      } finally {
        await Promise.all([one.close(), two.close()]);
      }
    });

    it('bounds its pool: many concurrent operations share at most DATABASE_POOL_SIZE connections', async () => {
      const schema = testSchemaName('gt_pool');
      schemas.push(schema);
      const store = await open(schema, 3);
      try {
        await Promise.all(Array.from({ length: 60 }, (_, i) => store.generations.bump(`acme/r${i % 7}`)));
        expect(store.pool.totalCount).toBeLessThanOrEqual(3);
        expect(await store.generations.get('acme/r0')).toBe(9);
      } finally {
        await store.close();
      }
    });

    it('answers with errors while the database is unreachable, never an acknowledgement, and recovers by itself', async () => {
      const schema = testSchemaName('gt_outage');
      schemas.push(schema);
      const target = new URL(TEST_DATABASE_URL);
      const proxy = await cuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
      const viaProxy = new URL(TEST_DATABASE_URL);
      viaProxy.hostname = '127.0.0.1';
      viaProxy.port = String(proxy.port);
      const capture = new LogCapture();
      const log = createLogger({ level: 'debug', format: 'json', stream: capture.stream });
      const store = await PostgresStore.open({ url: viaProxy.toString(), schema, poolSize: 3, log, connectTimeoutMs: 1_000, queryTimeoutMs: 3_000 });
      const direct = await open(schema);
      try {
        const before = delivery();
        expect(await store.deliveries.append(before)).toBe('accepted');
        await proxy.cut();
        const during = delivery();
        await expect(store.deliveries.append(during)).rejects.toThrow();
        await expect(store.leases.acquire('acme/widgets#1', 'a', 30_000)).rejects.toThrow();
        await expect(store.ownership.setKnown('acme/widgets', 1, ['x'], null)).rejects.toThrow();
        expect(await store.healthy()).toBe(false);
        expect(capture.lines.filter((l) => l.msg === 'database unreachable')).toHaveLength(1);
        // What was refused was not committed; what was acknowledged was.
        expect(await direct.deliveries.get(during.id)).toBeUndefined();
        expect(await direct.deliveries.get(before.id)).toBeDefined();

        await proxy.restore();
        await waitFor(() => store.healthy(), { what: 'the store to reach the database again' });
        expect(await store.deliveries.append(during)).toBe('accepted');
        expect(await direct.deliveries.get(during.id)).toBeDefined();
        expect(capture.lines.some((l) => l.msg === 'database reachable again')).toBe(true);
      } finally {
        await Promise.all([store.close(), direct.close()]);
        await proxy.close();
      }
    });

    it('fails to open with a clear error that never shows the password, and reports unhealthy when closed', async () => {
      const capture = new LogCapture();
      const log = createLogger({ level: 'debug', format: 'json', stream: capture.stream });
      const url = 'postgres://triage:s3cret-pw@127.0.0.1:1/test';
      const error = await PostgresStore.open({ url, schema: 'gt_never', poolSize: 1, log, connectTimeoutMs: 2_000 }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error?.message).toMatch(/^cannot open the PostgreSQL store at postgres:\/\/triage:\*\*\*@127\.0\.0\.1:1\/test/);
      expect(error?.message).not.toContain('s3cret-pw');
      expect(JSON.stringify(capture.lines)).not.toContain('s3cret-pw');

      const schema = testSchemaName('gt_health');
      schemas.push(schema);
      const store = await open(schema);
      expect(await store.healthy()).toBe(true);
      await store.close();
      expect(await store.healthy()).toBe(false);
    });
  });
}
