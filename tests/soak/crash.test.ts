import { afterAll, describe, expect, it } from '@jest/globals';
import { crashOutcome, crashScenario, type CrashScenario } from '../helpers/reliability/crash.js';

// Soak (npm run test:soak): the real service with the real triage evaluator in a child process,
// SIGKILLed at a random moment of each 1,000-delivery burst, five rounds on one DATA_DIR, then a
// clean run. Every delivery answered 202 is processed, labels end right and each was applied by
// exactly one write, and SQLite's integrity check passes. About a minute on two cores.

const ROUNDS = 5;
const PER_ROUND = 1000;
const ITEMS = 200;

let s: CrashScenario | undefined;
afterAll(async () => {
  await s?.close();
});

describe('crash safety soak', () => {
  it(`survives ${ROUNDS} SIGKILLs during ${PER_ROUND}-delivery bursts`, async () => {
    s = await crashScenario({ rounds: ROUNDS, perRound: PER_ROUND, items: ITEMS, seed: 20260301, latencyMs: 40 });
    const out = await crashOutcome(s);
    console.log(
      [
        'crash soak:',
        ...s.rounds.map((r, i) => `  round ${i + 1}: sent ${r.sent}, acknowledged ${r.acked.length} (kill after ${r.killedAfter}), done at kill ${r.doneAtKill}, unanswered ${r.unanswered}`),
        `  after the clean run: acknowledged ${out.figures.acked}, not done ${out.notDone.length}; journal ${JSON.stringify(out.figures.states)}`,
        `  label writes ${out.figures.labelWrites}, of which changed something ${out.figures.changingWrites}`,
      ].join('\n'),
    );
    expect(s.drainExit).toBe(0);
    expect(s.rounds.every((r) => r.acked.length > 0)).toBe(true);
    expect(out.figures.itemsCovered).toBeGreaterThan(s.items.length / 2);
    expect(out.notDone).toEqual([]);
    expect(out.integrity).toEqual(['ok']);
    expect(out.labels).toEqual(out.expected);
    expect(out.gained).toEqual(out.expected);
    expect(out.lost).toEqual({});
  }, 180_000);
});
