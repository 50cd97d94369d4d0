import { afterEach, describe, expect, it } from '@jest/globals';
import type { NewDelivery } from '../../src/journal/types.js';
import { type Store, StaleLeaseError } from '../../src/store/api.js';
import { waitFor } from '../helpers/wait.js';

/**
 * One suite for every store backend (docs/architecture.md, "The store"). `open()` gives two handles
 * on one fresh, empty store: `a` and `b` stand for two processes sharing it (the service and a
 * tool, or two replicas). Everything is asserted through the public interface only.
 */
export interface StoreHarness {
  open(): Promise<{ a: Store; b: Store }>;
  /** Drops what `open` created (called after each test, after both handles are closed). */
  cleanup(): Promise<void>;
}

let counter = 0;
export function delivery(overrides: Partial<NewDelivery> = {}): NewDelivery {
  counter++;
  const number = overrides.number ?? 1;
  return {
    id: `00000000-0000-4000-8000-${String(counter).padStart(12, '0')}`,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `acme/widgets#${number}`,
    repo: 'acme/widgets',
    number,
    updatedAt: '2024-05-01T10:00:00Z',
    sender: 'alice',
    headers: { 'x-gitea-event': 'issues', 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'edited', issue: { number } }),
    state: 'pending',
    ...overrides,
  };
}

const meta = { delivery: 'd-1', configVersion: 'v1' };
const ruleAdd = { label: 'kind/bug', action: 'added' as const, kind: 'rule' as const, user: 'bot', rule: 'labels.kind/bug.title', evidence: 'crash' };

export function storeConformance(backend: string, harness: StoreHarness): void {
  let handles: { a: Store; b: Store } | undefined;

  async function open(): Promise<{ a: Store; b: Store }> {
    handles = await harness.open();
    return handles;
  }

  afterEach(async () => {
    if (handles) await Promise.all([handles.a.close(), handles.b.close()]);
    handles = undefined;
    await harness.cleanup();
  });

  describe(`${backend} store: deliveries`, () => {
    it('accepts a delivery once and answers duplicate for its id from any process, under concurrency', async () => {
      const { a, b } = await open();
      const contested = delivery();
      const others = Array.from({ length: 40 }, (_, i) => delivery({ number: 100 + (i % 5) }));
      const outcomes = await Promise.all([
        ...[a, b, a, b].map((s) => s.deliveries.append(contested)),
        ...others.map((d, i) => (i % 2 ? a : b).deliveries.append(d)),
      ]);
      expect(outcomes.slice(0, 4).filter((o) => o === 'accepted')).toHaveLength(1);
      expect(outcomes.slice(0, 4).filter((o) => o === 'duplicate')).toHaveLength(3);
      expect(outcomes.slice(4).every((o) => o === 'accepted')).toBe(true);
      // Committed when accepted: the other process reads it, with what was sent.
      const stored = await b.deliveries.get(contested.id);
      expect(stored).toMatchObject({ id: contested.id, subject: 'acme/widgets#1', state: 'pending', attempts: 0, headers: contested.headers, body: contested.body });
      expect(await a.deliveries.pendingCount()).toBe(41);
      expect(await a.deliveries.append(others[3]!)).toBe('duplicate');
    });

    it('lists a subject\'s pending rows in journal order, and subjects by their oldest pending row', async () => {
      const { a, b } = await open();
      const first = delivery({ number: 7, updatedAt: '2024-05-01T10:00:03Z' });
      const other = delivery({ number: 8 });
      const second = delivery({ number: 7, updatedAt: '2024-05-01T10:00:01Z' });
      const ignored = delivery({ number: 7, state: 'ignored', reason: 'bot' });
      const third = delivery({ number: 7 });
      for (const [i, d] of [first, other, second, ignored, third].entries()) await (i % 2 ? b : a).deliveries.append(d);
      const pending = await b.deliveries.pendingFor('acme/widgets#7');
      expect(pending.map((r) => r.id)).toEqual([first.id, second.id, third.id]);
      expect(pending[0]!.seq).toBeLessThan(pending[1]!.seq);
      expect(pending.map((r) => r.updatedAt)).toEqual(['2024-05-01T10:00:03Z', '2024-05-01T10:00:01Z', '2024-05-01T10:00:00Z']);
      const subjects = await a.deliveries.pendingSubjects(10);
      expect(subjects.map((s) => s.subject)).toEqual(['acme/widgets#7', 'acme/widgets#8']);
      expect(subjects[0]!.firstSeq).toBe(pending[0]!.seq);
      expect((await a.deliveries.pendingSubjects(10, subjects[0]!.firstSeq)).map((s) => s.subject)).toEqual(['acme/widgets#8']);
      expect(await a.deliveries.pendingSubjects(1)).toHaveLength(1);
      expect(await a.deliveries.get(ignored.id)).toMatchObject({ state: 'ignored', reason: 'bot' });
    });

    it('changes states: done, failed attempts, dead letters, requeue; every process sees them', async () => {
      const { a, b } = await open();
      const [d1, d2, d3] = [delivery({ number: 1 }), delivery({ number: 1 }), delivery({ number: 2 })];
      for (const d of [d1, d2, d3]) await a.deliveries.append(d);
      await a.deliveries.markDone([d1.id]);
      expect((await b.deliveries.get(d1.id))?.state).toBe('done');
      expect((await b.deliveries.pendingFor('acme/widgets#1')).map((r) => r.id)).toEqual([d2.id]);
      await a.deliveries.recordFailure([d2.id], 'HTTP 502');
      await a.deliveries.recordFailure([d2.id], 'HTTP 503');
      expect(await b.deliveries.get(d2.id)).toMatchObject({ state: 'pending', attempts: 2, lastError: 'HTTP 503' });
      await a.deliveries.markFailed([d2.id, d3.id], 'HTTP 404: issue gone');
      expect(await b.deliveries.pendingCount()).toBe(0);
      expect((await b.deliveries.query({ state: 'failed' })).map((r) => r.id)).toEqual([d2.id, d3.id]);
      await b.deliveries.requeue([d3.id]);
      expect((await a.deliveries.pendingFor('acme/widgets#2')).map((r) => r.id)).toEqual([d3.id]);
      expect(await a.deliveries.pendingCount()).toBe(1);
    });

    it('prunes done and ignored rows older than the cut-off, and keeps pending and failed ones', async () => {
      const { a, b } = await open();
      const rows = [delivery(), delivery(), delivery({ state: 'ignored', reason: 'bot' }), delivery(), delivery()];
      for (const d of rows) await a.deliveries.append(d);
      await a.deliveries.markDone([rows[0]!.id, rows[1]!.id]);
      await a.deliveries.markFailed([rows[3]!.id], 'gone');
      const received = (await a.deliveries.get(rows[0]!.id))!.receivedAt;
      expect(await b.deliveries.prune(received - 60_000)).toBe(0);
      expect(await b.deliveries.prune(Date.now() + 60_000)).toBe(3);
      expect((await a.deliveries.query({})).map((r) => [r.id, r.state])).toEqual([
        [rows[3]!.id, 'failed'],
        [rows[4]!.id, 'pending'],
      ]);
      // A pruned id is gone: it journals again.
      expect(await a.deliveries.append(rows[0]!)).toBe('accepted');
    });

    it('answers the tools\' queries: id, repo, subject, state, time range, newest N oldest first', async () => {
      const { a, b } = await open();
      const w1 = delivery({ number: 1 });
      const w2 = delivery({ number: 2 });
      const g1 = delivery({ number: 1, repo: 'acme/gadgets', subject: 'acme/gadgets#1' });
      const w1b = delivery({ number: 1 });
      for (const d of [w1, w2, g1, w1b]) await a.deliveries.append(d);
      await a.deliveries.markDone([w2.id]);
      const ids = async (f: Parameters<Store['deliveries']['query']>[0]) => (await b.deliveries.query(f)).map((r) => r.id);
      expect(await ids({})).toEqual([w1.id, w2.id, g1.id, w1b.id]);
      expect(await ids({ id: g1.id })).toEqual([g1.id]);
      expect(await ids({ repo: 'acme/widgets' })).toEqual([w1.id, w2.id, w1b.id]);
      expect(await ids({ subject: 'acme/widgets#1' })).toEqual([w1.id, w1b.id]);
      expect(await ids({ state: 'done' })).toEqual([w2.id]);
      expect(await ids({ repo: 'acme/widgets', state: 'pending' })).toEqual([w1.id, w1b.id]);
      expect(await ids({ limit: 2 })).toEqual([g1.id, w1b.id]);
      const all = await b.deliveries.query({});
      const t0 = all[0]!.receivedAt;
      const tLast = all[3]!.receivedAt;
      expect(await ids({ since: t0, until: tLast + 1 })).toEqual([w1.id, w2.id, g1.id, w1b.id]);
      expect(await ids({ since: tLast + 1 })).toEqual([]);
      expect(await ids({ until: t0 })).toEqual([]);
      expect(await ids({ id: 'no-such-id' })).toEqual([]);
    });
  });

  describe(`${backend} store: leases`, () => {
    it('grants a subject to one holder at a time, across processes, with growing tokens', async () => {
      const { a, b } = await open();
      const grants = await Promise.all([
        a.leases.acquire('acme/widgets#1', 'a', 30_000),
        b.leases.acquire('acme/widgets#1', 'b', 30_000),
        a.leases.acquire('acme/widgets#1', 'a2', 30_000),
        b.leases.acquire('acme/widgets#1', 'b2', 30_000),
      ]);
      const won = grants.filter((g) => g !== undefined);
      expect(won).toHaveLength(1);
      const lease = won[0]!;
      expect(lease.name).toBe('acme/widgets#1');
      // Even its holder cannot take it twice (two evaluations of one subject in one process).
      expect(await a.leases.acquire('acme/widgets#1', lease.holder, 30_000)).toBeUndefined();
      expect(await b.leases.current('acme/widgets#1')).toMatchObject({ holder: lease.holder, token: lease.token });
      await expect(a.leases.acquire('acme/widgets#9', 'a', 0)).rejects.toThrow(/ttlMs: a positive integer of milliseconds, got 0/);
      // Another subject is independent.
      expect(await b.leases.acquire('acme/widgets#2', 'b', 30_000)).toBeDefined();
      await a.leases.release(lease);
      expect(await b.leases.current('acme/widgets#1')).toBeUndefined();
      const next = await b.leases.acquire('acme/widgets#1', 'b', 30_000);
      expect(next?.token).toBeGreaterThan(lease.token);
    });

    it('lets another holder take an expired lease, refuses the stale token, and keeps a renewed one', async () => {
      const { a, b } = await open();
      const first = (await a.leases.acquire('acme/widgets#3', 'a', 300))!;
      expect(first).toBeDefined();
      const kept = (await a.leases.acquire('acme/widgets#4', 'a', 300))!;
      // Renewal pushes the expiry: b keeps being refused long after the first ttl.
      const deadline = Date.now() + 900;
      let renewed = kept;
      while (Date.now() < deadline) {
        renewed = (await a.leases.renew(renewed, 300))!;
        expect(renewed?.token).toBe(kept.token);
        expect(await b.leases.acquire('acme/widgets#4', 'b', 300)).toBeUndefined();
        // Pacing of the renewals (a holder renews well before expiry), not a wait for work.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // The unrenewed one expires and b takes it, with a newer token.
      const taken = await waitFor(() => b.leases.acquire('acme/widgets#3', 'b', 30_000), { what: 'the expired lease to be granted to b' });
      expect(taken.token).toBeGreaterThan(first.token);
      // a stalled past its expiry: its token is stale now.
      expect(await a.leases.renew(first, 30_000)).toBeUndefined();
      await a.leases.release(first); // no effect on b's grant
      expect(await a.leases.current('acme/widgets#3')).toMatchObject({ holder: 'b', token: taken.token });
    });

    it('elects one leader per job, renews it for its holder, and fails over when it expires', async () => {
      const { a, b } = await open();
      const [la, lb] = await Promise.all([a.leases.leader('prune', 'a', 400), b.leases.leader('prune', 'b', 400)]);
      expect([la, lb].filter((l) => l !== undefined)).toHaveLength(1);
      const leader = (la ?? lb)!;
      const [mine, other] = leader.holder === 'a' ? [a, b] : [b, a];
      const otherName = leader.holder === 'a' ? 'b' : 'a';
      const again = await mine.leases.leader('prune', leader.holder, 400);
      expect(again?.token).toBe(leader.token);
      expect(await other.leases.leader('prune', otherName, 400)).toBeUndefined();
      // A leader lease is not a subject's lease, and other jobs have their own.
      expect(await other.leases.leader('reconcile', otherName, 400)).toBeDefined();
      const took = await waitFor(() => other.leases.leader('prune', otherName, 30_000), { what: 'failover of the prune leader' });
      expect(took.token).toBeGreaterThan(leader.token);
      expect(await mine.leases.leader('prune', leader.holder, 400)).toBeUndefined();
    });

    it('lists pending subjects nobody holds a lease on, for adoption', async () => {
      const { a, b } = await open();
      for (const n of [1, 2, 3]) await a.deliveries.append(delivery({ number: n }));
      const held = (await a.leases.acquire('acme/widgets#2', 'a', 30_000))!;
      expect((await b.deliveries.orphanedSubjects(10)).map((s) => s.subject)).toEqual(['acme/widgets#1', 'acme/widgets#3']);
      await a.leases.release(held);
      expect((await b.deliveries.orphanedSubjects(10)).map((s) => s.subject)).toEqual(['acme/widgets#1', 'acme/widgets#2', 'acme/widgets#3']);
      expect(await b.deliveries.orphanedSubjects(1)).toHaveLength(1);
    });

    it('leaves a subject whose newest pending row came in after the cutoff: it is in its receiver\'s window', async () => {
      const { a, b } = await open();
      const rows = [];
      for (const n of [1, 2]) rows.push(delivery({ number: n }));
      for (const row of rows) await a.deliveries.append(row);
      const received = await Promise.all(rows.map(async (row) => (await a.deliveries.get(row.id))!.receivedAt));
      expect(await b.deliveries.orphanedSubjects(10, Math.min(...received))).toEqual([]);
      expect((await b.deliveries.orphanedSubjects(10, Math.max(...received) + 1)).map((s) => s.subject)).toEqual(['acme/widgets#1', 'acme/widgets#2']);
    });
  });

  describe(`${backend} store: ownership records`, () => {
    it('records who owns which label: rule adds are the bot\'s, a person\'s removal sticks', async () => {
      const { a, b } = await open();
      await a.ownership.record('Acme/Widgets', 7, [ruleAdd, { label: 'area/docs', action: 'added', kind: 'command', user: 'carol' }], meta);
      await a.ownership.record('acme/widgets', 7, [{ label: 'prio/high', action: 'removed', kind: 'person', user: 'dave' }], meta);
      const own = await b.ownership.ownership('acme/widgets', 7);
      expect([...own.botOwned]).toEqual(['kind/bug']);
      expect([...own.humanRemoved]).toEqual(['prio/high']);
      expect(await b.ownership.owned('ACME/widgets', 7)).toEqual([
        expect.objectContaining({ label: 'area/docs', kind: 'command', user: 'carol' }),
        expect.objectContaining({ label: 'kind/bug', kind: 'rule', rule: 'labels.kind/bug.title', evidence: 'crash', configVersion: 'v1', delivery: 'd-1' }),
      ]);
      expect((await b.ownership.events('acme/widgets', 7)).map((e) => [e.label, e.action, e.kind])).toEqual([
        ['kind/bug', 'added', 'rule'],
        ['area/docs', 'added', 'command'],
        ['prio/high', 'removed', 'person'],
      ]);
      // A person removing the rule's label takes it from the bot and it stays removed.
      await b.ownership.record('acme/widgets', 7, [{ label: 'kind/bug', action: 'removed', kind: 'person', user: 'erin' }], meta);
      const after = await a.ownership.ownership('acme/widgets', 7);
      expect(after.botOwned.size).toBe(0);
      expect([...after.humanRemoved].sort()).toEqual(['kind/bug', 'prio/high']);
      expect((await a.ownership.ownership('acme/widgets', 8)).botOwned.size).toBe(0);
    });

    it('attributes a removal recorded as unknown to the person whose delivery explains it, once', async () => {
      const { a, b } = await open();
      const gone = (label: string) => ({ label, action: 'removed' as const, kind: 'unknown' as const, user: null });
      await a.ownership.record('acme/widgets', 12, [ruleAdd], meta);
      await a.ownership.record('acme/widgets', 12, [gone('kind/bug'), gone('prio/low')], meta);
      expect(await b.ownership.unknownRemovals('ACME/widgets', 12)).toEqual(['kind/bug', 'prio/low']);
      await b.ownership.attributeRemovals('acme/widgets', 12, ['kind/bug', 'not-removed'], 'frank', 'd-9');
      expect(await a.ownership.unknownRemovals('acme/widgets', 12)).toEqual(['prio/low']);
      const events = await a.ownership.events('acme/widgets', 12);
      expect(events.map((e) => [e.label, e.action, e.kind, e.user])).toEqual([
        ['kind/bug', 'added', 'rule', 'bot'],
        ['kind/bug', 'removed', 'person', 'frank'],
        ['prio/low', 'removed', 'unknown', null],
      ]);
      // Already a person's: a second attribution changes nothing.
      await a.ownership.attributeRemovals('acme/widgets', 12, ['kind/bug'], 'grace', 'd-10');
      expect((await b.ownership.events('acme/widgets', 12)).find((e) => e.label === 'kind/bug' && e.action === 'removed')?.user).toBe('frank');
      expect([...(await b.ownership.ownership('acme/widgets', 12)).humanRemoved].sort()).toEqual(['kind/bug', 'prio/low']);
    });

    it('keeps write intents until their outcome is recorded; known label sets never go back in time', async () => {
      const { a, b } = await open();
      await a.ownership.intend('acme/widgets', 9, [ruleAdd], meta);
      expect(await b.ownership.pending('acme/widgets', 9)).toEqual([{ change: ruleAdd, meta }]);
      await a.ownership.recordApplied('acme/widgets', 9, [ruleAdd], meta);
      expect(await b.ownership.pending('acme/widgets', 9)).toEqual([]);
      expect([...(await b.ownership.ownership('acme/widgets', 9)).botOwned]).toEqual(['kind/bug']);
      await a.ownership.intend('acme/widgets', 9, [{ ...ruleAdd, label: 'x' }], meta);
      await a.ownership.clearPending('acme/widgets', 9);
      expect(await b.ownership.pending('acme/widgets', 9)).toEqual([]);

      expect(await a.ownership.setKnown('acme/widgets', 9, ['b', 'a', 'a'], '2024-05-01T10:00:05Z')).toBe(true);
      expect(await b.ownership.setKnown('acme/widgets', 9, ['old'], '2024-05-01T10:00:01Z')).toBe(false);
      expect(await b.ownership.known('acme/widgets', 9)).toMatchObject({ labels: ['a', 'b'], updatedAt: '2024-05-01T10:00:05Z' });
      expect(await b.ownership.setKnown('acme/widgets', 9, ['c'], null)).toBe(true);
      expect((await a.ownership.known('acme/widgets', 9))?.labels).toEqual(['c']);
      expect(await a.ownership.known('acme/widgets', 10)).toBeUndefined();

      expect(await a.ownership.replied('acme/widgets', 55, '2024-05-01T10:00:00Z')).toBe(false);
      await b.ownership.markReplied('acme/widgets', 55, '2024-05-01T10:00:00Z');
      await b.ownership.markReplied('acme/widgets', 55, '2024-05-01T10:00:00Z');
      expect(await a.ownership.replied('acme/widgets', 55, '2024-05-01T10:00:00Z')).toBe(true);
      expect(await a.ownership.replied('acme/widgets', 55, '2024-05-02T10:00:00Z')).toBe(false);
    });

    it('refuses a fenced write from a holder that lost its lease, and changes nothing', async () => {
      const { a, b } = await open();
      const subject = 'acme/widgets#11';
      const stale = (await a.leases.acquire(subject, 'a', 200))!;
      await a.ownership.intend('acme/widgets', 11, [ruleAdd], meta, { subject, token: stale.token });
      // a stalls past its expiry; b takes the subject over.
      const fresh = await waitFor(() => b.leases.acquire(subject, 'b', 30_000), { what: 'b to take the expired lease' });
      const late = { subject, token: stale.token };
      const added = { label: 'late', action: 'added' as const, kind: 'rule' as const, user: 'bot' };
      await expect(a.ownership.intend('acme/widgets', 11, [added], meta, late)).rejects.toBeInstanceOf(StaleLeaseError);
      await expect(a.ownership.record('acme/widgets', 11, [added], meta, late)).rejects.toThrow(/lease on acme\/widgets#11 lost/);
      await expect(a.ownership.recordApplied('acme/widgets', 11, [ruleAdd], meta, late)).rejects.toBeInstanceOf(StaleLeaseError);
      await expect(a.ownership.setKnown('acme/widgets', 11, ['late'], null, late)).rejects.toBeInstanceOf(StaleLeaseError);
      await expect(a.ownership.markReplied('acme/widgets', 1, 'x', late)).rejects.toBeInstanceOf(StaleLeaseError);
      await expect(a.ownership.clearPending('acme/widgets', 11, late)).rejects.toBeInstanceOf(StaleLeaseError);
      // Nothing of the late writes landed; the intent made under the lease is still there.
      expect((await b.ownership.pending('acme/widgets', 11)).map((p) => p.change.label)).toEqual(['kind/bug']);
      expect(await b.ownership.owned('acme/widgets', 11)).toEqual([]);
      expect(await b.ownership.known('acme/widgets', 11)).toBeUndefined();
      expect(await b.ownership.replied('acme/widgets', 1, 'x')).toBe(false);
      // The new holder's writes go through.
      await b.ownership.recordApplied('acme/widgets', 11, [ruleAdd], meta, { subject, token: fresh.token });
      expect([...(await a.ownership.ownership('acme/widgets', 11)).botOwned]).toEqual(['kind/bug']);
      // A released lease fences its holder out too.
      await b.leases.release(fresh);
      await expect(b.ownership.setKnown('acme/widgets', 11, ['x'], null, { subject, token: fresh.token })).rejects.toBeInstanceOf(StaleLeaseError);
    });
  });

  describe(`${backend} store: context generations`, () => {
    it('bumps a repository\'s generation for every process, per repository, case-insensitively', async () => {
      const { a, b } = await open();
      expect(await a.generations.get('acme/widgets')).toBe(0);
      expect(await a.generations.bump('acme/widgets')).toBe(1);
      expect(await b.generations.get('Acme/Widgets')).toBe(1);
      const bumps = await Promise.all([a.generations.bump('acme/widgets'), b.generations.bump('ACME/widgets')]);
      expect(bumps.sort()).toEqual([2, 3]);
      expect(await a.generations.get('acme/widgets')).toBe(3);
      expect(await b.generations.get('acme/gadgets')).toBe(0);
    });

    it('is healthy while open; once closed it refuses appends', async () => {
      const { a } = await open();
      expect(await a.healthy()).toBe(true);
      const d = delivery();
      const pending = a.deliveries.append(d);
      await a.close();
      // An append made before close was committed by it.
      expect(await pending).toBe('accepted');
      await expect(a.deliveries.append(delivery())).rejects.toThrow(/closed/);
      expect(await a.healthy()).toBe(false);
    });
  });
}
