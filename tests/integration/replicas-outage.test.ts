import { afterEach, describe, expect, it } from '@jest/globals';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL } from '../helpers/postgres.js';
import { startStoreReplicas, type StoreReplicas } from '../helpers/store-replicas.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { request } from '../helpers/service.js';
import { seedTriagedRepo } from './triage-harness.js';

/**
 * PostgreSQL unreachable for two replicas (a TCP proxy between them and the database, cut): webhooks
 * answer 503 and `/readyz` says why while it lasts, no delivery is acknowledged without its commit,
 * and the replicas recover without a restart once it is back (docs/architecture.md, "The store").
 */
const ORG = 'acme';
const REPO = 'widgets';
const unavailable = await postgresUnavailable();

if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine('tests/integration/replicas-outage.test.ts', unavailable));
  describe.skip('replicas and a database outage (no database)', () => {
    it('needs PostgreSQL', () => {});
  });
} else {
  describe('replicas and a database outage', () => {
    let r: StoreReplicas | undefined;
    let proxy: TcpProxy | undefined;

    afterEach(async () => {
      await proxy?.restore().catch(() => undefined);
      if (r) {
        await r.close();
        await dropSchemas([r.schema]);
      }
      await proxy?.close();
      r = undefined;
      proxy = undefined;
    });

    it('answers 503 while the store is cut, loses no acknowledged delivery, and recovers by itself', async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      const target = new URL(TEST_DATABASE_URL);
      proxy = await startTcpProxy({ targetPort: Number(target.port || 5432), targetHost: target.hostname });
      const viaProxy = new URL(TEST_DATABASE_URL);
      viaProxy.port = String(proxy.port);
      r = await startStoreReplicas({ count: 2, databaseUrl: viaProxy.toString(), seed: (sim) => seedTriagedRepo(sim, ORG, REPO) });
      r.route = 'round-robin';
      const before = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash before', body: 'stack trace' });
      await r.sim.awaitDeliveries();

      await proxy.cut();
      const during: number[] = [];
      for (let i = 0; i < 4; i++) during.push(r.sim.openIssue(ORG, REPO, { user: 'alice', title: `Crash during ${i}`, body: 'stack trace' }));
      await r.sim.awaitDeliveries();
      const cutAnswers = r.answers.slice(-4);
      expect(cutAnswers.map((a) => a.status)).toEqual([503, 503, 503, 503]);
      for (const replica of r.replicas) {
        await waitFor(async () => (await request(`${replica.url}/readyz`)).status === 503, { what: '/readyz to report the store' });
        expect((await request(`${replica.url}/readyz`)).json).toMatchObject({ reasons: ['journal unavailable'] });
      }

      await proxy.restore();
      for (const replica of r.replicas) {
        await waitFor(async () => (await request(`${replica.url}/readyz`)).status === 200, { timeoutMs: 20_000, what: '/readyz ready again' });
      }
      const after = r.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash after', body: 'stack trace' });
      await r.sim.awaitDeliveries();
      expect(r.answers.at(-1)?.status).toBe(202);

      // Every 202 is in the store and evaluated; the refused deliveries are not (Gitea would show them failed).
      const store = r.replicas[0]!.service.store;
      await waitFor(async () => (await store.deliveries.pendingCount()) === 0, { timeoutMs: 20_000, what: 'everything evaluated' });
      for (const a of r.answers.filter((x) => x.status === 202)) expect(['done', 'ignored']).toContain((await store.deliveries.get(a.id))?.state);
      for (const a of cutAnswers) expect(await store.deliveries.get(a.id)).toBeUndefined();
      expect(r.sim.issueLabels(ORG, REPO, before)).toContain('kind/bug');
      expect(r.sim.issueLabels(ORG, REPO, after)).toContain('kind/bug');
    });
  });
}
