import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mulberry32 } from '../../src/simgitea/prng.js';
import type { GiteaTraffic } from '../helpers/gitea-process.js';
import { describeWithPostgres, startPgCluster, type PgCluster } from '../helpers/pg-cluster.js';
import { deliveryFor, ORG, REPO, SECRET, type Action, type Item } from '../helpers/reliability/world.js';
import { acknowledged, startStream, type Replica } from '../helpers/replicas.js';
import { request } from '../helpers/service.js';
import { fixtureDelivery, type SignedDelivery } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';

// Three replicas on one PostgreSQL schema: a rolling restart refuses no delivery, a delivery id sent
// to two replicas at once is evaluated once, and a config pushed through one replica is what the
// others use for the next event (the context generation of docs/architecture.md, "The store").

const FILE = 'tests/integration/replicas-pg-deploy.test.ts';

let c: PgCluster | undefined;
let seq = 1_000_000;

const post = (url: string, d: SignedDelivery) => request(`${url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });

/** Waits until the journal has every id as `done`. */
async function evaluated(ids: string[], what: string): Promise<void> {
  await waitFor(async () => [...(await c!.view.stateOf(ids)).values()].every((s) => s === 'done'), { timeoutMs: 30_000, intervalMs: 50, what });
}

/** Label writes (POST/PUT/DELETE on `…/issues/N/labels`) to item `n`, per replica. */
function labelWritesTo(traffic: GiteaTraffic[], n: number): Record<string, number> {
  const path = `/api/v1/repos/${ORG}/${REPO}/issues/${n}/labels`;
  return Object.fromEntries(traffic.map((t) => [t.replica, t.requests.filter((r) => r.method !== 'GET' && r.url.startsWith(path)).length]));
}

/**
 * Reads of the triage config (the repository's context) by each replica's current process: after
 * its last `GET /user`, which every process makes once, at start.
 */
function contextReads(traffic: GiteaTraffic[]): Record<string, number> {
  const files = `/api/v1/repos/${ORG}/${REPO}/`;
  return Object.fromEntries(
    traffic.map((t) => {
      const started = t.requests.map((r) => r.method === 'GET' && r.url === '/api/v1/user').lastIndexOf(true);
      const reads = t.requests.slice(started + 1).filter((r) => r.method === 'GET' && r.url.startsWith(files) && /file-contents|contents\/\.gitea/.test(r.url));
      return [t.replica, reads.length];
    }),
  );
}

/** A push to the default branch that changed `.gitea/triage.yml`, as Gitea delivers it. */
function configPush(): SignedDelivery {
  return fixtureDelivery('push', {
    secret: SECRET,
    mutate: (b) => {
      b.ref = 'refs/heads/main';
      b.repository.name = REPO;
      b.repository.full_name = `${ORG}/${REPO}`;
      b.repository.owner.login = ORG;
      b.repository.owner.username = ORG;
      b.repository.default_branch = 'main';
      for (const commit of b.commits) commit.modified = ['.gitea/triage.yml'];
      b.head_commit.modified = ['.gitea/triage.yml'];
    },
  });
}

await describeWithPostgres(FILE, 'three replicas on one PostgreSQL: deploys, duplicates, config', () => {
  beforeAll(async () => {
    c = await startPgCluster({ items: 40, seed: 1012 });
  }, 90_000);
  afterAll(async () => {
    await c?.close();
  });

  it('a rolling restart (SIGTERM, exit 0, start, next) during a steady stream refuses no delivery, and evaluates every one', async () => {
    const random = mulberry32(4242);
    const actions: Action[] = ['opened', 'edited', 'comment'];
    const stream = startStream(c!.front.url, (k) => deliveryFor(c!.items[Math.floor(random() * c!.items.length)]!, actions[k % 3]!, seq++), {
      intervalMs: 10,
      inFlight: 4,
    });
    const exits = [];
    try {
      for (const replica of c!.set.replicas) {
        const mark = stream.outcomes.length;
        await waitFor(() => stream.outcomes.length >= mark + 20, { timeoutMs: 20_000, what: `deliveries flowing before stopping ${replica.name}` });
        exits.push(await replica.stop());
        const down = stream.outcomes.length;
        await waitFor(() => stream.outcomes.length >= down + 20, { timeoutMs: 20_000, what: `deliveries flowing while ${replica.name} is down` });
        await replica.start();
      }
      const after = stream.outcomes.length;
      await waitFor(() => stream.outcomes.length >= after + 40, { timeoutMs: 20_000, what: 'deliveries after the rolling restart' });
    } finally {
      await stream.stop();
    }
    const outcomes = stream.outcomes;
    const refused = outcomes.filter((o) => !acknowledged(o));
    const acked = outcomes.filter(acknowledged).map((o) => o.id);
    await evaluated(acked, 'every acknowledged delivery of the rolling restart evaluated');
    console.log(
      `rolling restart on PostgreSQL through ${c!.front.kind}: sent ${outcomes.length}, acknowledged ${acked.length}, refused ${refused.length}; ` +
        `tries passed on to another replica ${c!.front.retried()}`,
    );
    expect(exits).toEqual(c!.set.replicas.map(() => ({ code: 0, signal: null })));
    expect(refused).toEqual([]);
  }, 120_000);

  it('the same delivery id sent to two replicas at once: one 202, one 200 duplicate, one evaluation', async () => {
    const [fresh] = await c!.gitea.seed(1); // a crash report: `kind/bug`, never delivered before
    const item: Item = fresh!;
    expect(item.expected).toEqual(['kind/bug']);
    const d = deliveryFor(item, 'opened', seq++);
    const [r1, r2] = c!.set.replicas;
    const answers = await Promise.all([post(r1!.url, d), post(r2!.url, d)]);
    expect(answers.map((a) => `${a.status} ${String(a.json?.status)}`).sort()).toEqual(['200 duplicate', '202 accepted']);
    await evaluated([d.id], `delivery ${d.id} evaluated`);
    expect(await c!.gitea.labels([item.number])).toEqual({ [item.number]: ['kind/bug'] });
    const writes = labelWritesTo(await c!.gitea.traffic(), item.number);
    expect(Object.values(writes).reduce((a, b) => a + b, 0)).toBe(1);
  });

  it('a config push acknowledged by replica A, then an issue event to replica B: B decides with the new config', async () => {
    const [a, b] = c!.set.replicas as [Replica, Replica, Replica];
    const questions = (await c!.gitea.seed(10)).filter((i) => i.title.startsWith('Question'));
    expect(questions.length).toBeGreaterThanOrEqual(2);
    const [warm, probe] = questions as [Item, Item];
    // Every replica's process caches the old config first (an event to each until each has read
    // it), so a replica that missed the push would decide with it for CONTEXT_TTL_MS (5 minutes by
    // default).
    await waitFor(
      async () => {
        const reads = contextReads(await c!.gitea.traffic());
        const cold = c!.set.replicas.filter((r) => !(reads[r.name]! > 0));
        for (const r of cold) {
          const d = deliveryFor(warm, 'edited', seq++);
          expect((await post(r.url, d)).status).toBe(202);
          await evaluated([d.id], `warm-up delivery to ${r.name} evaluated`);
        }
        return cold.length === 0;
      },
      { timeoutMs: 30_000, what: 'every replica to have read the triage config' },
    );
    expect(await c!.gitea.labels([warm.number])).toEqual({ [warm.number]: [] });

    await c!.gitea.setFile('.gitea/triage.yml', "labels:\n  kind/feature:\n    title: ['^question']\ncommands:\n  enabled: false\n");
    const push = configPush();
    expect((await post(a.url, push)).status).toBe(202);
    const event = deliveryFor(probe, 'opened', seq++);
    expect((await post(b.url, event)).status).toBe(202);
    await evaluated([event.id], 'the issue event sent to B evaluated');
    expect(await c!.gitea.labels([probe.number])).toEqual({ [probe.number]: ['kind/feature'] });
  });
});
