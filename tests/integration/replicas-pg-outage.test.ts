import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mulberry32 } from '../../src/simgitea/prng.js';
import { overlappingLabelWrites } from '../helpers/gitea-process.js';
import { describeWithPostgres, startPgCluster, TEST_LEASE_TTL_MS, TEST_ORPHAN_SWEEP_MS, type PgCluster } from '../helpers/pg-cluster.js';
import { TEST_DATABASE_URL } from '../helpers/postgres.js';
import { spawnTs } from '../helpers/process.js';
import { childEnv } from '../helpers/reliability/crash.js';
import { deliveryFor, ORG, REPO, type Action } from '../helpers/reliability/world.js';
import { acknowledged, startStream } from '../helpers/replicas.js';
import { request } from '../helpers/service.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

// Three replicas reaching PostgreSQL through a TCP proxy the test cuts: while the database is
// unreachable every webhook is refused with 503 (never a 202 without a commit) and /readyz says so;
// when it is back the same processes take deliveries again. And `backfill` on the same store beside
// the service: the per-subject leases keep them from writing one issue's labels at the same time.

const FILE = 'tests/integration/replicas-pg-outage.test.ts';
const OUTAGE_MS = 10_000;

let c: PgCluster | undefined;
let proxy: TcpProxy | undefined;
let seq = 2_000_000;
const ACTIONS: Action[] = ['opened', 'edited', 'comment'];

const readyz = async (url: string) => (await request(`${url}/readyz`).catch(() => ({ status: 0 }))).status;

await describeWithPostgres(FILE, 'three replicas on one PostgreSQL: database outage, backfill beside', () => {
  beforeAll(async () => {
    const target = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ targetPort: Number(target.port || 5432), targetHost: target.hostname });
    target.host = `127.0.0.1:${proxy.port}`;
    c = await startPgCluster({ items: 60, seed: 1013, databaseUrl: target.toString() });
  }, 90_000);
  afterAll(async () => {
    await c?.close();
    await proxy?.close();
  });

  it(`the database unreachable for ${OUTAGE_MS / 1000} s: 503s and /readyz 503 while it is, no 202 lost, the same processes recover`, async () => {
    const random = mulberry32(99);
    const stream = startStream(c!.front.url, (k) => deliveryFor(c!.items[Math.floor(random() * c!.items.length)]!, ACTIONS[k % 3]!, seq++), {
      intervalMs: 10,
      inFlight: 4,
    });
    let cutAt = 0;
    let restoredAt = 0;
    /** /readyz of the three replicas, sampled through the outage. */
    const samples: number[][] = [];
    const direct: { status: number; error: unknown }[] = [];
    try {
      try {
        await waitFor(() => stream.outcomes.length >= 50, { timeoutMs: 20_000, what: 'deliveries flowing before the cut' });
        cutAt = stream.outcomes.length;
        await proxy!.cut();
        const cutTime = Date.now();
        // The outage lasts OUTAGE_MS: the fault's length, not a wait for work.
        await waitFor(
          async () => {
            samples.push(await Promise.all(c!.set.replicas.map((r) => readyz(r.url))));
            return Date.now() - cutTime >= OUTAGE_MS;
          },
          { timeoutMs: OUTAGE_MS + 20_000, intervalMs: 250, what: `an outage of ${OUTAGE_MS} ms` },
        );
        // Each replica, asked directly while the database is still down, refuses a new delivery.
        for (const r of c!.set.replicas) {
          const d = deliveryFor(c!.items[0]!, 'edited', seq++);
          const a = await request(`${r.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
          direct.push({ status: a.status, error: a.json?.error });
        }
        restoredAt = stream.outcomes.length;
      } finally {
        await proxy!.restore();
      }
      await waitFor(async () => (await Promise.all(c!.set.replicas.map((r) => readyz(r.url)))).every((s) => s === 200), {
        timeoutMs: 30_000,
        what: 'every replica ready again after the database came back',
      });
      const back = stream.outcomes.length;
      await waitFor(() => stream.outcomes.slice(back).filter((o) => o.status === 202).length >= 30, { timeoutMs: 20_000, what: '202s after the recovery' });
    } finally {
      await stream.stop();
    }
    const firstDown = samples.findIndex((s) => s.every((x) => x === 503));
    const outcomes = stream.outcomes;
    const during = outcomes.slice(cutAt, restoredAt);
    const acked = outcomes.filter(acknowledged).map((o) => o.id);
    const statuses = (list: typeof outcomes) => list.reduce<Record<number, number>>((m, o) => ({ ...m, [o.status]: (m[o.status] ?? 0) + 1 }), {});
    await waitFor(async () => [...(await c!.view.stateOf(acked)).values()].every((s) => s === 'done'), {
      timeoutMs: 30_000 + TEST_LEASE_TTL_MS + TEST_ORPHAN_SWEEP_MS,
      intervalMs: 100,
      what: 'every acknowledged delivery evaluated after the outage',
    });
    console.log(
      `database outage of ${OUTAGE_MS / 1000} s under a stream through ${c!.front.kind}: before ${JSON.stringify(statuses(outcomes.slice(0, cutAt)))}, ` +
        `during ${JSON.stringify(statuses(during))}, after ${JSON.stringify(statuses(outcomes.slice(restoredAt)))}; ` +
        `acknowledged ${acked.length}, all evaluated; /readyz all 503 from sample ${firstDown + 1} of ${samples.length} (every 250 ms)`,
    );
    // Every replica turned unready, and stayed so until the database came back.
    expect(firstDown).toBeGreaterThanOrEqual(0);
    expect(samples.slice(firstDown).filter((s) => !s.every((x) => x === 503))).toEqual([]);
    expect(direct).toEqual(c!.set.replicas.map(() => ({ status: 503, error: 'journal unavailable' })));
    // Through the front the refusals are 503s, or 502 once nginx found every upstream refusing (its
    // proxy_next_upstream ran out of upstreams); only requests answered just before the cut are 202s.
    expect(during.filter((o) => ![202, 502, 503].includes(o.status))).toEqual([]);
    expect(during.filter((o) => o.status !== 202).length).toBeGreaterThan(during.length / 2);
    // Recovered without a restart: each replica still runs its first process.
    expect(c!.set.replicas.map((r) => [r.runs.length, r.running])).toEqual([
      [1, true],
      [1, true],
      [1, true],
    ]);
  }, 120_000);

  it('backfill on the same store beside three replicas under a stream: never two writers of one issue at once, labels right', async () => {
    const items = await c!.gitea.seed(60); // never delivered, never labelled: backfill and the service both have work on them
    const backfillUrl = await c!.gitea.attach('backfill');
    const random = mulberry32(5);
    const stream = startStream(c!.front.url, (k) => deliveryFor(items[Math.floor(random() * items.length)]!, ACTIONS[k % 3]!, seq++), {
      intervalMs: 5,
      inFlight: 8,
    });
    let exit;
    let stderr = '';
    try {
      await waitFor(() => stream.outcomes.length >= 20, { timeoutMs: 20_000, what: 'the stream under way' });
      // No usable DATA_DIR: a backfill that ignored DATABASE_URL (and so the service's leases) fails.
      const env = childEnv(backfillUrl, '/dev/null/no-data-dir', {
        DATABASE_URL: TEST_DATABASE_URL,
        DATABASE_SCHEMA: c!.schema,
        LEASE_TTL_MS: String(TEST_LEASE_TTL_MS),
      });
      const run = spawnTs('scripts/backfill.ts', env, ['--repo', `${ORG}/${REPO}`, '--concurrency', '8']);
      exit = await run.exited;
      stderr = run.stderr();
    } finally {
      await stream.stop();
    }
    const acked = stream.outcomes.filter(acknowledged).map((o) => o.id);
    expect(acked.length).toBeGreaterThan(0);
    await waitFor(async () => [...(await c!.view.stateOf(acked)).values()].every((s) => s === 'done'), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'every acknowledged delivery evaluated',
    });
    const traffic = await c!.gitea.traffic();
    const bf = traffic.find((t) => t.replica === 'backfill')!;
    const overlaps = overlappingLabelWrites(traffic);
    console.log(
      `backfill beside the service: stream acknowledged ${acked.length}; label writes ${traffic.map((t) => `${t.replica} ${t.labelWrites.length}`).join(', ')}; ` +
        `overlapping writes ${overlaps.length}`,
    );
    expect({ exit, stderr: exit?.code === 0 ? '' : stderr }).toEqual({ exit: { code: 0, signal: null }, stderr: '' });
    // The backfill did evaluate issues (it read them through its own port).
    expect(bf.requests.some((r) => /\/issues\/\d+/.test(r.url))).toBe(true);
    expect(overlaps).toEqual([]);
    expect(await c!.gitea.labels(items.map((i) => i.number))).toEqual(Object.fromEntries(items.map((i) => [i.number, [...i.expected].sort()])));
  }, 120_000);
});
