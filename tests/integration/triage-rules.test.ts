import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../src/log/logger.js';
import { parseSubject } from '../../src/subject.js';
import { seedTriagedRepo, startTriage, TRIAGE_YML, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const BUG_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

let h: TriageHarness;

beforeAll(async () => {
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      for (const u of ['alice', 'bob']) sim.addUser(u);
      seedTriagedRepo(sim, ORG, REPO);
      sim.addOrgLabel(ORG, { name: 'priority/high', exclusive: true, color: 'd93f0b' });
      // No config at all.
      sim.addRepo(ORG, 'plain', { files: { 'README.md': '# plain\n' } });
      sim.addLabel(ORG, 'plain', { name: 'kind/bug', exclusive: true });
      // A config naming a label the repo does not have.
      seedTriagedRepo(sim, ORG, 'mislabelled', TRIAGE_YML.replace('needs-info:', 'needs-details:'));
      // A config that is not valid YAML.
      seedTriagedRepo(sim, ORG, 'garbled', 'labels:\n  kind/bug:\n    title: [crash\n');
    },
  });
});

afterAll(async () => {
  await h?.close();
});

const labels = (n: number, repo = REPO) => h.sim.issueLabels(ORG, repo, n);

describe('triage rules through the running service', () => {
  it('labels by title or by body pattern', async () => {
    const byTitle = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: BUG_BODY });
    const byBody = h.sim.openIssue(ORG, REPO, {
      user: 'alice',
      title: 'Editor closes on save',
      body: BUG_BODY + '\nStack trace:\n  at save()\n',
    });
    const neither = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor is slow', body: BUG_BODY });
    await h.settle();
    expect(labels(byTitle)).toEqual(['kind/bug']);
    expect(labels(byBody)).toEqual(['kind/bug']);
    expect(labels(neither)).toEqual([]);
  });

  it('adds needs-info while template sections are missing, and removes it once they are there', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'bob', title: 'Colours look off', body: '### What happened\nOdd colours.\n' });
    await h.settle();
    expect(labels(n)).toEqual(['needs-info']);
    h.sim.editIssue(ORG, REPO, n, { body: '### What happened\nOdd colours.\n\n### Steps to reproduce\nOpen it.\n\n### Version\n1.4.2\n' }, 'bob');
    await h.settle();
    expect(labels(n)).toEqual([]);
  });

  it('holds an issue against the YAML form whose field labels it shares', async () => {
    const partial = h.sim.openIssue(ORG, REPO, { user: 'bob', title: 'SVG export', body: '### Problem\nOnly PNG.\n' });
    // The form requires Problem and Proposal; Screenshots is optional, and empty it is no reason for needs-info.
    const complete = h.sim.openIssue(ORG, REPO, {
      user: 'bob',
      title: 'PDF export',
      body: '### Problem\n\nOnly PNG.\n\n### Proposal\n\nPDF.\n\n### Screenshots\n\n_No response_\n',
    });
    const free = h.sim.openIssue(ORG, REPO, { user: 'bob', title: 'Thanks', body: 'Nice project.' });
    await h.settle();
    expect(labels(partial)).toEqual(['needs-info']);
    expect(labels(complete)).toEqual([]);
    // No heading shared with any template: no template, no needs-info.
    expect(labels(free)).toEqual([]);
  });

  it('labels pull requests by changed files (any, and match: all) and by size, excluding lock files', async () => {
    const docs = h.sim.openPull(ORG, REPO, { user: 'bob', title: 'Explain export', files: [{ filename: 'docs/export.md', additions: 30, deletions: 2 }] });
    const apiDocs = h.sim.openPull(ORG, REPO, { user: 'bob', title: 'Fix API docs', files: [{ filename: 'api/export.ts', additions: 3, deletions: 1 }] });
    const apiCode = h.sim.openPull(ORG, REPO, { user: 'bob', title: 'Faster export', files: [{ filename: 'api/export.ts', additions: 3, deletions: 1 }] });
    const locked = h.sim.openPull(ORG, REPO, {
      user: 'bob',
      title: 'Bump deps',
      files: [
        { filename: 'src/a.ts', additions: 1, deletions: 1 },
        { filename: 'yarn.lock', additions: 4000, deletions: 3000 },
        { filename: 'vendor/lib/x.go', additions: 900, deletions: 0 },
      ],
    });
    await h.settle();
    expect(labels(docs)).toEqual(['area/docs', 'size/S']);
    expect(labels(apiDocs)).toEqual(['area/api-docs', 'size/XS']);
    expect(labels(apiCode)).toEqual(['size/XS']);
    expect(labels(locked)).toEqual(['size/XS']);
  });

  it('matches a renamed file by its old name too (moving a file out of docs/ touches docs), and returns the reasons in a real run', async () => {
    // Gitea lists a rename once, under its new name, with `previous_filename` (ChangedFile).
    const n = h.sim.openPull(ORG, REPO, {
      user: 'bob',
      title: 'Archive the setup notes',
      files: [{ filename: 'archive/setup.txt', previous_filename: 'docs/setup.txt', status: 'renamed', additions: 0, deletions: 0 }],
    });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'size/XS']);
    const added = h.store.events(`${ORG}/${REPO}`, n).find((e) => e.label === 'area/docs' && e.action === 'added');
    expect(added).toMatchObject({ kind: 'rule', rule: 'labels.area/docs.files', evidence: 'docs/setup.txt (glob docs/**)' });

    // The same deliveries evaluated again (not a dry run): nothing to change, and the result says why.
    const rows = h.service.journal.query({ subject: `${ORG}/${REPO}#${n}` }).filter((r) => r.state === 'done');
    const deliveries = rows.map((r) => ({ ...r, payload: JSON.parse(r.body) as Record<string, unknown> }));
    const result = await h.service.evaluator.evaluate(
      { subject: parseSubject(`${ORG}/${REPO}#${n}`)!, batch: 'test', attempt: 1, deliveries, newest: deliveries.at(-1)! },
      silentLogger(),
    );
    expect(result).toMatchObject({ added: [], removed: [] });
    expect(result.note).toBeUndefined();
    expect(result.reasons).toEqual([
      { label: 'area/docs', action: 'keep', rule: 'labels.area/docs.files', evidence: 'docs/setup.txt (glob docs/**)' },
      { label: 'size/XS', action: 'keep', rule: 'size', evidence: '0 changed lines' },
    ]);
  });

  it("replaces a pull request's size label when it grows", async () => {
    const n = h.sim.openPull(ORG, REPO, { user: 'alice', title: 'Engine', files: [{ filename: 'src/engine.ts', additions: 40, deletions: 5 }] });
    await h.settle();
    expect(labels(n)).toEqual(['size/S']);
    h.sim.syncPull(ORG, REPO, n, 'alice', [{ filename: 'src/engine.ts', additions: 600, deletions: 50 }]);
    await h.settle();
    expect(labels(n)).toEqual(['size/L']);
    h.sim.syncPull(ORG, REPO, n, 'alice', [{ filename: 'src/engine.ts', additions: 900, deletions: 300 }]);
    await h.settle();
    expect(labels(n)).toEqual(['size/XL']);
    // Its owner is still the service: the story says so.
    const sizeEvents = h.store.events(`${ORG}/${REPO}`, n).filter((e) => e.label.startsWith('size/'));
    expect(sizeEvents.map((e) => `${e.action} ${e.label}`)).toEqual([
      'added size/S',
      'added size/L',
      'removed size/S',
      'added size/XL',
      'removed size/L',
    ]);
  });

  it("never takes over an exclusive scope a person set: the rule's label is not added", async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash when exporting', body: BUG_BODY, labels: ['kind/feature'] });
    await h.settle();
    expect(labels(n)).toEqual(['kind/feature']);
  });

  it('keeps a label a person removed off the issue, and a label a person added on it, through later edits', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on start', body: BUG_BODY });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
    h.sim.setLabelsAsUser(ORG, REPO, n, 'bob', ['area/ui']);
    await h.settle();
    expect(labels(n)).toEqual(['area/ui']);
    h.sim.editIssue(ORG, REPO, n, { title: 'Crash on start (again, a bug)' }, 'alice');
    await h.settle();
    h.sim.editIssue(ORG, REPO, n, { body: BUG_BODY + '\nstack trace attached\n' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual(['area/ui']);
    const removal = h.store.events(`${ORG}/${REPO}`, n).find((e) => e.label === 'kind/bug' && e.action === 'removed');
    expect(removal).toMatchObject({ kind: 'person', user: 'bob' });
  });

  it("does not blame a person for the bot's write when their label_updated snapshot arrives late", async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash in the editor', body: BUG_BODY, labels: ['area/ui'] });
    await h.settle();
    expect(labels(n)).toEqual(['area/ui', 'kind/bug']);
    // bob's label_updated from before the bot's write (labels: area/ui only), delivered late by a
    // slow Gitea worker — with a clock that makes it look newer than anything seen.
    const opened = h.service.journal.query({ subject: `${ORG}/${REPO}#${n}` }).find((d) => d.action === 'opened');
    const payload = JSON.parse(opened!.body) as { issue: Record<string, unknown>; sender: Record<string, unknown> };
    const late = {
      ...payload,
      action: 'label_updated',
      issue: { ...payload.issue, updated_at: '2030-01-01T00:00:00Z' },
      sender: { ...payload.sender, login: 'bob', username: 'bob' },
    };
    expect(await h.deliver(h.sim.makeDelivery('issues', 'issue_label', late))).toBe(202);
    await h.settle();
    expect(labels(n)).toEqual(['area/ui', 'kind/bug']);
    expect(h.store.ownership(`${ORG}/${REPO}`, n).botOwned.has('kind/bug')).toBe(true);
    expect(h.store.events(`${ORG}/${REPO}`, n).filter((e) => e.action === 'removed')).toEqual([]);
  });

  it("causes no label writes from its own label_updated echoes", async () => {
    h.sim.resetStats();
    const before = h.sim.deliveries.length;
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash in the toolbar', body: '### What happened\nBoom\n' });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug', 'needs-info']);
    const echoes = h.sim.deliveries.slice(before).filter((d) => d.sender === h.sim.botLogin);
    expect(echoes.length).toBeGreaterThanOrEqual(1);
    expect(echoes.every((d) => d.status === 202)).toBe(true);
    // One POST with both labels, nothing after the echo came back.
    expect(h.sim.stats().labelWrites).toBe(1);
    const ignored = h.service.journal.query({ subject: `${ORG}/${REPO}#${n}`, state: 'ignored' });
    expect(ignored.map((d) => d.sender)).toEqual(echoes.map(() => h.sim.botLogin));
    // The echo carries the full label set: it is the last known one.
    expect(h.store.known(`${ORG}/${REPO}`, n)?.labels).toEqual(['kind/bug', 'needs-info']);
  });

  it('leaves closed issues as they are', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Tidy the toolbar', body: BUG_BODY });
    await h.settle();
    h.sim.closeIssue(ORG, REPO, n, 'alice');
    h.sim.editIssue(ORG, REPO, n, { title: 'Tidy the toolbar (it crashed once)' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual([]);
  });

  it('leaves a repo without config untouched, at one request per TTL', async () => {
    h.sim.resetStats();
    const first = h.sim.openIssue(ORG, 'plain', { user: 'alice', title: 'Crash on the home page', body: 'It crashes.' });
    await h.settle();
    const second = h.sim.openIssue(ORG, 'plain', { user: 'alice', title: 'Another crash', body: 'Again.' });
    await h.settle();
    expect(labels(first, 'plain')).toEqual([]);
    expect(labels(second, 'plain')).toEqual([]);
    expect(h.sim.stats().byRoute).toEqual({ 'GET /repos/{owner}/{repo}/file-contents': 1 });
  });

  it('logs a broken config with the repo and line, leaves that repo alone, and keeps triaging the others', async () => {
    const mislabelled = h.sim.openIssue(ORG, 'mislabelled', { user: 'alice', title: 'Crash', body: 'x' });
    const garbled = h.sim.openIssue(ORG, 'garbled', { user: 'alice', title: 'Crash', body: 'x' });
    const fine = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash in the menu', body: BUG_BODY });
    await h.settle();
    expect(labels(mislabelled, 'mislabelled')).toEqual([]);
    expect(labels(garbled, 'garbled')).toEqual([]);
    expect(labels(fine)).toEqual(['kind/bug']);

    const missing = h.logs.find({ level: 'warn', repo: `${ORG}/mislabelled` });
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ file: '.gitea/triage.yml' });
    expect(String(missing[0]!.error)).toContain('needs-details');
    expect(missing[0]!.line).toEqual(expect.any(Number));
    const syntax = h.logs.find({ level: 'warn', repo: `${ORG}/garbled` });
    expect(syntax).toHaveLength(1);
    expect(syntax[0]!.line).toEqual(expect.any(Number));

    // Cached: another event on the broken repo neither re-fetches nor logs again.
    h.sim.editIssue(ORG, 'garbled', garbled, { title: 'Crash!' }, 'alice');
    await h.settle();
    expect(h.logs.find({ level: 'warn', repo: `${ORG}/garbled` })).toHaveLength(1);
  });

  it('reads a new config after a push to the default branch', async () => {
    h.sim.pushFiles(ORG, 'plain', 'alice', { '.gitea/triage.yml': "labels:\n  kind/bug:\n    title: ['crash']\n" });
    await h.settle();
    const n = h.sim.openIssue(ORG, 'plain', { user: 'alice', title: 'Crash after the push', body: 'x' });
    await h.settle();
    expect(labels(n, 'plain')).toEqual(['kind/bug']);
  });
});
