import { asyncOwnership } from '../../src/store/sqlite/records.js';
import { OwnershipStore } from '../../src/applier/ownership.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import type { GiteaClient } from '../../src/gitea/client.js';
import { seedTriagedRepo, startTriage, TRIAGE_YML, type TriageHarness } from './triage-harness.js';

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

  it('applies TRIAGE_CONFIG to a repo without its own config', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
    const file = path.join(dir, 'triage.yml');
    fs.writeFileSync(file, "labels:\n  kind/bug:\n    title: ['crash']\n");
    try {
      h = await startTriage({
        env: { TRIAGE_CONFIG: file },
        seed: (sim) => {
          seed(sim);
          sim.addRepo(ORG, 'plain');
          sim.addLabel(ORG, 'plain', { name: 'kind/bug', exclusive: true });
        },
      });
      const plain = h.sim.openIssue(ORG, 'plain', { user: 'alice', title: 'Crash on load', body: 'x' });
      // A repo with its own config uses its own (needs-info comes from there).
      const own = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on load', body: '### What happened\nBoom\n' });
      await h.settle();
      expect(h.sim.issueLabels(ORG, 'plain', plain)).toEqual(['kind/bug']);
      expect(h.sim.issueLabels(ORG, REPO, own)).toEqual(['kind/bug', 'needs-info']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createTriageEvaluator', () => {
  const parts = (env: Record<string, string>) => ({
    store: { ownership: asyncOwnership(new OwnershipStore(new Database(':memory:'))) },
    gitea: {} as never,
    log: silentLogger(),
    config: loadConfig({ GITEA_URL: 'http://127.0.0.1:9', GITEA_TOKEN: 't', WEBHOOK_SECRET: 's', ...env }),
    botLogin: () => 'triage-bot',
  });

  it('stops the start with a clear error when TRIAGE_CONFIG cannot be read or used', () => {
    expect(() => createTriageEvaluator(parts({ TRIAGE_CONFIG: '/nonexistent/triage.yml' }))).toThrow(
      /^TRIAGE_CONFIG: cannot read \/nonexistent\/triage\.yml: ENOENT/,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
    try {
      const file = path.join(dir, 'triage.yml');
      fs.writeFileSync(file, TRIAGE_YML.replace('match: all', 'match: most'));
      expect(() => createTriageEvaluator(parts({ TRIAGE_CONFIG: file }))).toThrow(new RegExp(`^TRIAGE_CONFIG: ${file}:\\d+: labels\\.area/api-docs\\.match`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
