import { afterAll, describe, expect, it } from '@jest/globals';
import {
  deliveryFor,
  expectedLabels,
  labelsNow,
  ORG,
  postAll,
  seedItems,
  seedRepo,
  settle,
  startWorld,
  type Item,
  type World,
} from '../helpers/reliability/world.js';

// Dead letters: a delivery whose evaluation cannot succeed ends `failed` in the journal with its
// reason, and is counted in /metrics — a permanent error at once, a transient one after
// EVAL_MAX_ATTEMPTS — while the other deliveries go through. (Replaying the failed ones is the
// replay tool's, tested with it.)

let w: World | undefined;
afterAll(async () => {
  await w?.close();
});

/** One sample of the /metrics exposition, read over HTTP like Prometheus does. */
async function scrape(world: World, name: string): Promise<number> {
  const text = (await world.get('/metrics')).text;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('dead letters', () => {
  it('dead-letters an issue Gitea 404s at once, and a repo that always 500s after EVAL_MAX_ATTEMPTS, without stopping the others', async () => {
    let good: Item[] = [];
    let inBroken: Item[] = [];
    w = await startWorld({
      env: { EVAL_MAX_ATTEMPTS: '2', GITEA_RETRIES: '1' },
      client: { retryBaseMs: 5, retryMaxMs: 20 },
      gate: true,
      seed: (sim) => {
        seedRepo(sim);
        seedRepo(sim, 'broken');
        good = seedItems(sim, 3);
        inBroken = seedItems(sim, 1, 'broken');
      },
    });
    // Every request about acme/broken is answered 500, as by a Gitea with a corrupt repository.
    w.gate!.rules.push({ match: new RegExp(`^\\w+ /api/v1/repos/${ORG}/broken(/|$)`), status: 500 });

    const ghost: Item = { number: 999, kind: 'issue', title: 'Crash nobody can see', body: '', expected: [] };
    const missing = deliveryFor(ghost, 'opened', 1);
    const broken = deliveryFor(inBroken[0]!, 'opened', 2, { repo: 'broken' });
    const fine = good.map((item, k) => deliveryFor(item, 'opened', 10 + k));
    const answers = await postAll([missing, broken, ...fine], w.post);
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    await settle(w, 20_000);

    const dead404 = w.service.journal.get(missing.id)!;
    expect(dead404).toMatchObject({ state: 'failed', attempts: 1 });
    expect(dead404.lastError).toMatch(/404/);
    const dead500 = w.service.journal.get(broken.id)!;
    expect(dead500).toMatchObject({ state: 'failed', attempts: 2 });
    expect(dead500.lastError).toMatch(/500/);
    expect(w.service.journal.query({ state: 'failed' }).map((d) => d.id).sort()).toEqual([missing.id, broken.id].sort());

    // The log tells each story, with the delivery id and the reason.
    for (const d of [missing, broken]) {
      const line = w.logs.find({ msg: 'failed', delivery: d.id });
      expect(line).toHaveLength(1);
      expect(line[0]).toMatchObject({ level: 'error', error: w.service.journal.get(d.id)!.lastError });
    }
    expect(await scrape(w, 'gitea_triage_dead_letters_total')).toBe(2);

    // The others were not held back.
    expect(labelsNow(w.sim, good)).toEqual(expectedLabels(good));
    for (const d of fine) expect(w.service.journal.get(d.id)?.state).toBe('done');
  }, 30_000);
});
