import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OwnershipStore } from '../../src/applier/ownership.js';
import { replayMain } from '../../src/tools/replay-cli.js';
import { runMain, tempDir, toolEnv } from './ops-harness.js';
import { seedTriagedRepo, startTriage, TRIAGE_YML, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

/**
 * The candidate: `kind/bug` no longer matches "crash" (only the word "bug"), and a new rule labels
 * button trouble `area/ui`. Everything else as the repo's own config.
 */
const CANDIDATE = TRIAGE_YML.replace("title: ['\\bbug\\b', 'crash']", "title: ['\\bbug\\b']").replace(
  'labels:\n',
  "labels:\n  area/ui:\n    title: ['button']\n",
);

let h: TriageHarness;
let work: string;
const issues: Record<string, number> = {};

beforeAll(async () => {
  expect(CANDIDATE).not.toBe(TRIAGE_YML);
  expect(CANDIDATE).toContain("area/ui:\n    title: ['button']");
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      sim.addUser('alice');
      seedTriagedRepo(sim, ORG, REPO);
    },
  });
  work = tempDir();
  issues.crash = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: FULL_BODY });
  issues.button = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Save button is misaligned', body: FULL_BODY });
  issues.bug = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Bug: the button crashes the editor', body: FULL_BODY });
  issues.plain = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Slow start', body: FULL_BODY });
  await h.settle();
});

afterAll(async () => {
  await h?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('replay --local --config (preview a config change)', () => {
  it('shows, per issue, exactly the labels the candidate config changes, and writes nothing', async () => {
    // What the current config did.
    expect(h.sim.issueLabels(ORG, REPO, issues.crash!)).toEqual(['kind/bug']);
    expect(h.sim.issueLabels(ORG, REPO, issues.button!)).toEqual([]);
    expect(h.sim.issueLabels(ORG, REPO, issues.bug!)).toEqual(['kind/bug']);
    expect(h.sim.issueLabels(ORG, REPO, issues.plain!)).toEqual([]);

    const file = path.join(work, 'candidate.yml');
    fs.writeFileSync(file, CANDIDATE);
    const store = OwnershipStore.forJournal(h.service.journal);
    const eventsBefore = [issues.crash, issues.button, issues.bug].map((n) => store.events(`${ORG}/${REPO}`, n!).length);
    const knownBefore = Object.values(issues).map((n) => store.known(`${ORG}/${REPO}`, n));
    h.sim.resetStats();

    const run = await runMain(replayMain, ['--repo', `${ORG}/${REPO}`, '--local', '--config', file], toolEnv(h));
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const verdicts = run.lines.filter((l) => /^acme\/widgets#\d+: /.test(l)).sort();
    expect(verdicts).toEqual(
      [
        `${ORG}/${REPO}#${issues.crash}: -kind/bug`,
        `${ORG}/${REPO}#${issues.button}: +area/ui`,
        `${ORG}/${REPO}#${issues.bug}: +area/ui`,
        `${ORG}/${REPO}#${issues.plain}: no difference`,
      ].sort(),
    );
    expect(run.out).toContain(`${ORG}/${REPO}#${issues.crash}: -kind/bug\n  current config:   no change\n  candidate config: remove kind/bug\n`);
    expect(run.lines.at(-1)).toBe(`4 subjects previewed with ${file}: 3 with a different outcome`);

    // A preview: no label written in Gitea, no ownership record touched.
    expect(h.sim.stats().labelWrites).toBe(0);
    expect([issues.crash, issues.button, issues.bug].map((n) => store.events(`${ORG}/${REPO}`, n!).length)).toEqual(eventsBefore);
    expect(Object.values(issues).map((n) => store.known(`${ORG}/${REPO}`, n))).toEqual(knownBefore);
  });

  it('refuses a candidate that does not parse, naming the file and line', async () => {
    const file = path.join(work, 'broken.yml');
    fs.writeFileSync(file, 'labels:\n  kind/bug:\n    title: [crash\n');
    const run = await runMain(replayMain, ['--repo', `${ORG}/${REPO}`, '--local', '--config', file], toolEnv(h));
    expect(run.code).toBe(1);
    expect(run.err).toMatch(new RegExp(`^replay: ${file.replace(/[.]/g, '\\.')}(:\\d+)?: .+\\n$`));
    expect(run.out).toBe('');
  });
});
