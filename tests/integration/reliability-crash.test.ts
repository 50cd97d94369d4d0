import fs from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import { SimGitea } from '../../src/simgitea/sim.js';
import { waitFor } from '../helpers/wait.js';
import { childEnv, crashOutcome, crashScenario, killHard, startChild, type CrashScenario } from '../helpers/reliability/crash.js';
import { startGate, type Gate } from '../helpers/reliability/gate.js';
import { openJournal } from '../helpers/reliability/journal-db.js';
import { BOT, deliveryFor, ORG, REPO, seedItems, seedRepo, tempDir, TOKEN } from '../helpers/reliability/world.js';
import { request } from '../helpers/service.js';

// Crash safety with the real triage evaluator in a child process, killed with SIGKILL: every delivery
// answered 202 is processed, every label is right and applied once, the journal stays sound.
// The long version (five rounds of 1,000 deliveries) is tests/soak/crash.test.ts.

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('crash safety (one round)', () => {
  let s: CrashScenario;

  it('processes every 202 after a SIGKILL mid-burst and a restart, with the right labels applied once', async () => {
    s = await crashScenario({ rounds: 1, perRound: 100, items: 20, seed: 101, latencyMs: 10 });
    cleanups.push(() => s.close());
    const out = await crashOutcome(s);
    expect(s.drainExit).toBe(0);
    expect(s.rounds[0]!.acked.length).toBeGreaterThan(0);
    expect(out.figures.itemsCovered).toBeGreaterThan(s.items.length / 2);
    expect(out.notDone).toEqual([]);
    expect(out.integrity).toEqual(['ok']);
    expect(out.labels).toEqual(out.expected);
    // Each expected label was added by exactly one write that changed something; nothing was taken away.
    expect(out.gained).toEqual(out.expected);
    expect(out.lost).toEqual({});
  }, 60_000);
});

describe('a crash between a label write and its bookkeeping', () => {
  let sim: SimGitea;
  let gate: Gate;
  let dataDir: string;

  it('keeps the label the bot\'s own: it is removed once its rule no longer holds', async () => {
    sim = await SimGitea.start({ token: TOKEN, botLogin: BOT });
    seedRepo(sim);
    const [item] = seedItems(sim, 1); // "Crash when saving widget 0" → kind/bug
    gate = await startGate(sim);
    dataDir = tempDir();
    cleanups.push(async () => {
      await gate.close();
      await sim.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    });
    const env = childEnv(gate.url, dataDir);
    expect(item!.expected).toEqual(['kind/bug']);

    // Gitea applies the label, but its answer never reaches the service: the process dies first.
    gate.rules.push({ match: new RegExp(`^POST /api/v1/repos/${ORG}/${REPO}/issues/${item!.number}/labels$`), hold: true });
    const child = await startChild(env);
    cleanups.push(() => killHard(child));
    const d = deliveryFor(item!, 'opened', 1);
    expect((await request(`${child.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body })).status).toBe(202);
    await waitFor(() => gate.held === 1 && sim.issueLabels(ORG, REPO, item!.number).includes('kind/bug'), { what: 'the label write to reach Gitea' });
    await killHard(child);
    gate.rules.length = 0;
    gate.release();

    // Then the title changes: kind/bug's rule no longer holds, and the bot's label must go (docs/architecture.md,
    // "Label ownership": a label the service added follows its rule). A person's label would stay — the bot must still know it is its own.
    sim.editIssue(ORG, REPO, item!.number, { title: 'Question about saving' }, 'alice');
    const restarted = await startChild(env);
    const edit = deliveryFor({ ...item!, title: 'Question about saving' }, 'edited', 2);
    expect((await request(`${restarted.url}/webhook`, { method: 'POST', headers: edit.headers, body: edit.body })).status).toBe(202);
    cleanups.push(() => killHard(restarted));
    const journal = openJournal(dataDir);
    await waitFor(() => journal.pending() === 0, { timeoutMs: 20_000, what: 'both deliveries to be processed' });
    restarted.proc.child.kill('SIGTERM');
    expect((await restarted.proc.exited).code).toBe(0);
    expect(journal.stateOf([d.id, edit.id])).toEqual(new Map([[d.id, 'done'], [edit.id, 'done']]));
    journal.close();
    // The write Gitea applied before the crash was not repeated after the restart.
    expect(gate.labelWrites.filter((x) => x.gained.length > 0).map((x) => x.gained)).toEqual([['kind/bug']]);
    expect(sim.issueLabels(ORG, REPO, item!.number)).toEqual([]);
  }, 60_000);
});
