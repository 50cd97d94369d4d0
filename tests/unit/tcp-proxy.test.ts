import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

// tests/helpers/tcp-proxy.ts with the client it is for: pg talking to the machine's PostgreSQL
// (127.0.0.1:5432, database `test`) through the proxy, cut and restored while PostgreSQL keeps running.

const PG = { host: '127.0.0.1', port: 5432, user: process.env.PGUSER ?? 'postgres', database: 'test' };

async function postgresReachable(): Promise<string | undefined> {
  const client = new pg.Client({ ...PG, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unreachable = await postgresReachable();
if (unreachable && process.env.GITEA_TRIAGE_REQUIRE_POSTGRES === '1') {
  throw new Error(`PostgreSQL at 127.0.0.1:5432 (database test) is required (GITEA_TRIAGE_REQUIRE_POSTGRES=1) but unreachable: ${unreachable}`);
}
if (unreachable) {
  console.log(`tcp-proxy: skipped, PostgreSQL at 127.0.0.1:5432 (database test) unreachable (${unreachable}); start PostgreSQL 15 with trust auth to run it`);
}
const describePg = unreachable ? describe.skip : describe;

describePg('TCP proxy between pg and PostgreSQL', () => {
  let proxy: TcpProxy;
  const viaProxy = () => ({ ...PG, port: proxy.port, connectionTimeoutMillis: 1000 });
  const errorText = (e: unknown) => (e instanceof Error ? `${(e as { code?: string }).code ?? ''} ${e.message}` : String(e));

  beforeAll(async () => {
    proxy = await startTcpProxy({ targetPort: PG.port });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('forwards, then a cut terminates the open connection and refuses new ones while PostgreSQL stays up; restore brings it back', async () => {
    const client = new pg.Client(viaProxy());
    client.on('error', () => undefined); // the cut below ends its connection; the query's rejection is what is checked
    await client.connect();
    expect((await client.query<{ n: number }>('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);
    expect(proxy.forwarded).toBe(1);
    expect(proxy.open).toBe(1);

    await proxy.cut();
    expect(proxy.state).toBe('refusing');
    await expect(client.query('SELECT 1')).rejects.toThrow(/terminated|not queryable|ended/i);
    const fresh = new pg.Client(viaProxy());
    await expect(fresh.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // The database itself is fine: only the path through the proxy is cut.
    const direct = new pg.Client(PG);
    await direct.connect();
    expect((await direct.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await direct.end();

    await proxy.restore();
    const again = new pg.Client(viaProxy());
    await again.connect();
    expect((await again.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await again.end();
    await client.end().catch(() => undefined);
  });

  it('a pool fails while cut and recovers by itself after restore, without being recreated', async () => {
    const pool = new pg.Pool({ ...viaProxy(), max: 2 });
    pool.on('error', () => undefined); // an idle client's socket destroyed by the cut: the pool drops it
    try {
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await proxy.cut();
      const during = await pool.query('SELECT 1').then(
        () => 'answered',
        (e: unknown) => errorText(e),
      );
      expect(during).toMatch(/ECONNREFUSED|terminated/);
      await proxy.restore();
      expect((await pool.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    } finally {
      await pool.end();
    }
  });

  it("cut('hang') accepts connections and never answers: only the client's timeout notices", async () => {
    await proxy.cut('hang');
    expect(proxy.state).toBe('hanging');
    const stuck = new pg.Client(viaProxy());
    await expect(stuck.connect()).rejects.toThrow(/timeout/i);
    await proxy.restore();
    const back = new pg.Client(viaProxy());
    await back.connect();
    expect((await back.query('SELECT 4 AS four')).rows).toEqual([{ four: 4 }]);
    await back.end();
  });
});
