import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { GiteaClient } from '../../src/gitea/client.js';
import { renamesFromDiff } from '../../src/gitea/diff-renames.js';
import { silentLogger } from '../../src/log/logger.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

/** Renamed files on Gitea before 1.22.3: no `previous_filename` (services/convert ToChangedFile). */
const FILES = [
  { filename: 'guide/intro.txt', previous_filename: 'docs/intro.txt', status: 'renamed', additions: 1, deletions: 1 },
  { filename: 'guide/café "v2".md', previous_filename: 'docs/café "v2".md', status: 'renamed', additions: 0, deletions: 0 },
  { filename: 'src/app.ts', status: 'changed', additions: 3, deletions: 2 },
];

const sims: SimGitea[] = [];
const clients: GiteaClient[] = [];

async function simAt(version: string): Promise<{ sim: SimGitea; client: GiteaClient }> {
  const sim = await SimGitea.start({ version });
  sims.push(sim);
  sim.addOrg('acme');
  sim.addRepo('acme', 'widgets');
  sim.addIssue('acme', 'widgets', { title: 'Move the docs', user: 'alice', pull: { files: FILES } });
  const client = new GiteaClient({ baseUrl: sim.url, token: sim.token, maxSockets: 2, keepAlive: true, timeoutMs: 2000, retries: 0, retryBaseMs: 5, retryMaxMs: 5, log: silentLogger() });
  clients.push(client);
  return { sim, client };
}

afterAll(async () => {
  for (const c of clients) c.close();
  for (const s of sims) await s.close();
});

describe('renamed files of a pull request', () => {
  it('Gitea 1.22.2 sends renames without previous_filename; the client reads the old names from the .diff', async () => {
    const { sim, client } = await simAt('1.22.2');
    const raw = (await (await fetch(`${sim.url}/api/v1/repos/acme/widgets/pulls/1/files`, { headers: { Authorization: `token ${sim.token}` } })).json()) as Record<string, unknown>[];
    expect(raw.map((f) => f.previous_filename)).toEqual([undefined, undefined, undefined]);

    sim.resetStats();
    const files = await client.listPullFiles('acme', 'widgets', 1);
    expect(files.map((f) => [f.filename, f.previous_filename])).toEqual([
      ['guide/intro.txt', 'docs/intro.txt'],
      ['guide/café "v2".md', 'docs/café "v2".md'],
      ['src/app.ts', undefined],
    ]);
    expect(sim.stats().byRoute['GET /repos/{owner}/{repo}/pulls/{diff}']).toBe(1);
  });

  it('Gitea 1.22.3 and later send previous_filename: no diff is read', async () => {
    const { sim, client } = await simAt('1.22.3');
    sim.resetStats();
    const files = await client.listPullFiles('acme', 'widgets', 1);
    expect(files.map((f) => f.previous_filename)).toEqual(['docs/intro.txt', 'docs/café "v2".md', undefined]);
    expect(sim.stats().byRoute['GET /repos/{owner}/{repo}/pulls/{diff}']).toBeUndefined();
  });

  it('renamesFromDiff reads git\'s extended headers, C-quoted paths included', () => {
    const diff = [
      'diff --git a/docs/a.md b/guide/a.md',
      'similarity index 100%',
      'rename from docs/a.md',
      'rename to guide/a.md',
      'diff --git "a/docs/caf\\303\\251.md" "b/guide/caf\\303\\251.md"',
      'similarity index 97%',
      'rename from "docs/caf\\303\\251.md"',
      'rename to "guide/caf\\303\\251.md"',
      '--- "a/docs/caf\\303\\251.md"',
      '+++ "b/guide/caf\\303\\251.md"',
      '@@ -1 +1 @@',
      '-rename from not/a/header',
      '+x',
      'diff --git a/b.txt b/c.txt',
      'copy from b.txt',
      'copy to c.txt',
      '',
    ].join('\n');
    expect([...renamesFromDiff(diff)]).toEqual([
      ['guide/a.md', 'docs/a.md'],
      ['guide/café.md', 'docs/café.md'],
    ]);
  });
});

describe('file statuses (services/convert ToChangedFile)', () => {
  it('are added, deleted, renamed, copied, changed or unchanged; previous_filename only for a rename', async () => {
    const { sim } = await simAt('1.25.4');
    expect(() => sim.addIssue('acme', 'widgets', { title: 'x', user: 'alice', pull: { files: [{ filename: 'a', status: 'modified', additions: 1, deletions: 0 }] } })).toThrow(
      /no file status "modified"/,
    );
    const n = sim.addIssue('acme', 'widgets', {
      title: 'Every status',
      user: 'alice',
      pull: {
        files: [
          { filename: 'new.txt', status: 'added', additions: 2, deletions: 0 },
          { filename: 'gone.txt', status: 'deleted', additions: 0, deletions: 4 },
          { filename: 'b/moved.txt', previous_filename: 'a/moved.txt', status: 'renamed', additions: 0, deletions: 0 },
          { filename: 'copy.txt', previous_filename: 'orig.txt', status: 'copied', additions: 0, deletions: 0 },
          { filename: 'edited.txt', additions: 1, deletions: 1 },
          { filename: 'mode-only.sh', additions: 0, deletions: 0 },
        ],
      },
    });
    const res = await fetch(`${sim.url}/api/v1/repos/acme/widgets/pulls/${n}/files`, { headers: { Authorization: `token ${sim.token}` } });
    const files = (await res.json()) as Record<string, unknown>[];
    expect(files.map((f) => [f.filename, f.status, f.previous_filename])).toEqual([
      ['new.txt', 'added', undefined],
      ['gone.txt', 'deleted', undefined],
      ['b/moved.txt', 'renamed', 'a/moved.txt'],
      ['copy.txt', 'copied', undefined],
      ['edited.txt', 'changed', undefined],
      ['mode-only.sh', 'unchanged', undefined],
    ]);
  });
});

describe('a files: rule on Gitea 1.22.2 sees the old name of a rename', () => {
  let h: TriageHarness;
  beforeAll(async () => {
    h = await startTriage({
      sim: { version: '1.22.2' },
      seed: (sim) => {
        sim.addOrg('acme');
        sim.addUser('alice');
        seedTriagedRepo(sim, 'acme', 'widgets', "labels:\n  area/docs:\n    files: ['docs/**']\n");
        seedTriagedRepo(sim, 'acme', 'classic');
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('moving a file out of docs/ earns area/docs', async () => {
    const n = h.sim.openPull('acme', 'widgets', { user: 'alice', title: 'Move the intro', files: [FILES[0]!] });
    await h.settle();
    expect(h.sim.issueLabels('acme', 'widgets', n)).toEqual(['area/docs']);
  });

  it('1.22 sidebar writes (label-id order, attach and detach interleaved, one updated_at, out of order): exactly the removals made', async () => {
    const n = h.sim.openIssue('acme', 'classic', { user: 'alice', title: 'Crash on load', body: '### What happened\nIt crashes.\n' });
    await h.settle();
    expect(h.sim.issueLabels('acme', 'classic', n)).toEqual(['kind/bug', 'needs-info']);
    h.sim.setClock(Date.now());
    h.sim.holdDeliveries();
    // By label id: detach kind/bug, attach kind/feature, attach area/ui, detach needs-info.
    h.sim.setLabelsInSidebar('acme', 'classic', n, 'bob', ['kind/feature', 'area/ui']);
    h.sim.setClock(undefined);
    await h.sim.releaseDeliveries('reverse');
    await h.settle();
    h.sim.editIssue('acme', 'classic', n, { title: 'Crash on load, a bug' }, 'alice');
    await h.settle();
    expect(h.sim.issueLabels('acme', 'classic', n)).toEqual(['area/ui', 'kind/feature']);
    const events = h.store
      .events('acme/classic', n)
      .filter((e) => e.kind !== 'rule')
      .map((e) => `${e.action} ${e.label} ${e.kind} ${e.user ?? '-'}`)
      .sort();
    expect(events).toEqual(['added area/ui person bob', 'added kind/feature person bob', 'removed kind/bug person bob', 'removed needs-info person bob']);
  });

  it('1.22 sends additions/deletions/changed_files as 0 when the head repository is gone; the files still decide', async () => {
    const n = h.sim.openPull('acme', 'widgets', { user: 'alice', title: 'From a deleted fork', files: [{ filename: 'docs/x.md', additions: 5, deletions: 0, status: 'added' }], headRepoGone: true });
    await h.settle();
    const opened = h.service.journal.query({ subject: `acme/widgets#${n}` }).find((d) => d.action === 'opened');
    const pr = (JSON.parse(opened!.body) as { pull_request: Record<string, unknown> }).pull_request;
    expect([pr.additions, pr.deletions, pr.changed_files]).toEqual([0, 0, 0]);
    expect(pr.head).toMatchObject({ repo_id: -1, repo: null });
    expect(h.sim.issueLabels('acme', 'widgets', n)).toEqual(['area/docs']);
  });
});

describe('Forgejo (v7.0.0 … v8.0.2: services/webhook/shared/payloader.go AddDefaultHeaders)', () => {
  let h: TriageHarness;
  beforeAll(async () => {
    h = await startTriage({
      sim: { forgejo: true },
      seed: (sim) => {
        sim.addOrg('acme');
        sim.addUser('alice');
        seedTriagedRepo(sim, 'acme', 'widgets');
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('triages what Forgejo sends: X-Forgejo-* headers beside Gitea’s, the same events and signature', async () => {
    expect(h.sim.version).toBe('8.0.2+gitea-1.22.0');
    const n = h.sim.openIssue('acme', 'widgets', { user: 'alice', title: 'Crash on start', body: '### What happened\nBoom\n\n### Steps to reproduce\n1\n\n### Version\n8\n' });
    await h.settle();
    expect(h.sim.issueLabels('acme', 'widgets', n)).toEqual(['kind/bug']);
    expect(h.sim.deliveries.filter((d) => d.status !== 202)).toEqual([]);
  });

  it('accepts a delivery that carries only the X-Forgejo-* names, and refuses a wrong X-Forgejo-Signature', async () => {
    const n = h.sim.addIssue('acme', 'widgets', { user: 'alice', title: 'Another crash' });
    const payload = { action: 'opened', number: n, issue: h.sim.issue('acme', 'widgets', n), repository: { full_name: 'acme/widgets', name: 'widgets', owner: { login: 'acme' } }, sender: { login: 'alice' } };
    const full = h.sim.makeDelivery('issues', 'issues', payload);
    expect(Object.keys(full.headers).filter((k) => k.startsWith('X-Forgejo-'))).toEqual(['X-Forgejo-Delivery', 'X-Forgejo-Event', 'X-Forgejo-Event-Type', 'X-Forgejo-Signature']);
    expect(full.headers['X-Gitea-Hook-Installation-Target-Type']).toBeUndefined();
    const only = (headers: Record<string, string>) =>
      Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('X-Forgejo-') || k === 'Content-Type' || k === 'Content-Length'));
    expect(await h.deliver({ headers: only(full.headers), body: full.body })).toBe(202);
    await h.settle();
    expect(h.sim.issueLabels('acme', 'widgets', n)).toEqual(['kind/bug']);

    const forged = h.sim.makeDelivery('issues', 'issues', payload, { secret: 'not-the-secret' });
    expect(await h.deliver({ headers: only(forged.headers), body: forged.body })).toBe(401);
  });
});
