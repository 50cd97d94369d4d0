import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { explainMain } from '../../src/tools/explain-cli.js';
import { runMain, toolEnv } from './ops-harness.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

let h: TriageHarness;
let n: number;

beforeAll(async () => {
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      for (const u of ['alice', 'bob']) sim.addUser(u);
      seedTriagedRepo(sim, ORG, REPO);
    },
  });
  // The bot adds kind/bug; bob removes it in Gitea; the service learns it from bob's label_updated.
  n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: FULL_BODY });
  await h.settle();
  expect(h.sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug']);
  h.sim.setLabelsAsUser(ORG, REPO, n, 'bob', []);
  await h.settle();
  expect(h.sim.issueLabels(ORG, REPO, n)).toEqual([]);
});

afterAll(async () => {
  await h?.close();
});

describe('explain', () => {
  it("tells the issue's story from DATA_DIR: the rule's addition, then the removal by the person who made it", async () => {
    // No Gitea needed: the tool is given none.
    const env = { DATA_DIR: toolEnv(h).DATA_DIR! };
    const run = await runMain(explainMain, [`${ORG}/${REPO}#${n}`], env);
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const out = run.out;
    expect(run.lines[0]).toMatch(new RegExp(`^${ORG}/${REPO}#${n}: \\d+ deliveries, 2 label changes$`));

    // Deliveries: alice's opening (evaluated), the bot's echo (ignored), bob's label change (evaluated).
    expect(out).toMatch(/^  \S+Z  issues\/opened +by alice +evaluated  \[[0-9a-f-]{36}\]$/m);
    expect(out).toMatch(/^  \S+Z  issues\/label_updated +by triage-bot +ignored \(sent by the bot\)  \[[0-9a-f-]{36}\]$/m);
    expect(out).toMatch(/^  \S+Z  issues\/label_updated +by bob +evaluated  \[[0-9a-f-]{36}\]$/m);

    // Label changes, in order: added by the rule with its evidence and config version, removed by bob.
    const changes = run.lines.filter((l) => /^  \S+Z  [+-] /.test(l));
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatch(/  \+ kind\/bug  by rule labels\.kind\/bug\.title \(evidence: .*crash.*\), config \w+  \[[0-9a-f-]{36}\]$/);
    expect(changes[1]).toMatch(/  - kind\/bug  by bob \(a person, in Gitea\)  \[[0-9a-f-]{36}\]$/);

    expect(out).toContain('  labels last seen: (no labels)\n');
    expect(out).toContain('  added by the service or a command: (none)\n');
    expect(out).toContain('  removed by a person, never re-added by a rule: kind/bug (bob)\n');
    expect(out).toMatch(/Not recorded in the store\n  refused \/label commands: only logged/);
  });

  it('--json gives the same story as data', async () => {
    const run = await runMain(explainMain, [`${ORG}/${REPO}#${n}`, '--json'], { DATA_DIR: toolEnv(h).DATA_DIR! });
    expect(run.code).toBe(0);
    const story = JSON.parse(run.out) as { subject: string; labelEvents: { label: string; action: string; kind: string; user: string | null }[] };
    expect(story.subject).toBe(`${ORG}/${REPO}#${n}`);
    expect(story.labelEvents.map((e) => [e.action, e.label, e.kind, e.user])).toEqual([
      ['added', 'kind/bug', 'rule', 'triage-bot'],
      ['removed', 'kind/bug', 'person', 'bob'],
    ]);
  });

  it('fails with one line for an issue nothing is recorded about, or a DATA_DIR without a journal', async () => {
    const none = await runMain(explainMain, [`${ORG}/${REPO}#4242`], { DATA_DIR: toolEnv(h).DATA_DIR! });
    expect(none.code).toBe(1);
    expect(none.err).toBe(`explain: nothing recorded for ${ORG}/${REPO}#4242 in ${path.join(toolEnv(h).DATA_DIR!, 'journal.db')}\n`);
    const nowhere = await runMain(explainMain, [`${ORG}/${REPO}#${n}`], { DATA_DIR: '/nonexistent/gt-data' });
    expect(nowhere.code).toBe(1);
    expect(nowhere.err).toBe('explain: no journal at /nonexistent/gt-data/journal.db (is DATA_DIR right?)\n');
  });
});
