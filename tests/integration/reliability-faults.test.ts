import { afterEach, describe, expect, it } from '@jest/globals';
import { mulberry32 } from '../../src/simgitea/prng.js';
import { waitFor } from '../helpers/wait.js';
import {
  burst,
  expectedLabels,
  labelsNow,
  postAll,
  seedItems,
  seedRepo,
  settle,
  startWorld,
  type Item,
  type World,
} from '../helpers/reliability/world.js';

// Gitea misbehaving, with the real service and the real triage evaluator against the simulated
// Gitea over HTTP: 5xx answers, 429s with Retry-After, requests stalled past GITEA_TIMEOUT_MS,
// connection resets, and Gitea down for a while. Every decision is eventually applied, retries per
// request stay within GITEA_RETRIES, the circuit opens while Gitea is down (and /readyz says so, staying 200: the receiver still works),
// and webhooks are acknowledged all along. Faults are seeded (sim `seed`) so a failure replays.
// The client's backoffs are shortened through its options so the file runs in seconds; the
// 30-second outage with production defaults is tests/soak/gitea-down.test.ts.

const RETRIES = 6;
let w: World | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

/** The highest `attempt` of any retried Gitea request, from the client's own log lines. */
function maxRetriedAttempt(world: World): number {
  return Math.max(0, ...world.logs.find({ msg: 'gitea request failed; retrying' }).map((l) => Number(l.attempt)));
}

describe('Gitea faults', () => {
  it('applies every decision through 500/502/503s, 429s, stalls and resets, with bounded retries', async () => {
    let items: Item[] = [];
    w = await startWorld({
      env: { GITEA_RETRIES: String(RETRIES), GITEA_TIMEOUT_MS: '300', CONCURRENCY: '8' },
      sim: { seed: 7 },
      client: { retryBaseMs: 10, retryMaxMs: 250, circuit: { failureThreshold: 5, cooldownMs: 100, maxCooldownMs: 400, maxWaitMs: 20_000 } },
      echo: true,
      seed: (sim) => {
        seedRepo(sim);
        items = seedItems(sim, 20);
      },
    });
    w.sim.setFaults({ errorRate: 0.3, statuses: [500, 502, 503], rate429: 0.1, retryAfterSeconds: 1, stallRate: 0.05, stallMs: 600, resetRate: 0.05 });

    const answers = await postAll(burst(items, 60, mulberry32(7)), w.post);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    await settle(w, 25_000);
    w.sim.setFaults({});

    expect(labelsNow(w.sim, items)).toEqual(expectedLabels(items));
    expect(w.service.journal.query({ state: 'failed' })).toEqual([]);
    const { requests, retries } = w.client.stats();
    // Faults did happen, and were retried…
    expect(retries).toBeGreaterThan(10);
    expect(w.logs.find({ msg: 'gitea request failed; retrying', status: 429 }).length).toBeGreaterThan(0);
    expect(w.logs.lines.some((l) => l.msg === 'gitea request failed; retrying' && /timeout|ECONNABORTED|ETIMEDOUT/i.test(String(l.error)))).toBe(true);
    expect(w.logs.lines.some((l) => l.msg === 'gitea request failed; retrying' && /ECONNRESET|socket hang up/i.test(String(l.error)))).toBe(true);
    // …within the bound: no request was retried more than GITEA_RETRIES times.
    expect(maxRetriedAttempt(w)).toBeLessThanOrEqual(RETRIES);
    expect(retries / (requests - retries)).toBeLessThanOrEqual(RETRIES);
    // The figure for the README and the notes (not an assertion: it depends on the fault mix).
    console.log(
      `gitea faults: ${answers.length} deliveries, ${requests - retries} calls, ${retries} retries ` +
        `(${(retries / (requests - retries)).toFixed(2)} per call, at most ${maxRetriedAttempt(w)} for one call; GITEA_RETRIES ${RETRIES})`,
    );
  }, 40_000);

  it('acknowledges webhooks while Gitea is down, opens the circuit, says so on /readyz and /metrics, and catches up when Gitea is back', async () => {
    let items: Item[] = [];
    w = await startWorld({
      env: { GITEA_RETRIES: String(RETRIES), GITEA_TIMEOUT_MS: '300' },
      sim: { seed: 8 },
      client: { retryBaseMs: 10, retryMaxMs: 200, circuit: { failureThreshold: 3, cooldownMs: 100, maxCooldownMs: 400, maxWaitMs: 20_000 } },
      seed: (sim) => {
        seedRepo(sim);
        items = seedItems(sim, 10);
      },
    });
    const before = items.slice(0, 5);
    const during = items.slice(5);
    expect((await postAll(burst(before, 10, mulberry32(1)), w.post)).every((a) => a.status === 202)).toBe(true);
    await settle(w);
    expect(labelsNow(w.sim, before)).toEqual(expectedLabels(before));
    expect((await w.get('/readyz')).status).toBe(200);

    // Gitea goes down: every connection is dropped as soon as it is accepted.
    w.sim.setFaults({ down: true });
    const downSince = Date.now();
    const answers = await postAll(burst(during, 15, mulberry32(2), 100), w.post);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    await waitFor(() => w!.client.health().state !== 'closed', { what: 'the circuit to open' });
    // Several probes fail while it stays down: a few seconds of outage, measured in failures, not sleeps.
    await waitFor(() => w!.client.health().consecutiveFailures >= 10, { timeoutMs: 15_000, what: "ten failed attempts (about 2 s of probes)" });
    expect(w.client.health().state).not.toBe('closed');
    const duringOutage = await w.get('/readyz'); // checked last, so that the rest is proven either way
    const metricsDuring = (await w.get('/metrics')).text;
    // Still accepting meanwhile.
    const late = burst(during, 5, mulberry32(3), 200);
    expect((await postAll(late, w.post)).map((a) => a.status)).toEqual(late.map(() => 202));
    expect(labelsNow(w.sim, during)).toEqual(Object.fromEntries(during.map((i) => [i.number, []])));

    // Gitea is back.
    const downFor = Date.now() - downSince;
    w.sim.setFaults({});
    await settle(w, 20_000);
    expect(labelsNow(w.sim, items)).toEqual(expectedLabels(items));
    expect(w.service.journal.query({ state: 'failed' })).toEqual([]);
    expect(w.client.health().state).toBe('closed');
    expect((await w.get('/readyz')).status).toBe(200);
    expect(maxRetriedAttempt(w)).toBeLessThanOrEqual(RETRIES);
    // Ready (a load balancer must keep sending webhooks: they are journaled), with the reason to worry.
    expect({ status: duringOutage.status, warnings: (duringOutage.json?.warnings ?? []).join('; ') }).toEqual({
      status: 200,
      warnings: expect.stringMatching(/gitea unavailable: circuit (open|half-open) after \d+ consecutive failures/),
    });
    expect(metricsDuring).toMatch(/^gitea_triage_gitea_circuit_open 1$/m);
    expect((await w.get('/metrics')).text).toMatch(/^gitea_triage_gitea_circuit_open 0$/m);
  }, 40_000);
});
