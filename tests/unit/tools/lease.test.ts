import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../src/log/logger.js';
import type { EvaluationResult, Evaluator, WorkItem } from '../../../src/scheduler/types.js';
import type { LeaseStore } from '../../../src/store/api.js';
import { SqliteStore } from '../../../src/store/sqlite/store.js';
import { issueSubject } from '../../../src/subject.js';
import { leasedEvaluator, SubjectBusyError } from '../../../src/tools/lease.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * A tool's evaluation (backfill, replay --failed) runs only under the subject's lease in the real
 * SQLite store, the lease the service takes: it waits while another holder has it, holds it while
 * it runs, gives it back after, and fails when it lost it meanwhile.
 */

const SUBJECT = 'acme/widgets#7';
const dirs: string[] = [];
const stores: SqliteStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function openStore(): SqliteStore {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-lease-'));
  dirs.push(dir);
  const store = SqliteStore.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
  stores.push(store);
  return store;
}

function item(): WorkItem {
  const d = { id: 'd-1', event: 'backfill', action: null, updatedAt: null, sender: null, receivedAt: 0, payload: {} } as unknown as WorkItem['newest'];
  return { subject: issueSubject('acme', 'widgets', 7), batch: 'backfill', attempt: 1, deliveries: [d], newest: d };
}

/** An evaluator that reports when it starts and finishes when the test says so. */
function gatedEvaluator() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const state = { started: 0, holderDuring: undefined as string | undefined };
  return {
    state,
    open: () => open(),
    evaluator: (leases: LeaseStore): Evaluator => ({
      evaluate: async (): Promise<EvaluationResult> => {
        state.started++;
        state.holderDuring = (await leases.current(SUBJECT))?.holder;
        await gate;
        return { added: ['kind/bug'], removed: [] };
      },
    }),
  };
}

/** The store's leases, counting the acquire attempts (to know the tool is waiting). */
function counting(leases: LeaseStore) {
  const counts = { acquire: 0 };
  const wrapped: LeaseStore = {
    acquire: (...args) => {
      counts.acquire++;
      return leases.acquire(...args);
    },
    renew: (...args) => leases.renew(...args),
    release: (...args) => leases.release(...args),
    current: (...args) => leases.current(...args),
    leader: (...args) => leases.leader(...args),
  };
  return { counts, wrapped };
}

describe('leasedEvaluator', () => {
  it('waits while the service holds the subject, evaluates under its own lease, releases it after', async () => {
    const store = openStore();
    const service = await store.leases.acquire(SUBJECT, 'service-a', 60_000);
    expect(service).toBeDefined();
    const { counts, wrapped } = counting(store.leases);
    const gated = gatedEvaluator();
    const tool = leasedEvaluator(gated.evaluator(store.leases), { leases: wrapped, holder: 'tool:backfill', log: silentLogger(), ttlMs: 60_000 });

    const running = tool.evaluate(item(), silentLogger());
    await waitFor(() => counts.acquire >= 3, { what: 'the tool retrying the held lease' });
    expect(gated.state.started).toBe(0);

    await store.leases.release(service!);
    await waitFor(() => gated.state.started === 1, { what: 'the evaluation to start once the lease is free' });
    expect(gated.state.holderDuring).toBe('tool:backfill');
    // While the tool evaluates, the service cannot take the subject.
    expect(await store.leases.acquire(SUBJECT, 'service-a', 60_000)).toBeUndefined();

    gated.open();
    await expect(running).resolves.toEqual({ added: ['kind/bug'], removed: [] });
    expect(await store.leases.current(SUBJECT)).toBeUndefined();
    const next = await store.leases.acquire(SUBJECT, 'service-a', 60_000);
    expect(next?.token).toBeGreaterThan(service!.token + 1);
  });

  it('renews the lease while a long evaluation runs past its time to live', async () => {
    const store = openStore();
    const gated = gatedEvaluator();
    let renewed = 0;
    const leases: LeaseStore = {
      acquire: (...a) => store.leases.acquire(...a),
      current: (...a) => store.leases.current(...a),
      release: (...a) => store.leases.release(...a),
      leader: (...a) => store.leases.leader(...a),
      renew: async (lease, ttl) => {
        const r = await store.leases.renew(lease, ttl);
        if (r) renewed++;
        return r;
      },
    };
    const tool = leasedEvaluator(gated.evaluator(store.leases), { leases, holder: 'tool:backfill', log: silentLogger(), ttlMs: 150 });
    const running = tool.evaluate(item(), silentLogger());
    await waitFor(() => renewed >= 4, { what: 'renewals past the time to live' });
    // Still the tool's: nobody else could take it although 150 ms passed several times.
    expect((await store.leases.current(SUBJECT))?.holder).toBe('tool:backfill');
    expect(await store.leases.acquire(SUBJECT, 'service-a', 1_000)).toBeUndefined();
    gated.open();
    await expect(running).resolves.toBeDefined();
  });

  it('fails the evaluation when its lease was taken meanwhile', async () => {
    const store = openStore();
    const gated = gatedEvaluator();
    const tool = leasedEvaluator(gated.evaluator(store.leases), { leases: store.leases, holder: 'tool:backfill', log: silentLogger(), ttlMs: 100 });
    const running = tool.evaluate(item(), silentLogger());
    await waitFor(() => gated.state.started === 1, { what: 'the evaluation to start' });
    // Another process took the subject meanwhile (as after an expiry): the tool's token is no longer current.
    const mine = (await store.leases.current(SUBJECT))!;
    await store.leases.release(mine);
    const other = await store.leases.acquire(SUBJECT, 'service-b', 60_000);
    expect(other).toBeDefined();
    gated.open();
    await expect(running).rejects.toThrow(`lease on ${SUBJECT} lost during the evaluation`);
    expect((await store.leases.current(SUBJECT))?.holder).toBe('service-b');
  });

  it('gives a subject up with a clear error when another holder keeps it past the wait', async () => {
    const store = openStore();
    await store.leases.acquire(SUBJECT, 'service-a', 60_000);
    const gated = gatedEvaluator();
    const tool = leasedEvaluator(gated.evaluator(store.leases), { leases: store.leases, holder: 'tool:backfill', log: silentLogger(), ttlMs: 60_000, waitMs: 200 });
    const run = tool.evaluate(item(), silentLogger());
    await expect(run).rejects.toThrow(SubjectBusyError);
    await expect(run).rejects.toThrow(`${SUBJECT} is being evaluated by service-a`);
    expect(gated.state.started).toBe(0);
  });
});
