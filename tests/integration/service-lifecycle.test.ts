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
