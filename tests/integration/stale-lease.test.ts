import { afterEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { giteaClientFromConfig } from '../../src/gitea/client.js';
import type { GiteaApi } from '../../src/gitea/api.js';
import type { NewDelivery } from '../../src/journal/types.js';
import { createLogger } from '../../src/log/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { Scheduler } from '../../src/scheduler/scheduler.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import type { LeaseStore, Store } from '../../src/store/api.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { silentLogger } from '../../src/log/logger.js';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from '../helpers/postgres.js';
import { waitFor } from '../helpers/wait.js';
import { seedTriagedRepo } from './triage-harness.js';

/**
 * A holder that stalls past its lease's expiry (no renewal reaches the store, as in a long GC pause
 * or SIGSTOP) while another process takes the subject: when it wakes up it writes nothing, and sends
 * no label request, because every ownership write of its evaluation carries the lost token
 * (docs/architecture.md, "The store": leases and fencing). On both backends.
 */
const ORG = 'acme';
const REPO = 'widgets';
const SUBJECT = `${ORG}/${REPO}#1`;
const unavailable = await postgresUnavailable();

interface Opened {
  store: Store;
  cleanup(): Promise<void>;
}

const backends: [string, () => Promise<Opened>][] = [
  [
    'sqlite',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-stale-'));
      const store = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
      return { store, cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
    },
  ],
];
if (unavailable === undefined || POSTGRES_REQUIRED) {
  backends.push([
    'postgres',
    async () => {
      if (unavailable) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      const schema = testSchemaName('gt_stale');
      const store = await PostgresStore.open({ url: TEST_DATABASE_URL, schema, poolSize: 4, log: silentLogger() });
      return { store, cleanup: () => dropSchemas([schema]) };
    },
  ]);
} else {
  process.stderr.write(skipLine('tests/integration/stale-lease.test.ts (postgres case)', unavailable));
}

/** Gitea calls wait at `getIssue` until `open()`: the evaluation stalls after taking its lease. */
function gated(gitea: GiteaApi) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let reached!: () => void;
  const atGate = new Promise<void>((resolve) => (reached = resolve));
  const api = new Proxy(gitea, {
    get(target, prop, receiver) {
      if (prop === 'getIssue') {
        return async (...args: Parameters<GiteaApi['getIssue']>) => {
          reached();
          await gate;
          return target.getIssue(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { api, open, atGate };
}

/** The store's leases as a paused process sees them: no renewal arrives while `paused`. */
function pausable(leases: LeaseStore) {
  const state = { paused: false };
  const wrapped: LeaseStore = {
    acquire: (...a) => leases.acquire(...a),
    release: (...a) => leases.release(...a),
    current: (...a) => leases.current(...a),
    leader: (...a) => leases.leader(...a),
    renew: (lease, ttl) => (state.paused ? Promise.reject(new Error('process paused')) : leases.renew(lease, ttl)),
  };
  return { leases: wrapped, state };
}

describe.each(backends)('a stale lease holder (%s)', (_backend, open) => {
  let sim: SimGitea | undefined;
  let opened: Opened | undefined;
  const closers: (() => unknown)[] = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await opened?.store.close();
    await opened?.cleanup();
    await sim?.close();
    opened = undefined;
    sim = undefined;
  });

  it('writes no label and no ownership record once another process took its lease', async () => {
    sim = await SimGitea.start({});
    seedTriagedRepo(sim, ORG, REPO);
    const n = sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on save', body: 'stack trace' });
    opened = await open();
    const { store } = opened;
    const config = loadConfig({ GITEA_URL: sim.url, GITEA_TOKEN: sim.token, WEBHOOK_SECRET: 's', DATA_DIR: '/unused' });
    const logs = new LogCapture();
    const log = createLogger({ level: 'debug', format: 'json', stream: logs.stream });
    const client = giteaClientFromConfig(config, log);
    closers.push(() => client.close());
    const gitea = gated(client);
    const evaluator = createTriageEvaluator({ store, gitea: gitea.api, log, config, botLogin: () => sim!.botLogin });
    const paused = pausable(store.leases);
    const scheduler = new Scheduler({
      store: { deliveries: store.deliveries, leases: paused.leases },
      holder: 'stalled',
      leaseTtlMs: 300,
      evaluator,
      concurrency: 1,
      maxAttempts: 3,
      log,
    });
    closers.push(() => scheduler.stop(0));

    const delivery: NewDelivery = {
      id: 'd-opened-1',
      event: 'issues',
      eventType: 'issues',
      action: 'opened',
      subject: SUBJECT,
      repo: `${ORG}/${REPO}`,
      number: n,
      updatedAt: sim.issue(ORG, REPO, n).updated_at,
      sender: 'alice',
      headers: {},
      body: JSON.stringify({ action: 'opened', number: n, issue: sim.issue(ORG, REPO, n) }),
      state: 'pending',
    };
    expect(await store.deliveries.append(delivery)).toBe('accepted');
    await sim.resetStats();
    scheduler.schedule({ id: 'b-1', subjects: [SUBJECT], deliveryIds: [delivery.id] });
    await gitea.atGate;
    expect((await store.leases.current(SUBJECT))?.holder).toBe('stalled');

    // The holder stalls: its lease expires, another process takes the subject.
    paused.state.paused = true;
    const taken = await waitFor(() => store.leases.acquire(SUBJECT, 'other', 60_000), { what: 'the lease to expire and pass to another holder' });
    gitea.open();
    await scheduler.onIdle();

    expect(logs.find({ msg: 'lease lost during the evaluation: nothing written, left to the new holder' })).toHaveLength(1);
    expect(sim.stats().labelWrites).toBe(0);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual([]);
    expect(await store.ownership.owned(`${ORG}/${REPO}`, n)).toEqual([]);
    expect(await store.ownership.pending(`${ORG}/${REPO}`, n)).toEqual([]);
    expect((await store.deliveries.get(delivery.id))?.state).toBe('pending');

    // Once the subject is free again the same scheduler evaluates it and writes the labels.
    await store.leases.release(taken);
    paused.state.paused = false;
    scheduler.schedule({ id: 'b-2', subjects: [SUBJECT], deliveryIds: [delivery.id] });
    await scheduler.onIdle();
    expect((await store.deliveries.get(delivery.id))?.state).toBe('done');
    expect(sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
    expect(sim.stats().labelWrites).toBeGreaterThan(0);
  });
});
