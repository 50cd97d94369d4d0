import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mulberry32 } from '../../src/simgitea/prng.js';
import { overlappingLabelWrites, type GiteaTraffic } from '../helpers/gitea-process.js';
import { describeWithPostgres, startPgCluster, TEST_LEASE_TTL_MS, TEST_ORPHAN_SWEEP_MS, type PgCluster } from '../helpers/pg-cluster.js';
import { burst, type Item } from '../helpers/reliability/world.js';
import { acknowledged, sendAll, type SendOutcome } from '../helpers/replicas.js';
import { waitFor } from '../helpers/wait.js';

// Three service processes on one PostgreSQL schema behind the round-robin front (nginx, or the Node
// proxy with the same retry rule), the simulated Gitea in its own process with one port per replica:
// a SIGKILL during bursts loses nothing that was acknowledged, the others adopt the dead replica's
// pending deliveries, and no two replicas ever write one issue's labels at the same time (the
// per-subject leases of docs/architecture.md, "The store").

const FILE = 'tests/integration/replicas-pg.test.ts';
const ROUNDS = 5;
// 2,000 deliveries in all, five rounds of 400: about a minute on two busy cores.
const PER_ROUND = Number(process.env.REPLICAS_PER_ROUND ?? 400);
const ITEMS = 200;

let c: PgCluster | undefined;

/** Acknowledged ids whose row is not `done`, with their state (`missing`: lost). */
async function notDone(ids: string[]): Promise<[string, string][]> {
  return [...(await c!.view.stateOf(ids))].filter(([, s]) => s !== 'done');
}

/** The labels each item must carry once every acknowledged delivery about it was evaluated. */
function expectedFor(items: Item[]): Record<number, string[]> {
  return Object.fromEntries(items.map((i) => [i.number, [...i.expected].sort()]));
}

await describeWithPostgres(FILE, 'three replicas on one PostgreSQL: SIGKILL during bursts', () => {
  beforeAll(async () => {
    c = await startPgCluster({ items: ITEMS, seed: 1011, latencyMs: 2, jitterMs: 2 });
  }, 90_000);
  afterAll(async () => {
    await c?.close();
  });

  it(`${ROUNDS} rounds of a ${PER_ROUND}-delivery burst over ${ITEMS} issues, one replica SIGKILLed in each: every acknowledged delivery evaluated, no overlapping label writes`, async () => {
    const random = mulberry32(20261206);
    const lines: string[] = [];
    const all: SendOutcome[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const victim = c!.set.replicas[r % c!.set.replicas.length]!;
      const deliveries = burst(c!.items, PER_ROUND, random, r * PER_ROUND);
      const outcomes: SendOutcome[] = [];
      const killAfter = Math.floor(PER_ROUND * (0.2 + 0.5 * random()));
      const sending = sendAll(c!.front.url, deliveries, 16, outcomes);
      await waitFor(() => outcomes.length >= killAfter, { timeoutMs: 60_000, what: `${killAfter} answers before killing ${victim.name}` });
      const pid = victim.runs[victim.runs.length - 1]!.child.pid!;
      expect(await victim.kill()).toEqual({ code: null, signal: 'SIGKILL' });
      const killedAt = Date.now();
      // What the dead process was evaluating: the subjects it held leases on, and their rows so far.
      const held = await c!.view.leasedBy(pid);
      const heldRows = await c!.view.rowsOf(held, killedAt);
      await sending;
      const acked = outcomes.filter(acknowledged).map((o) => o.id);
      // The dead replica stays dead until the others have evaluated everything: what it had
      // acknowledged and not finished can only be done by adoption (its lease expires, a sweep finds it).
      await waitFor(async () => (await c!.view.pending()) === 0, {
        timeoutMs: 60_000 + TEST_LEASE_TTL_MS,
        intervalMs: 100,
        what: `round ${r + 1}: the journal to have nothing pending after ${victim.name} was killed`,
      });
      const finished = [...(await c!.view.finishedAt(acked)).values()].filter((v): v is number => v !== null);
      const adopted = await c!.view.rowsOf(held, killedAt);
      const secs = (to: number | null) => (to === null ? '-' : `${((to - killedAt) / 1000).toFixed(2)} s`);
      lines.push(
        `  round ${r + 1}: sent ${outcomes.length}, acknowledged ${acked.length}, refused ${outcomes.length - acked.length}, ` +
          `${victim.name} SIGKILLed after ${killAfter} answers holding ${held.length} subjects (${heldRows.pending} of their deliveries pending); ` +
          `kill → last of those adopted and evaluated ${secs(adopted.lastFinished)} (lease expiry ${TEST_LEASE_TTL_MS / 1000} s, sweep ${TEST_ORPHAN_SWEEP_MS / 1000} s); ` +
          `kill → whole burst evaluated ${secs(Math.max(...finished))}`,
      );
      expect(await notDone(acked)).toEqual([]);
      all.push(...outcomes);
      await victim.start();
    }
    const traffic: GiteaTraffic[] = await c!.gitea.traffic();
    const overlaps = overlappingLabelWrites(traffic);
    const acked = all.filter(acknowledged);
    console.log(
      [
        `SIGKILL during bursts on PostgreSQL through ${c!.front.kind} (schema ${c!.schema}):`,
        ...lines,
        `  in all: sent ${all.length}, acknowledged ${acked.length} (${acked.filter((o) => o.status === 200).length} as duplicates of a try the front repeated), ` +
          `tries passed on to another replica ${c!.front.retried()}; journal ${JSON.stringify(await c!.view.states())}`,
        `  label writes per replica ${traffic.map((t) => `${t.replica} ${t.labelWrites.length}`).join(', ')} ` +
          `(${(traffic.reduce((n, t) => n + t.labelWrites.length, 0) / acked.length).toFixed(3)} per acknowledged delivery); overlapping writes ${overlaps.length}`,
      ].join('\n'),
    );
    // A 2xx for every POST: the front passes a cut request on to a live replica.
    expect(all.filter((o) => !acknowledged(o))).toEqual([]);
    expect(await notDone(acked.map((o) => o.id))).toEqual([]);
    expect(await c!.view.integrity()).toEqual(['ok']);
    expect(overlaps).toEqual([]);
    // Every item had deliveries in every round: each carries the labels its config gives it.
    expect(await c!.gitea.labels(c!.items.map((i) => i.number))).toEqual(expectedFor(c!.items));
  }, 300_000);
});
