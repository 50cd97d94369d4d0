import { afterEach, describe, expect, it } from '@jest/globals';
import type { GiteaClient } from '../../src/gitea/client.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

let h: TriageHarness | undefined;

afterEach(async () => {
  await h?.close();
  h = undefined;
});

const seed = (sim: TriageHarness['sim']) => {
  sim.addOrg(ORG);
  seedTriagedRepo(sim, ORG, REPO);
  sim.addUser('alice');
};

describe('triage under operating conditions', () => {
  it('dry run decides and logs, and writes nothing to Gitea', async () => {
    h = await startTriage({ env: { DRY_RUN: 'true' }, seed });
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on save', body: '### What happened\nBoom\n' });
    h.sim.comment(ORG, REPO, n, 'alice', '/label area/ui');
    await h.settle();
    expect(h.sim.issueLabels(ORG, REPO, n)).toEqual([]);
    expect(h.sim.stats().labelWrites).toBe(0);
    expect(h.sim.stats().byRoute['POST /repos/{owner}/{repo}/issues/{index}/comments']).toBeUndefined();
    const decision = h.logs.find({ msg: 'dry-run decision', number: n });
    expect(decision).toHaveLength(1);
    expect(decision[0]).toMatchObject({ level: 'info', repo: `${ORG}/${REPO}`, added: ['kind/bug', 'needs-info'], removed: [] });
  });

  it('ends with the right labels through injected 500s, 503s and 429s', async () => {
    h = await startTriage({ env: { GITEA_RETRIES: '8' }, sim: { seed: 7 }, seed });
    h.sim.setFaults({ errorRate: 0.25, statuses: [500, 503], rate429: 0.1, retryAfterSeconds: 0 });
    const bugs = [1, 2, 3, 4].map((i) => h!.sim.openIssue(ORG, REPO, { user: 'alice', title: `Crash number ${i}`, body: BODY }));
    const pull = h.sim.openPull(ORG, REPO, { user: 'alice', title: 'Docs', files: [{ filename: 'docs/a.md', additions: 50, deletions: 70 }] });
    await h.settle(30_000);
    h.sim.setFaults({});
    for (const n of bugs) expect(h.sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug']);
    expect(h.sim.issueLabels(ORG, REPO, pull)).toEqual(['area/docs', 'size/M']);
    // The faults did happen, and were absorbed by retries.
    expect((h.service.gitea as GiteaClient).stats().retries).toBeGreaterThan(0);
    expect(h.service.journal.pendingCount()).toBe(0);
    expect(h.service.journal.query({ state: 'failed' })).toEqual([]);
  });

  it('reuses keep-alive connections: never more than GITEA_MAX_SOCKETS', async () => {
    h = await startTriage({ env: { GITEA_MAX_SOCKETS: '3', CONCURRENCY: '8' }, sim: { latencyMs: 5 }, seed });
    const issues = Array.from({ length: 12 }, (_, i) =>
      h!.sim.openIssue(ORG, REPO, { user: 'alice', title: i % 2 ? `Crash ${i}` : `Idea ${i}`, body: BODY }),
    );
    await h.settle();
    for (const [i, n] of issues.entries()) expect(h.sim.issueLabels(ORG, REPO, n)).toEqual(i % 2 ? ['kind/bug'] : []);
    const stats = h.sim.stats();
    expect(stats.requests).toBeGreaterThan(12);
    expect(stats.connections).toBeLessThanOrEqual(3);
  });
});
