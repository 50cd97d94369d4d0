import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

/**
 * Where real Gitea behaves in ways the service must follow (label_cleared, review events, sidebar label
 * writes), through the running service and the simulated Gitea over real HTTP.
 */
const ORG = 'acme';
const REPO = 'widgets';
const BUG_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';
const BOB_TOKEN = 'bob-token';

let h: TriageHarness;

beforeAll(async () => {
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      sim.addUser('alice');
      sim.addUser('bob', { token: BOB_TOKEN });
      seedTriagedRepo(sim, ORG, REPO);
      sim.setPermission(ORG, REPO, 'bob', 'write');
    },
  });
});

afterAll(async () => {
  await h?.close();
});

const labels = (n: number) => h.sim.issueLabels(ORG, REPO, n);
const removals = (n: number) =>
  h.store
    .events(`${ORG}/${REPO}`, n)
    .filter((e) => e.action === 'removed')
    .map((e) => ({ label: e.label, kind: e.kind, user: e.user }))
    .sort((a, b) => (a.label < b.label ? -1 : 1));

async function asBob(method: string, path: string, body?: unknown): Promise<number> {
  const res = await fetch(`${h.sim.url}/api/v1${path}`, {
    method,
    headers: { Authorization: `token ${BOB_TOKEN}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('label_cleared (it lists the labels from before the clear)', () => {
  it('records every cleared label as removed by the person, and no rule adds one back', async () => {
    // kind/bug is the bot's (title rule); area/ui was set by alice when she opened it.
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on start', body: BUG_BODY, labels: ['area/ui'] });
    await h.settle();
    expect(labels(n)).toEqual(['area/ui', 'kind/bug']);

    expect(await asBob('DELETE', `/repos/${ORG}/${REPO}/issues/${n}/labels`)).toBe(204);
    await h.settle();
    const cleared = h.sim.deliveries.find((d) => d.action === 'label_cleared');
    expect(cleared).toMatchObject({ type: 'issue_label', sender: 'bob', status: 202 });
    expect(labels(n)).toEqual([]);

    // A later edit still matches the kind/bug rule: the label stays off.
    h.sim.editIssue(ORG, REPO, n, { title: 'Crash on start, a bug' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual([]);
    expect(removals(n)).toEqual([
      { label: 'area/ui', kind: 'person', user: 'bob' },
      { label: 'kind/bug', kind: 'person', user: 'bob' },
    ]);
  });

  it('the issue list\'s "clear labels" on a pull request is the same', async () => {
    const n = h.sim.openPull(ORG, REPO, { user: 'alice', title: 'Improve the guide', files: [{ filename: 'docs/a.md', additions: 3, deletions: 0, status: 'added' }] });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'size/XS']);
    h.sim.clearLabelsAsUser(ORG, REPO, n, 'bob');
    await h.settle();
    h.sim.syncPull(ORG, REPO, n, 'alice', [{ filename: 'docs/b.md', additions: 4, deletions: 0, status: 'added' }]);
    await h.settle();
    expect(labels(n)).toEqual([]);
    expect(removals(n).map((r) => `${r.label} ${r.kind} ${r.user}`)).toEqual(['area/docs person bob', 'size/XS person bob']);
  });
});

describe('review events (pull_request_approved / _rejected / _comment, action reviewed)', () => {
  const journalOf = (n: number) => h.service.journal.query({ subject: `${ORG}/${REPO}#${n}` });

  it('runs a /label command in a review body, and evaluates the pull request on a review', async () => {
    const n = h.sim.openPull(ORG, REPO, { user: 'alice', title: 'Tidy the guide', files: [{ filename: 'docs/c.md', additions: 2, deletions: 1, status: 'changed' }] });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'size/XS']);

    h.sim.review(ORG, REPO, n, 'bob', { kind: 'approve', body: 'Looks right.\n\n/label area/ui' });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'area/ui', 'size/XS']);
    const approved = h.sim.deliveries.find((d) => d.type === 'pull_request_review_approved');
    expect(approved).toMatchObject({ event: 'pull_request_approved', action: 'reviewed', sender: 'bob', status: 202 });
    expect(journalOf(n).find((d) => d.event === 'pull_request_approved')).toMatchObject({ action: 'reviewed', state: 'done' });

    // A review comment (X-Gitea-Event pull_request_comment) and a rejection are reviews too.
    h.sim.review(ORG, REPO, n, 'bob', { kind: 'comment', body: '/label -area/ui' });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'size/XS']);
    h.sim.review(ORG, REPO, n, 'bob', { kind: 'reject', body: 'Not yet.\n/label needs-info' });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'needs-info', 'size/XS']);
    expect(journalOf(n).filter((d) => d.action === 'reviewed').map((d) => `${d.event} ${d.state}`)).toEqual([
      'pull_request_approved done',
      'pull_request_comment done',
      'pull_request_rejected done',
    ]);
  });

  it("refuses a review's /label from someone without write permission", async () => {
    h.sim.addUser('carol');
    const n = h.sim.openPull(ORG, REPO, { user: 'alice', title: 'Tidy the guide again', files: [{ filename: 'docs/d.md', additions: 2, deletions: 1, status: 'changed' }] });
    await h.settle();
    h.sim.review(ORG, REPO, n, 'carol', { kind: 'comment', body: '/label area/ui' });
    await h.settle();
    expect(labels(n)).toEqual(['area/docs', 'size/XS']);
    expect(h.sim.comments(ORG, REPO, n).at(-1)?.body).toContain('`/label area/ui` was not applied');
  });
});

describe('a pull request whose head repository is gone', () => {
  it('comes without additions, deletions and changed_files (Gitea ≥ 1.24); size and files rules still work from the files', async () => {
    const n = h.sim.openPull(ORG, REPO, {
      user: 'alice',
      title: 'From a deleted fork',
      files: [{ filename: 'docs/guide.md', additions: 120, deletions: 3, status: 'changed' }],
      headRepoGone: true,
    });
    await h.settle();
    const opened = h.service.journal.query({ subject: `${ORG}/${REPO}#${n}` }).find((d) => d.action === 'opened');
    const pr = (JSON.parse(opened!.body) as { pull_request: Record<string, unknown> }).pull_request;
    expect(['additions', 'deletions', 'changed_files'].filter((k) => k in pr)).toEqual([]);
    expect(labels(n)).toEqual(['area/docs', 'size/M']);
  });
});

describe('hooks', () => {
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${h.sim.url}/api/v1${path}`, {
      method,
      headers: { Authorization: `token ${h.sim.token}`, 'Content-Type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: (res.status === 204 ? null : await res.json()) as unknown, total: res.headers.get('x-total-count') };
  };

  it('PATCH ignores config.secret (Gitea editHook): deliveries stay signed with the old secret', async () => {
    h.sim.addRepo(ORG, 'patched');
    const created = await api('POST', `/repos/${ORG}/patched/hooks`, {
      type: 'gitea',
      active: true,
      events: ['issues'],
      config: { url: `${h.url}/webhook`, content_type: 'json', secret: 'old-secret' },
    });
    const id = (created.json as { id: number }).id;
    const patched = await api('PATCH', `/repos/${ORG}/patched/hooks/${id}`, { events: ['issues'], config: { secret: 'triage-test-secret' } });
    expect(patched.status).toBe(200);
    h.sim.openIssue(ORG, 'patched', { user: 'alice', title: 'A question' });
    await h.settle();
    // The every-event hook (signed right) is accepted; the repo hook still signs with old-secret: 401.
    const statuses = h.sim.deliveries.filter((d) => d.type === 'issues' && d.url === `${h.url}/webhook`).slice(-2).map((d) => d.status);
    expect(statuses.sort()).toEqual([202, 401]);
  });

  it('listing hooks without page returns every hook, not a first page (db.FindAndCount with page 0)', async () => {
    h.sim.addRepo(ORG, 'many-hooks');
    for (let i = 0; i < 35; i++) {
      await api('POST', `/repos/${ORG}/many-hooks/hooks`, { type: 'gitea', active: false, events: ['push'], config: { url: `http://127.0.0.1:9/h${i}`, content_type: 'json' } });
    }
    const all = await api('GET', `/repos/${ORG}/many-hooks/hooks`);
    expect((all.json as unknown[]).length).toBe(35);
    expect(all.total).toBe('35');
    const page = await api('GET', `/repos/${ORG}/many-hooks/hooks?page=1`);
    expect((page.json as unknown[]).length).toBe(30);
  });

  it('a hook whose HTTP method was set to GET in the web UI gets 405 and a warn line saying what to change', async () => {
    h.sim.addRepo(ORG, 'get-hook');
    const created = await api('POST', `/repos/${ORG}/get-hook/hooks`, {
      type: 'gitea',
      active: true,
      events: ['issues'],
      config: { url: `${h.url}/webhook`, content_type: 'json', secret: 'triage-test-secret' },
    });
    h.sim.setHookHttpMethod((created.json as { id: number }).id, 'GET');
    h.sim.openIssue(ORG, 'get-hook', { user: 'alice', title: 'Sent by GET' });
    await h.settle();
    const sent = h.sim.deliveries.filter((d) => d.type === 'issues' && d.url === `${h.url}/webhook`).slice(-2);
    expect(sent.map((d) => d.status).sort()).toEqual([202, 405]);
    const warned = h.logs.lines.filter((l) => l.level === 'warn' && typeof l.msg === 'string' && l.msg.startsWith('webhook delivered with HTTP method GET'));
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ event: 'issues', delivery: sent.find((d) => d.status === 405)?.id });
    expect(warned[0]!.msg).toContain('set "HTTP Method" to POST');
    expect(JSON.stringify(warned[0])).not.toContain('Sent by GET');

    // A GET without Gitea's headers is the plain 405 (no warning).
    const plain = await fetch(`${h.url}/webhook`);
    expect(plain.status).toBe(405);
    expect(plain.headers.get('allow')).toBe('POST');
  });
});

describe('label writes from the issue sidebar: one label_updated per label, one updated_at, out of order', () => {
  const events = (n: number) =>
    h.store
      .events(`${ORG}/${REPO}`, n)
      .filter((e) => e.kind !== 'rule')
      .map((e) => `${e.action} ${e.label} ${e.kind} ${e.user ?? '-'}`)
      .sort();

  it('records exactly the removals the person made, whatever order the deliveries arrive in', async () => {
    // The bot adds kind/bug (title) and needs-info (sections missing).
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on load', body: '### What happened\nIt crashes.\n' });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug', 'needs-info']);

    h.sim.setClock(Date.now());
    h.sim.holdDeliveries();
    // Gitea 1.23+: detach kind/bug, detach needs-info, attach area/ui — three deliveries, one updated_at.
    h.sim.setLabelsInSidebar(ORG, REPO, n, 'bob', ['area/ui']);
    h.sim.setClock(undefined);
    const sent = h.sim.deliveries.slice(-3);
    expect(sent.map((d) => d.action)).toEqual(['label_updated', 'label_updated', 'label_updated']);
    await h.sim.releaseDeliveries('reverse');
    await h.settle();

    h.sim.editIssue(ORG, REPO, n, { title: 'Crash on load, a bug' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual(['area/ui']);
    expect(events(n)).toEqual(['added area/ui person bob', 'removed kind/bug person bob', 'removed needs-info person bob']);
  });

  it("does not miss a person's removal whose delivery arrives after the service already read the issue without the label", async () => {
    // alice filed it with kind/bug herself: the label is hers, not the bot's.
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on save', body: BUG_BODY, labels: ['kind/bug'] });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);

    h.sim.setClock(Date.now());
    h.sim.holdDeliveries();
    h.sim.setLabelsInSidebar(ORG, REPO, n, 'bob', []); // held delivery 0: label_updated, no labels
    h.sim.editIssue(ORG, REPO, n, { body: BUG_BODY + '\nMore detail.\n' }, 'alice'); // held delivery 1: edited
    h.sim.setClock(undefined);
    // The edit arrives first and is evaluated alone; bob's label_updated comes after.
    await h.sim.releaseDeliveries([1]);
    await h.settle();
    await h.sim.releaseDeliveries('created');
    await h.settle();

    expect(labels(n)).toEqual([]);
    h.sim.editIssue(ORG, REPO, n, { title: 'Crash on save (again)' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual([]);
    expect(events(n)).toEqual(['removed kind/bug person bob']);
  });
});
