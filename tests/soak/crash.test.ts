import { afterAll, describe, expect, it } from '@jest/globals';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from '../helpers/postgres.js';
import { crashOutcome, crashScenario, type CrashScenario, type CrashScenarioOptions } from '../helpers/reliability/crash.js';

// Soak (npm run test:soak): the real service with the real triage evaluator in a child process,
// SIGKILLed at a random moment of each 1,000-delivery burst, five rounds on one store, then a clean
// run. Every delivery answered 202 is processed, labels end right and each was applied by exactly one
// write, and the store is sound (SQLite's integrity check; on PostgreSQL no delivery id held twice).
// Once on SQLite in a DATA_DIR, once on PostgreSQL (DATABASE_URL, a schema of its own, dropped).
// About a minute each on two cores.

const FILE = 'tests/soak/crash.test.ts';
const ROUNDS = 5;
const PER_ROUND = 1000;
const ITEMS = 200;

const scenarios: CrashScenario[] = [];
const schemas: string[] = [];
afterAll(async () => {
  for (const s of scenarios) await s.close();
  await dropSchemas(schemas);
});

async function soak(label: string, extra: Partial<CrashScenarioOptions>): Promise<void> {
  const s = await crashScenario({ rounds: ROUNDS, perRound: PER_ROUND, items: ITEMS, seed: 20260301, latencyMs: 40, ...extra });
  scenarios.push(s);
  const out = await crashOutcome(s);
  console.log(
    [
      `crash soak (${label}):`,
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
}

describe('crash safety soak on SQLite', () => {
  it(`survives ${ROUNDS} SIGKILLs during ${PER_ROUND}-delivery bursts`, () => soak('SQLite', {}), 180_000);
});

const unavailable = await postgresUnavailable();
if (unavailable !== undefined && !POSTGRES_REQUIRED) {
  process.stderr.write(skipLine(FILE, unavailable));
  describe.skip('crash safety soak on PostgreSQL (no database)', () => it('needs PostgreSQL', () => undefined));
} else {
  describe('crash safety soak on PostgreSQL', () => {
    it(`survives ${ROUNDS} SIGKILLs during ${PER_ROUND}-delivery bursts`, async () => {
      if (unavailable !== undefined) throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      const schema = testSchemaName('soak_crash');
      schemas.push(schema);
      await soak('PostgreSQL', { postgres: { databaseUrl: TEST_DATABASE_URL, schema } });
    }, 180_000);
  });
}
