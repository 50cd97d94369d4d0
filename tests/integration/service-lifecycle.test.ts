import { afterEach, describe, expect, it } from '@jest/globals';
import { fixtureDelivery } from '../helpers/signing.js';
import { RecordingEvaluator, startService, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

// `Service.onIdle` awaits the coalescer's flush and the scheduler's idle event (it does not poll):
// what a test or the benchmark awaits before reading the results.

let t: TestService | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const edit = (number: number) =>
  fixtureDelivery('issues-edited', {
    mutate: (b) => {
      b.issue.number = number;
      b.number = number;
    },
  });

describe('Service.onIdle', () => {
  it('resolves at once when nothing waits', async () => {
    t = await startService({ evaluator: new RecordingEvaluator() });
    await t.service.onIdle();
    expect(t.service.coalescer.size).toBe(0);
    expect(t.service.scheduler.running).toBe(0);
  });

  it('waits for a notice still in its coalescing window, then for its evaluation', async () => {
    const evaluator = new RecordingEvaluator();
    t = await startService({ evaluator, env: { BATCH_WINDOW_MS: '1000' } });
    expect((await t.post(edit(7))).status).toBe(202);
    await t.service.onIdle();
    expect(evaluator.items.map((i) => i.subject.key)).toEqual(['acme/widgets#7']);
    expect(t.service.coalescer.size).toBe(0);
    expect(t.service.journal.pendingCount()).toBe(0);
  });

  it('resolves only once the deliveries that arrive while it waits are evaluated too', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.hold = true;
    t = await startService({ evaluator });
    expect((await t.post(edit(1))).status).toBe(202);
    await waitFor(() => evaluator.held === 1, { what: 'the first evaluation to start' });
    let idle = false;
    const waiting = t.service.onIdle().then(() => {
      idle = true;
    });
    expect((await t.post(edit(2))).status).toBe(202);
    await waitFor(() => evaluator.held === 2, { what: 'the second evaluation to start' });
    expect(idle).toBe(false);
    evaluator.release();
    await waiting;
    expect(evaluator.items.map((i) => i.subject.key).sort()).toEqual(['acme/widgets#1', 'acme/widgets#2']);
    expect(t.service.journal.pendingCount()).toBe(0);
  });
});

// SIGTERM's first effect (Service.stop): the process says it is going at once — `/readyz` 503 and
// webhooks 503 on new connections — while running evaluations drain, so a probe or a load balancer
// (which retries a 503 on another replica) learns it without waiting for the drain.
describe('Service.stop', () => {
  it('answers /readyz and webhooks 503 on new connections while an evaluation drains, then stops listening', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.hold = true;
    t = await startService({ evaluator, env: { SHUTDOWN_TIMEOUT_MS: '60000' } });
    expect((await t.post(edit(1))).status).toBe(202);
    await waitFor(() => evaluator.held === 1, { what: 'the evaluation to start' });

    const stopping = t.service.stop();
    const ready = await t.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'not ready', reasons: ['shutting down'] });
    const webhook = await t.post(edit(2));
    expect(webhook.status).toBe(503);
    expect(webhook.json).toEqual({ error: 'shutting down' });
    expect(evaluator.items).toHaveLength(0); // still draining: the answers did not wait for it

    evaluator.release();
    await stopping;
    expect(evaluator.items.map((i) => i.subject.key)).toEqual(['acme/widgets#1']);
    await expect(t.get('/readyz')).rejects.toThrow(/ECONNREFUSED/);
  });
});
