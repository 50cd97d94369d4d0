import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { replayMain } from '../../src/tools/replay-cli.js';
import { loadFixture } from '../helpers/signing.js';
import { waitFor } from '../helpers/wait.js';
import { runMain, toolEnv } from './ops-harness.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

let h: TriageHarness;
let n: number;
let failedId: string;

beforeAll(async () => {
  // One attempt, no client retries: a Gitea failure dead-letters the delivery at once.
  h = await startTriage({
    env: { EVAL_MAX_ATTEMPTS: '1', GITEA_RETRIES: '0' },
    seed: (sim) => {
      sim.addOrg(ORG);
      sim.addUser('alice');
      seedTriagedRepo(sim, ORG, REPO);
    },
  });
  h.sim.setFaults({ errorRate: 1, statuses: [500] });
  n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: FULL_BODY });
  await h.settle();
  const row = await waitFor(() => h.service.journal.query({ subject: `${ORG}/${REPO}#${n}`, state: 'failed' })[0], { what: 'a dead-lettered delivery' });
  failedId = row.id;
});

afterAll(async () => {
  await h?.close();
});

describe('replay --failed --local (reprocess dead-lettered deliveries)', () => {
  it('refuses to start while Gitea fails, and requeues nothing', async () => {
    expect(h.service.journal.get(failedId)!.lastError).toMatch(/500/);
    const run = await runMain(replayMain, ['--failed', '--local', '--issue', `${ORG}/${REPO}#${n}`], toolEnv(h, { GITEA_RETRIES: '0' }));
    // The tool's own GET /user fails first: nothing was requeued.
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^replay: cannot identify the bot at http:\/\/127\.0\.0\.1:\d+: GET \/user → 500.*\n$/);
    expect(h.service.journal.get(failedId)!.state).toBe('failed');
  });

  it('reprocesses it for real once Gitea works, and marks it done', async () => {
    h.sim.setFaults({});
    const run = await runMain(replayMain, ['--failed', '--local'], toolEnv(h));
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.lines).toEqual([`${failedId}  issues/opened  ${ORG}/${REPO}#${n}  done`, '1 failed delivery reprocessed: 1 done, 0 still failed']);
    expect(h.service.journal.get(failedId)!.state).toBe('done');
    // Not a dry run: the labels are in Gitea.
    expect(h.sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug']);
    await h.settle();
  });

  it('says so when nothing has failed', async () => {
    expect(h.service.journal.query({ state: 'failed' })).toEqual([]);
    const run = await runMain(replayMain, ['--failed', '--local'], toolEnv(h));
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/^replay: no recorded deliveries match in .*journal\.db\n$/);
  });
});

describe('replay --failed --local when the evaluation fails again', () => {
  it('leaves the delivery failed with the new error and exits non-zero with one line', async () => {
    // A delivery about an issue Gitea does not have: GET …/issues/999 is a 404, dead-lettered at once.
    const delivery = h.sim.makeDelivery(
      'issues',
      'issues',
      (() => {
        const body = structuredClone(loadFixture('issues-opened').body) as Record<string, any>;
        body.repository.owner.login = ORG;
        body.repository.owner.username = ORG;
        body.repository.name = REPO;
        body.repository.full_name = `${ORG}/${REPO}`;
        body.issue.number = 999;
        body.number = 999;
        return body;
      })(),
    );
    expect(await h.deliver(delivery)).toBe(202);
    await h.settle();
    const row = await waitFor(() => h.service.journal.query({ subject: `${ORG}/${REPO}#999`, state: 'failed' })[0], { what: 'a dead-lettered delivery' });
    const before = row.lastError;
    expect(before).toMatch(/404/);

    const run = await runMain(replayMain, ['--failed', '--local', '--delivery', row.id], toolEnv(h));
    expect(run.code).toBe(1);
    expect(run.lines[0]).toMatch(new RegExp(`^${row.id}  issues/opened  ${ORG}/${REPO}#999  still failed: GET /repos/${ORG}/${REPO}/issues/999 → 404`));
    expect(run.lines[1]).toBe('1 failed delivery reprocessed: 0 done, 1 still failed');
    expect(run.err).toMatch(/^replay: 1 of 1 deliveries still fail \(first: GET \/repos\/acme\/widgets\/issues\/999 → 404[^\n]*\)\n$/);
    const after = h.service.journal.get(row.id)!;
    expect(after.state).toBe('failed');
    expect(after.lastError).toMatch(/404/);
  });
});
