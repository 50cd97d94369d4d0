import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from '@jest/globals';
import { mulberry32 } from '../../src/simgitea/prng.js';
import { waitFor } from '../helpers/wait.js';
import { burst, expectedLabels, labelsNow, postAll, seedItems, seedRepo, settle, startWorld, type Item, type World } from '../helpers/reliability/world.js';

// Soak (npm run test:soak): Gitea down for 30 seconds under the production defaults (the Gitea
// client createService builds from the config: GITEA_RETRIES 5, circuit cooldown 1 s doubling to
// 30 s, callers waiting up to 30 s; EVAL_MAX_ATTEMPTS 5). Webhooks are acknowledged throughout, the
// circuit opens, and when Gitea is back every decision is applied and nothing is dead-lettered.

const OUTAGE_MS = 30_000;
let w: World | undefined;
afterAll(async () => {
  await w?.close();
});

describe('Gitea down for 30 s', () => {
  it('acknowledges webhooks throughout and applies every decision once Gitea is back', async () => {
    let items: Item[] = [];
    w = await startWorld({
      client: 'default',
      sim: { seed: 30 },
      seed: (sim) => {
        seedRepo(sim);
        items = seedItems(sim, 30);
      },
    });
    const before = items.slice(0, 10);
    const during = items.slice(10);
    expect((await postAll(burst(before, 20, mulberry32(1)), w.post)).every((a) => a.status === 202)).toBe(true);
    await settle(w);

    w.sim.setFaults({ down: true });
    const downSince = Date.now();
    const acked: number[] = [];
    let readyDuring: { status?: string; warnings?: string[] } | undefined;
    // Deliveries keep arriving during the outage: a few every second, for 30 s.
    const planned = burst(during, 4 * Math.ceil(OUTAGE_MS / 1000) + 40, mulberry32(100), 1000);
    let k = 0;
    while (Date.now() - downSince < OUTAGE_MS) {
      const answers = await postAll(planned.slice(k * 4, k * 4 + 4), w.post);
      acked.push(...answers.map((a) => a.status));
      if (readyDuring === undefined && w.client.health().state !== 'closed') readyDuring = (await w.get('/readyz')).json;
      k++;
      await sleep(1000); // the outage's pace, not a wait for work
    }
    expect(acked.every((s) => s === 202)).toBe(true);
    expect(w.client.health().state).not.toBe('closed');
    expect(labelsNow(w.sim, during)).toEqual(Object.fromEntries(during.map((i) => [i.number, []])));

    w.sim.setFaults({});
    const upSince = Date.now();
    // Whatever was planned and not sent yet arrives now (every item gets deliveries).
    expect((await postAll(planned.slice(k * 4), w.post)).every((a) => a.status === 202)).toBe(true);
    await settle(w, 90_000);
    const { requests, retries } = w.client.stats();
    console.log(
      `gitea down ${OUTAGE_MS} ms: ${acked.length} deliveries acknowledged during the outage; caught up ${Date.now() - upSince} ms after Gitea was back; ` +
        `client requests ${requests}, retries ${retries} (${(retries / Math.max(1, requests - retries)).toFixed(2)} per call); /readyz during: ${JSON.stringify(readyDuring)}`,
    );
    expect(labelsNow(w.sim, items)).toEqual(expectedLabels(items));
    expect(w.service.journal.query({ state: 'failed' })).toEqual([]);
    await waitFor(() => w!.client.health().state === 'closed', { what: 'the circuit to close' });
    const retried = w.logs.find({ msg: 'gitea request failed; retrying' }).map((l) => Number(l.attempt));
    expect(Math.max(0, ...retried)).toBeLessThanOrEqual(w.config.giteaRetries);
    expect(readyDuring).toEqual({ status: 'ready', warnings: [expect.stringMatching(/^gitea unavailable: circuit/)] });
  }, 180_000);
});
