import { afterEach, describe, expect, it } from '@jest/globals';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL } from '../helpers/postgres.js';
import { type InProcessReplica, startStoreReplicas, type StoreReplicas } from '../helpers/store-replicas.js';
import { waitFor } from '../helpers/wait.js';
import { seedTriagedRepo, TRIAGE_YML } from './triage-harness.js';
import type { NewDelivery } from '../../src/journal/types.js';
import { StaleLeaseError } from '../../src/store/api.js';

/**
 * Two service instances ("replicas") on one PostgreSQL schema, one simulated Gitea: the journal in
 * the store is the truth, the per-subject leases serialize evaluations across them, and a push any
 * of them acknowledged invalidates the context of both (docs/architecture.md, "The store").
 */
const ORG = 'acme';
const REPO = 'widgets';
const unavailable = await postgresUnavailable();

if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine('tests/integration/replicas-store.test.ts', unavailable));
  describe.skip('replicas on one PostgreSQL store (no database)', () => {
    it('needs PostgreSQL', () => {});
  });
} else {
  describe('replicas on one PostgreSQL store', () => {
    let r: StoreReplicas | undefined;

    afterEach(async () => {
      if (!r) return;
      await r.close();
      await dropSchemas([r.schema]);
      r = undefined;
    });

    /** Every routed delivery answered, and none of them pending in the store any more. */
    async function drained(s: StoreReplicas, what: string): Promise<void> {
      await s.sim.awaitDeliveries();
      await waitFor(async () => (await s.replicas[0]!.service.store.deliveries.pendingCount()) === 0, { timeoutMs: 30_000, what });
    }

    it('evaluates a delivery sent to both replicas at once once: one 202, one 200 duplicate', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      r = await startStoreReplicas({ count: 2, seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      r.route = 'all';
      const n = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on save', body: 'stack trace attached' });
      await drained(r, 'the opened issue evaluated');

      const opened = r.answers.filter((a) => a.status === 202 || a.status === 200);
      const id = opened[0]!.id;
      expect(r.answers.filter((a) => a.id === id).map((a) => a.status).sort()).toEqual([200, 202]);
      expect(r.evaluations().filter((ids) => ids.includes(id))).toHaveLength(1);
      expect(r.sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
    });

    it('evaluates every delivery of a burst spread over both replicas once, with few label writes', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      r = await startStoreReplicas({ count: 2, seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      r.route = 'round-robin';
      await r.sim.resetStats();
      const issues: number[] = [];
      for (let i = 0; i < 10; i++) issues.push(r.sim.openIssue(ORG, REPO, { user: 'alice', title: `Crash number ${i}`, body: 'stack trace' }));
      for (let round = 0; round < 10; round++) {
        for (const n of issues) r.sim.editIssue(ORG, REPO, n, { body: `stack trace, take ${round}` }, 'alice');
      }
      await drained(r, 'the burst evaluated');

      const accepted = r.answers.filter((a) => a.status === 202).map((a) => a.id);
      expect(r.answers.every((a) => a.status === 202)).toBe(true);
      // Both replicas acknowledged part of the burst.
      expect(new Set(r.answers.map((a) => a.replica))).toEqual(new Set([0, 1]));
      const counts = new Map<string, number>();
      for (const ids of r.evaluations()) for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
      const pending = accepted.filter((id) => !counts.has(id));
      // Ignored deliveries (the bot's own label echoes) are journaled, never evaluated.
      for (const id of pending) expect((await r.replicas[1]!.service.store.deliveries.get(id))?.state).toBe('ignored');
      expect([...counts.values()].every((c) => c === 1)).toBe(true);
      const evaluated = counts.size;
      expect(evaluated).toBeGreaterThanOrEqual(110);
      const writes = r.sim.stats().labelWrites;
      expect(writes / evaluated).toBeLessThanOrEqual(0.2);
      for (const n of issues) expect(r.sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
    });

    it('adopts the pending rows of a replica that died holding their lease, once the lease expired', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      r = await startStoreReplicas({ count: 1, env: { ORPHAN_SWEEP_MS: '200' }, seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      r.sim.setWebhook(undefined);
      const n = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on load', body: 'stack trace' });
      const subject = `${ORG}/${REPO}#${n}`;
      const { store } = r.replicas[0]!.service;
      // What a replica that died mid-evaluation leaves: its acknowledged row pending, its lease held.
      const row: NewDelivery = {
        id: 'acknowledged-by-the-dead-one',
        event: 'issues',
        eventType: 'issues',
        action: 'opened',
        subject,
        repo: `${ORG}/${REPO}`,
        number: n,
        updatedAt: r.sim.issue(ORG, REPO, n).updated_at,
        sender: 'alice',
        headers: {},
        body: JSON.stringify({ action: 'opened', number: n, issue: r.sim.issue(ORG, REPO, n) }),
        state: 'pending',
      };
      expect(await store.deliveries.append(row)).toBe('accepted');
      const dead = await store.leases.acquire(subject, 'the-dead-replica', 1_000);
      expect(dead).toBeDefined();

      await waitFor(async () => (await store.deliveries.get(row.id))?.state === 'done', { timeoutMs: 15_000, what: 'the orphaned row adopted' });
      const logs = r.replicas[0]!.logs;
      expect(logs.find({ msg: 'adopting pending subjects' }).length).toBeGreaterThanOrEqual(1);
      expect(r.evaluations().filter((ids) => ids.includes(row.id))).toHaveLength(1);
      expect(r.sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
      // Were the dead holder only paused, its late writes would carry its old token: refused.
      await expect(store.ownership.setKnown(`${ORG}/${REPO}`, n, ['late'], null, { subject, token: dead!.token })).rejects.toBeInstanceOf(StaleLeaseError);
      const owned = await store.ownership.owned(`${ORG}/${REPO}`, n);
      expect(owned.map((o) => o.label)).toContain('kind/bug');
    });

    it('runs the reconcile sweep on one replica at a time, and on the other once the leader is gone', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      // The reconcile leader's lease lasts 2 intervals + LEASE_TTL_MS: 1 s here.
      r = await startStoreReplicas({ count: 2, env: { RECONCILE_INTERVAL_MS: '200', LEASE_TTL_MS: '600' }, seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      const swept = (i: number) => r!.replicas[i]!.logs.find({ msg: 'reconcile sweep' }).length;
      const skipped = (i: number) => r!.replicas[i]!.logs.find({ msg: 'reconcile sweep skipped: another replica holds the reconcile leader lease' }).length;
      await waitFor(() => skipped(0) + skipped(1) >= 3, { what: 'a few sweeps on both replicas' });
      const leader = swept(0) > 0 ? 0 : 1;
      const other = 1 - leader;
      expect(swept(leader)).toBeGreaterThanOrEqual(1);
      expect(swept(other)).toBe(0);
      expect(skipped(leader)).toBe(0);

      await r.replicas[leader]!.service.stop();
      await waitFor(() => swept(other) >= 1, { timeoutMs: 15_000, what: 'the other replica to take the sweep over' });
    });

    it('on stop, turns not ready at once and gives up the lease of an evaluation still running; the other replica takes it', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      r = await startStoreReplicas({
        count: 2,
        env: { SHUTDOWN_TIMEOUT_MS: '100', ORPHAN_SWEEP_MS: '200' },
        seed: (sim) => seedTriagedRepo(sim, ORG, REPO),
      });
      const [a, b] = r.replicas as [InProcessReplica, InProcessReplica];
      r.route = 0;
      r.sim.setLatency(60_000); // A's evaluation waits on Gitea
      const n = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on exit', body: 'stack trace' });
      const subject = `${ORG}/${REPO}#${n}`;
      await r.sim.awaitDeliveries();
      await waitFor(async () => (await a.service.store.leases.current(subject))?.holder === a.service.holder, { what: 'A to hold the lease' });

      const stopping = a.service.stop();
      expect(a.service.readiness()).toMatchObject({ ready: false, reasons: ['shutting down'] });
      await stopping;
      expect(await b.service.store.leases.current(subject)).toBeUndefined();
      expect((await b.service.store.deliveries.pendingFor(subject)).length).toBe(1);

      r.sim.setLatency(0);
      await waitFor(async () => (await b.service.store.deliveries.pendingCount()) === 0, { timeoutMs: 20_000, what: 'B to adopt and evaluate it' });
      expect(b.logs.find({ msg: 'adopting pending subjects' }).length).toBeGreaterThanOrEqual(1);
      expect(r.sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
    });

    it('uses the new config on replica B right after replica A acknowledged the push', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      r = await startStoreReplicas({ count: 2, seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      // B loads and caches the context (CONTEXT_TTL_MS: 5 minutes by default).
      r.route = 1;
      const first = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'a wish: dark mode', body: 'please' });
      await drained(r, 'the first issue evaluated on B');
      expect(r.sim.issueLabels(ORG, REPO, first)).not.toContain('kind/feature');

      r.route = 0;
      const config = TRIAGE_YML.replace('labels:\n', "labels:\n  kind/feature:\n    title: ['wish']\n");
      r.sim.pushFiles(ORG, REPO, 'alice', { '.gitea/triage.yml': config });
      await r.sim.awaitDeliveries();
      expect(r.answers.at(-1)).toMatchObject({ replica: 0, status: 202 });

      r.route = 1;
      const second = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'a wish: light mode', body: 'please' });
      await drained(r, 'the second issue evaluated on B');
      expect(r.answers.at(-1)).toMatchObject({ replica: 1 });
      expect(r.sim.issueLabels(ORG, REPO, second)).toContain('kind/feature');
    });
  });
}
