/**
 * Store micro-benchmark: appends per second through the store interface alone (no HTTP), SQLite
 * (JOURNAL_SYNC full) next to PostgreSQL, with `--concurrency` appends outstanding at a time, as a
 * receiver under load has. Also counts the transactions PostgreSQL used (rows written by one
 * transaction share its xmin), which shows the group commit at work.
 *
 *   node --import tsx scripts/bench/store-append.ts [--count 5000] [--concurrency 64] [--rounds 3]
 *     DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test); a schema is made and dropped.
 *     BODY: payload bytes per delivery (default 5000, the size of Gitea's issue payloads).
 *
 * In-process figures: the ceiling the store puts on ingest, not the service's ingest rate
 * (`npm run bench:ingest` measures that). Two cores shared with other work: compare within one run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { NewDelivery } from '../../src/journal/types.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Store } from '../../src/store/api.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '5000' }, concurrency: { type: 'string', default: '64' }, rounds: { type: 'string', default: '3' } },
});
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const body = JSON.stringify({ action: 'edited', issue: { number: 1, body: 'x'.repeat(Number(process.env.BODY ?? 5000)) } });

function delivery(round: number, i: number): NewDelivery {
  return {
    id: `bench-${round}-${i}-${process.pid}`,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `acme/widgets#${i % 200}`,
    repo: 'acme/widgets',
    number: i % 200,
    updatedAt: '2024-05-01T10:00:00Z',
    sender: 'alice',
    headers: { 'x-gitea-event': 'issues' },
    body,
    state: 'pending',
  };
}

/** Appends `count` deliveries keeping `concurrency` in flight; returns appends per second. */
async function run(store: Store, round: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < count) {
      const outcome = await store.deliveries.append(delivery(round, next++));
      if (outcome !== 'accepted') throw new Error(`unexpected ${outcome}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return count / ((performance.now() - started) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-store-'));
const schema = `gt_bench_${process.pid}`;
const sqlite = SqliteStore.open({ dataDir: dir, sync: 'full', log: silentLogger() });
const pg = await PostgresStore.open({ url, schema, poolSize: 10, log: silentLogger() });
const rates: { sqlite: number[]; postgres: number[] } = { sqlite: [], postgres: [] };
try {
  for (let r = 0; r < rounds; r++) {
    rates.sqlite.push(await run(sqlite, r));
    rates.postgres.push(await run(pg, r));
  }
  const { rows } = await pg.db.query<{ n: string }>('SELECT count(DISTINCT xmin::text) AS n FROM {deliveries}');
  const transactions = Number(rows[0]!.n);
  const s = median(rates.sqlite);
  const p = median(rates.postgres);
  console.log(`appends: ${count} per round, ${concurrency} in flight, ${rounds} rounds (median)`);
  console.log(`sqlite (sync full): ${s.toFixed(0)} appends/s`);
  console.log(`postgres:           ${p.toFixed(0)} appends/s (${((p / s) * 100).toFixed(0)} % of sqlite); ${(count * rounds / transactions).toFixed(1)} appends per transaction`);
} finally {
  await sqlite.close();
  await pg.pool.query(`DROP SCHEMA ${schema} CASCADE`);
  await pg.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
