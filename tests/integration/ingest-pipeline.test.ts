import { afterEach, describe, expect, it } from '@jest/globals';
import { PermanentError } from '../../src/scheduler/types.js';
import { fixtureDelivery } from '../helpers/signing.js';
import { metricValue, RecordingEvaluator, startService, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

// Receiver → journal → coalescer → scheduler → evaluator, in one process over real HTTP.

let t: TestService | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** An edit of issue `number` whose payload says it was updated at `second` seconds past a base time. */
const editAt = (number: number, second: number) =>
  fixtureDelivery('issues-edited', {
    mutate: (b) => {
      b.issue.number = number;
      b.number = number;
      b.issue.title = `edit ${second}`;
      b.issue.updated_at = new Date(Date.UTC(2026, 2, 2, 11, 0, second)).toISOString().replace('.000Z', 'Z');
    },
  });

describe('coalescing', () => {
  it('turns 30 edits of one issue in a window into one evaluation on the newest state, in either arrival order', async () => {
    const evaluator = new RecordingEvaluator();
    // The 60 deliveries flush as one batch by count (BATCH_MAX), not by time: a window long enough
    // that however slowly they arrive, none is flushed before the last.
    t = await startService({ evaluator, env: { BATCH_WINDOW_MS: '600000', BATCH_MAX: '60' } });
    const forward = Array.from({ length: 30 }, (_, i) => editAt(42, i));
    const reverse = Array.from({ length: 30 }, (_, i) => editAt(50, i)).reverse();
    for (let i = 0; i < 30; i++) {
      const [a, b] = await Promise.all([t.post(forward[i]!), t.post(reverse[i]!)]);
      expect([a.status, b.status]).toEqual([202, 202]);
    }
    await t.service.onIdle();
    expect(await metricValue(t.service, 'gitea_triage_batch_size_count')).toBe(1);

    for (const subject of ['acme/widgets#42', 'acme/widgets#50']) {
      const items = evaluator.itemsFor(subject);
      expect(items).toHaveLength(1);
      const item = items[0]!;
      expect(item.deliveries).toHaveLength(30);
      expect(item.newest.updatedAt).toBe('2026-03-02T11:00:29.000Z');
      expect((item.newest.payload as any).issue.title).toBe('edit 29');
      // oldest to newest by updated_at, whatever the arrival order
      const times = item.deliveries.map((d) => d.updatedAt!);
      expect(times).toEqual([...times].sort());
    }
    expect(t.service.journal.pendingCount()).toBe(0);
    expect(await metricValue(t.service, 'gitea_triage_evaluations_total', { outcome: 'done' })).toBe(2);
  });
});

describe('scheduling', () => {
  it('evaluates two subjects at once, but one subject never twice at once', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.hold = true;
    t = await startService({ evaluator, env: { BATCH_WINDOW_MS: '20', CONCURRENCY: '4' } });
    expect((await t.post(editAt(1, 1))).status).toBe(202);
    expect((await t.post(editAt(2, 1))).status).toBe(202);
    await waitFor(() => evaluator.held === 2, { what: 'both subjects to be evaluating' });
    expect(evaluator.maxRunning).toBe(2);

    // A new event on a subject being evaluated waits for that evaluation.
    const batchesBefore = await metricValue(t.service, 'gitea_triage_batch_size_count');
    expect((await t.post(editAt(1, 2))).status).toBe(202);
    await waitFor(async () => (await metricValue(t!.service, 'gitea_triage_batch_size_count')) > batchesBefore, {
      what: 'the third delivery to reach the scheduler',
    });
    expect(t.service.coalescer.size).toBe(0);
    expect(evaluator.held).toBe(2);
    expect(evaluator.running.get('acme/widgets#1')).toBe(1);

    evaluator.release();
    await t.service.onIdle();
    expect(evaluator.itemsFor('acme/widgets#1')).toHaveLength(2);
    expect(evaluator.itemsFor('acme/widgets#2')).toHaveLength(1);
    expect(evaluator.maxRunningPerSubject).toBe(1);
    expect(t.service.journal.pendingCount()).toBe(0);
  });

  it('enqueues a delivery sent twice only once, even when both arrive together', async () => {
    const evaluator = new RecordingEvaluator();
    t = await startService({ evaluator });
    const d = editAt(7, 1);
    const answers = await Promise.all([t.post(d), t.post(d), t.post(d)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 202]);
    await t.service.onIdle();
    expect(evaluator.deliveryIds.filter((id) => id === d.id)).toHaveLength(1);
    expect(evaluator.observed.filter((o) => o.id === d.id)).toHaveLength(1);
  });

  it("records the bot's own label change and evaluates only the others", async () => {
    const evaluator = new RecordingEvaluator();
    t = await startService({ evaluator, botLogin: 'labeler' });
    const own = fixtureDelivery('issues-label_updated', { mutate: (b) => (b.sender.login = 'labeler') });
    const person = fixtureDelivery('issues-label_updated');
    expect((await t.post(own)).json).toEqual({ status: 'ignored' });
    expect((await t.post(person)).json).toEqual({ status: 'accepted', delivery: person.id });
    await t.service.onIdle();
    expect(evaluator.deliveryIds).toEqual([person.id]);
    expect(evaluator.observed.map((o) => [o.id, o.state])).toEqual([
      [own.id, 'ignored'],
      [person.id, 'pending'],
    ]);
    expect(await metricValue(t.service, 'gitea_triage_deliveries_total', { event: 'issues', outcome: 'ignored' })).toBe(1);
  });

  it('dead-letters a permanently failing evaluation and counts it', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.fail = () => new PermanentError('issue was deleted');
    t = await startService({ evaluator });
    const d = editAt(9, 1);
    expect((await t.post(d)).status).toBe(202);
    await t.service.onIdle();
    expect(t.service.journal.get(d.id)).toMatchObject({ state: 'failed' });
    expect(await metricValue(t.service, 'gitea_triage_dead_letters_total')).toBe(1);
    expect(await metricValue(t.service, 'gitea_triage_evaluations_total', { outcome: 'failed' })).toBe(1);
  });
});

describe('readiness and failures', () => {
  it('is not ready until the bot identity is known, but accepts webhooks meanwhile', async () => {
    t = await startService({ giteaDown: true, waitReady: false });
    await waitFor(() => t!.logs.find({ msg: 'gitea identity unavailable' }).length > 0, { what: 'a failed identity attempt' });
    const notReady = await t.get('/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.json).toEqual({ status: 'not ready', reasons: ['gitea unreachable: bot identity unknown'] });
    expect((await t.post(editAt(3, 1))).status).toBe(202);

    t.gitea!.setFaults({});
    await waitFor(async () => (await t!.get('/readyz')).status === 200, { what: '/readyz to turn 200' });
    expect(t.service.botLogin()).toBe('triage-bot');
    expect(t.logs.find({ msg: 'gitea identity' })[0]).toMatchObject({ level: 'info', login: 'triage-bot', version: '1.25.4' });
  });

  it('answers 503 when the journal fails at run time, and recovers with it', async () => {
    t = await startService();
    t.service.journal.db.pragma('query_only = 1');
    const refused = await t.post(editAt(4, 1));
    expect(refused).toMatchObject({ status: 503, json: { error: 'journal unavailable' } });
    const notReady = await t.get('/readyz');
    expect(notReady).toMatchObject({ status: 503, json: { reasons: ['journal unavailable'] } });

    t.service.journal.db.pragma('query_only = 0');
    expect((await t.post(editAt(4, 2))).status).toBe(202);
    expect((await t.get('/readyz')).status).toBe(200);
  });

  it('reports not ready once stopping has begun, and loses nothing the coalescer held', async () => {
    t = await startService({ env: { BATCH_WINDOW_MS: '60000' } });
    const d = editAt(5, 1);
    expect((await t.post(d)).status).toBe(202);
    const stopping = t.service.stop();
    expect(t.service.readiness()).toMatchObject({ ready: false, reasons: ['shutting down'] });
    await stopping;
    // the coalescer's content went to the scheduler or stays pending; nothing was lost
    const { Journal } = await import('../../src/journal/journal.js');
    const { silentLogger } = await import('../../src/log/logger.js');
    const reopened = Journal.open({ dataDir: t.dataDir, sync: 'normal', log: silentLogger() });
    try {
      expect(['pending', 'done']).toContain(reopened.get(d.id)?.state);
    } finally {
      await reopened.close();
    }
  });
});
