import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OwnershipStore } from '../../src/applier/ownership.js';
import { Journal } from '../../src/journal/journal.js';
import { silentLogger } from '../../src/log/logger.js';
import { backfillMain } from '../../src/tools/backfill-cli.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { runMain, simEnv, tempDir } from './ops-harness.js';
import { seedTriagedRepo } from './triage-harness.js';

const ORG = 'acme';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';
const ISSUES = 500;

let sim: SimGitea;
let work: string;

/** Data rows of a cli-table3 table (compact): the lines between the header rule and the bottom border. */
function tableRows(out: string): string[][] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('│') && !l.startsWith('│ issue '))
    .map((l) => l.split('│').slice(1, -1).map((c) => c.trim()));
}

beforeAll(async () => {
  sim = await SimGitea.start();
  sim.addOrg(ORG);
  sim.addUser('alice');
  seedTriagedRepo(sim, ORG, 'widgets');
  // Every third issue says "crash" (kind/bug); every fifth lacks the template's sections (needs-info).
  for (let i = 1; i <= ISSUES; i++) {
    sim.addIssue(ORG, 'widgets', {
      user: 'alice',
      title: i % 3 === 0 ? `Crash number ${i}` : `Question number ${i}`,
      body: i % 5 === 0 ? '### What happened\nSomething.\n' : FULL_BODY,
    });
  }
  seedTriagedRepo(sim, ORG, 'gadgets');
  sim.addIssue(ORG, 'gadgets', { user: 'alice', title: 'Gadget crash', body: FULL_BODY });
  sim.addIssue(ORG, 'gadgets', { user: 'alice', title: 'Closed crash', body: FULL_BODY, state: 'closed' });
  work = tempDir();
});

afterAll(async () => {
  await sim?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('backfill', () => {
  it('--dry-run over 500 issues prints 500 rows with what it would do, and writes nothing', async () => {
    const dataDir = path.join(work, 'dry');
    sim.resetStats();
    const run = await runMain(backfillMain, ['--repo', `${ORG}/widgets`, '--dry-run', '--concurrency', '16'], simEnv(sim, dataDir));
    expect(run.code).toBe(0);
    const rows = tableRows(run.out);
    expect(rows).toHaveLength(ISSUES);
    expect(run.out.split('\n')[1]).toMatch(/│ issue +│ title +│ would add +│ would remove +│ note +│/);
    const byIssue = new Map(rows.map((r) => [r[0]!, r]));
    expect(byIssue.get(`${ORG}/widgets#3`)!.slice(1, 4)).toEqual(['Crash number 3', 'kind/bug', '']);
    expect(byIssue.get(`${ORG}/widgets#5`)!.slice(1, 4)).toEqual(['Question number 5', 'needs-info', '']);
    expect(byIssue.get(`${ORG}/widgets#15`)!.slice(1, 4)).toEqual(['Crash number 15', 'kind/bug, needs-info', '']);
    expect(byIssue.get(`${ORG}/widgets#1`)!.slice(1, 4)).toEqual(['Question number 1', '', '']);
    const wouldChange = Array.from({ length: ISSUES }, (_, k) => k + 1).filter((i) => i % 3 === 0 || i % 5 === 0).length;
    expect(run.lines.at(-1)).toMatch(new RegExp(`^dry run: 1 repository, evaluated 500, would change ${wouldChange}, unchanged ${ISSUES - wouldChange}, failed 0 \\(\\d+\\.\\d s\\)$`));
    // Progress on stderr (not a terminal here: plain lines), ending at 500/500.
    expect(run.err.trimEnd().split('\n').at(-1)).toBe('backfill: 500/500 (100%)');

    // Nothing written: no label write reached Gitea, no journal was created.
    expect(sim.stats().labelWrites).toBe(0);
    expect(sim.issueLabels(ORG, 'widgets', 3)).toEqual([]);
    expect(fs.existsSync(path.join(dataDir, 'journal.db'))).toBe(false);
  });

  it('--org sweeps every repository of the organisation; a real run writes labels and records ownership', async () => {
    const dataDir = path.join(work, 'real');
    sim.resetStats();
    const run = await runMain(backfillMain, ['--org', ORG, '--repo', `${ORG}/gadgets`], simEnv(sim, dataDir));
    expect(run.err.split('\n').filter((l) => l && !/^backfill: \d+\/\d+ \(\d+%\)$/.test(l))).toEqual([]);
    expect(run.code).toBe(0);
    // Closed issues are not listed; both repositories were swept.
    expect(run.lines.at(-1)).toMatch(/^2 repositories, evaluated 501, changed \d+, unchanged \d+, failed 0 /);
    expect(sim.issueLabels(ORG, 'gadgets', 1)).toEqual(['kind/bug']);
    expect(sim.issueLabels(ORG, 'widgets', 15)).toEqual(['kind/bug', 'needs-info']);
    // A real run lists what changed.
    expect(tableRows(run.out).map((r) => r[0])).toContain(`${ORG}/gadgets#1`);
    expect(sim.stats().labelWrites).toBeGreaterThan(0);
    const journal = Journal.open({ dataDir, sync: 'normal', log: silentLogger() });
    try {
      const owned = OwnershipStore.forJournal(journal).owned(`${ORG}/gadgets`, 1);
      expect(owned.map((o) => [o.label, o.kind, o.rule])).toEqual([['kind/bug', 'rule', expect.stringContaining('kind/bug')]]);
    } finally {
      await journal.close();
    }
  });

  it('--org walks every page: Gitea filters after paging, so a page can be empty while later ones hold repositories', async () => {
    // 55 private repositories the bot cannot see, then two it can: page 1 (50) comes back empty,
    // page 2 holds 5 hidden ones and both visible ones; X-Total-Count says 57.
    sim.addOrg('bigco');
    for (let i = 1; i <= 55; i++) sim.addRepo('bigco', `secret-${i}`, { private: true });
    for (const name of ['open-a', 'open-b']) {
      seedTriagedRepo(sim, 'bigco', name);
      sim.addIssue('bigco', name, { user: 'alice', title: 'A crash', body: FULL_BODY });
    }
    const first = await fetch(`${sim.url}/api/v1/orgs/bigco/repos?page=1&limit=50`, { headers: { Authorization: `token ${sim.token}` } });
    expect(await first.json()).toEqual([]);
    expect(first.headers.get('x-total-count')).toBe('57');
    expect(first.headers.get('link')).toContain('rel="next"');

    const run = await runMain(backfillMain, ['--org', 'bigco', '--dry-run'], simEnv(sim, path.join(work, 'bigco')));
    expect(run.code).toBe(0);
    expect(tableRows(run.out).map((r) => [r[0], r[2]])).toEqual([
      ['bigco/open-a#1', 'kind/bug'],
      ['bigco/open-b#1', 'kind/bug'],
    ]);
    expect(run.lines.at(-1)).toMatch(/^dry run: 2 repositories, evaluated 2, /);
  });

  it('fails with one line for an organisation Gitea does not know', async () => {
    const run = await runMain(backfillMain, ['--org', 'nobody', '--dry-run'], simEnv(sim, path.join(work, 'x')));
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^backfill: --org nobody: GET \/orgs\/nobody\/repos → 404.*\n$/);
  });
});
