import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { verify } from '@octokit/webhooks-methods';
import { SimGitea } from '../../src/simgitea/index.js';

/** Deliveries of the simulated Gitea: headers, signatures, Go's JSON bytes, payload shapes of Gitea 1.25.4. */
const SECRET = 'sim-webhook-secret';

interface Received {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface Fixture {
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`../fixtures/payloads/${name}.json`, import.meta.url), 'utf8')) as Fixture;
}

/** Differences in keys (and their order) and in null/array/object/scalar kinds; values ignored. */
function shapeDiff(actual: unknown, expected: unknown, path = '$', out: string[] = []): string[] {
  const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(actual) !== kind(expected)) {
    out.push(`${path}: ${kind(actual)} instead of ${kind(expected)}`);
    return out;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length > 0 && expected.length > 0) shapeDiff(actual[0], expected[0], `${path}[0]`, out);
    return out;
  }
  if (actual && typeof actual === 'object') {
    const a = Object.keys(actual);
    const e = Object.keys(expected as object);
    if (a.join(',') !== e.join(',')) out.push(`${path}: keys [${a.join(',')}] instead of [${e.join(',')}]`);
    for (const k of e) {
      if (k in (actual as object)) shapeDiff((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`, out);
    }
  }
  return out;
}

let receiver: http.Server;
let receiverUrl: string;
const received: Received[] = [];
let sim: SimGitea;

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = 202;
      res.end('{"status":"accepted"}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  sim = await SimGitea.start({ webhook: { url: `${receiverUrl}/webhook`, secret: SECRET } });
  sim.addOrg('acme', { fullName: 'Acme Corp' });
  sim.addUser('alice', { fullName: 'Alice Liddell' });
  sim.addUser('bob', { fullName: 'Bob Builder' });
  sim.addRepo('acme', 'widgets', { description: 'Widgets for everyone' });
  sim.addLabel('acme', 'widgets', { name: 'kind/bug', exclusive: true, color: 'ee0701' });
  sim.addOrgLabel('acme', { name: 'priority/high', exclusive: true, color: 'd93f0b' });
});

afterEach(async () => {
  await sim.awaitDeliveries();
  received.length = 0;
});

afterAll(async () => {
  await sim.close();
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

async function deliveriesOf(fn: () => unknown): Promise<Received[]> {
  const before = received.length;
  await fn();
  await sim.awaitDeliveries();
  return received.slice(before);
}

function only<T>(list: T[]): T {
  expect(list).toHaveLength(1);
  return list[0] as T;
}

describe('simulated Gitea deliveries: headers and signatures', () => {
  it("signs a label write through the API like Gitea, verifiable with @octokit/webhooks-methods", async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'Crash on save', user: 'alice' });
    const d = only(
      await deliveriesOf(() =>
        fetch(`${sim.url}/api/v1/repos/acme/widgets/issues/${n}/labels`, {
          method: 'POST',
          headers: { Authorization: `token ${sim.token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ labels: ['kind/bug'] }),
        }),
      ),
    );
    expect(d.url).toBe('/webhook');
    const h = d.headers;
    expect(h).toMatchObject({
      'content-type': 'application/json',
      'x-gitea-event': 'issues',
      'x-gitea-event-type': 'issue_label',
      'x-gogs-event': 'issues',
      'x-github-event': 'issues',
      'x-github-event-type': 'issue_label',
      'x-gitea-hook-installation-target-type': 'repository',
    });
    expect(h['x-gitea-delivery']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(h['x-gogs-delivery']).toBe(h['x-gitea-delivery']);
    expect(h['x-github-delivery']).toBe(h['x-gitea-delivery']);
    expect(h['x-gitea-signature']).toMatch(/^[0-9a-f]{64}$/);
    expect(h['x-hub-signature-256']).toBe(`sha256=${h['x-gitea-signature']}`);
    expect(h['x-hub-signature']).toMatch(/^sha1=[0-9a-f]{40}$/);
    expect(await verify(SECRET, d.body, h['x-hub-signature-256'] as string)).toBe(true);
    expect(await verify('another-secret', d.body, h['x-hub-signature-256'] as string)).toBe(false);

    const payload = JSON.parse(d.body);
    expect(payload).toMatchObject({ action: 'label_updated', number: n, sender: { login: 'triage-bot' } });
    expect(payload.issue.labels.map((l: { name: string }) => l.name)).toEqual(['kind/bug']);
    expect(sim.deliveries.at(-1)).toMatchObject({ event: 'issues', type: 'issue_label', action: 'label_updated', sender: 'triage-bot', status: 202 });
  });

  it("sends Go's bytes: indented, with <, > and & escaped; a re-serialisation would not verify", async () => {
    const d = only(await deliveriesOf(() => sim.openIssue('acme', 'widgets', { title: '<script> & more', body: 'a > b', user: 'alice' })));
    expect(d.body).toContain('"title": "\\u003cscript\\u003e \\u0026 more"');
    expect(d.body).not.toContain('<script>');
    const payload = JSON.parse(d.body);
    expect(payload.issue.title).toBe('<script> & more');
    const signature = d.headers['x-hub-signature-256'] as string;
    expect(await verify(SECRET, d.body, signature)).toBe(true);
    expect(await verify(SECRET, JSON.stringify(payload, null, 2), signature)).toBe(false);
  });

  it('makeDelivery reproduces the signed fixtures byte for byte', () => {
    for (const name of ['issues-opened', 'issues-label_updated', 'pull_request-opened', 'push']) {
      const f = fixture(name);
      const d = sim.makeDelivery(f.headers['X-Gitea-Event'] as string, f.headers['X-Gitea-Event-Type'] as string, f.body, {
        secret: 'example-webhook-secret',
        id: f.headers['X-Gitea-Delivery'],
      });
      expect(d.headers).toEqual(f.headers);
    }
  });

  it('records a delivery that could not be sent, and still settles', async () => {
    const unreachable = await SimGitea.start({ webhook: { url: 'http://127.0.0.1:9/webhook', secret: SECRET } });
    try {
      unreachable.addRepo('acme', 'widgets');
      unreachable.openIssue('acme', 'widgets', { title: 'x', user: 'alice' });
      await unreachable.awaitDeliveries();
      expect(unreachable.deliveries).toHaveLength(1);
      expect(unreachable.deliveries[0]?.status).toBeUndefined();
      expect(unreachable.deliveries[0]?.error).toMatch(/ECONNREFUSED/);
    } finally {
      await unreachable.close();
    }
  });
});

describe('simulated Gitea deliveries: payload shapes follow the fixtures', () => {
  const check = async (name: string, act: () => unknown): Promise<Record<string, unknown>> => {
    const f = fixture(name);
    const d = only(await deliveriesOf(act));
    expect(Object.keys(d.headers).filter((k) => k.startsWith('x-')).sort()).toEqual(
      Object.keys(f.headers)
        .map((k) => k.toLowerCase())
        .filter((k) => k.startsWith('x-'))
        .sort(),
    );
    expect(d.headers['x-gitea-event']).toBe(f.headers['X-Gitea-Event']);
    expect(d.headers['x-gitea-event-type']).toBe(f.headers['X-Gitea-Event-Type']);
    const payload = JSON.parse(d.body) as Record<string, unknown>;
    expect(shapeDiff(payload, f.body)).toEqual([]);
    return payload;
  };

  it('issues opened', async () => {
    await check('issues-opened', () => sim.openIssue('acme', 'widgets', { title: 'Editor crashes', body: '### What happened\n', user: 'alice' }));
  });

  it('issues edited, with changes.body.from', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'Editor crashes', body: 'old', user: 'alice' });
    const payload = await check('issues-edited', () => sim.editIssue('acme', 'widgets', n, { body: 'new' }, 'alice'));
    expect(payload.changes).toEqual({ body: { from: 'old' }, added_labels: null, removed_labels: null });
  });

  it('issues label_updated by a person, with the full label set including org labels', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'Editor crashes', user: 'alice' });
    const payload = await check('issues-label_updated', () => sim.setLabelsAsUser('acme', 'widgets', n, 'bob', ['priority/high', 'kind/bug']));
    expect(payload).toMatchObject({ action: 'label_updated', sender: { login: 'bob' } });
    const labels = (payload.issue as { labels: { name: string; url: string }[] }).labels;
    expect(labels.map((l) => l.name)).toEqual(['kind/bug', 'priority/high']);
    expect(labels[1]?.url).toMatch(/\/api\/v1\/orgs\/acme\/labels\/\d+$/);
  });

  it('issue_comment created', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'Editor crashes', user: 'alice', labels: ['kind/bug'] });
    const payload = await check('issue_comment-created', () => sim.comment('acme', 'widgets', n, 'alice', '/label kind/bug'));
    expect(payload).toMatchObject({ is_pull: false, comment: { body: '/label kind/bug', user: { login: 'alice' } } });
  });

  it('pull_request opened', async () => {
    const payload = await check('pull_request-opened', () =>
      sim.openPull('acme', 'widgets', { title: 'Dark mode', user: 'bob', files: [{ filename: 'ui/theme.css', additions: 120, deletions: 14 }] }),
    );
    expect(payload.pull_request).toMatchObject({ additions: 120, deletions: 14, changed_files: 1 });
  });

  it('pull_request synchronized', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'Dark mode', user: 'bob', pull: { files: [] } });
    const payload = await check('pull_request-synchronized', () =>
      sim.syncPull('acme', 'widgets', n, 'bob', [{ filename: 'ui/theme.css', additions: 134, deletions: 14 }]),
    );
    expect(payload).toMatchObject({ action: 'synchronized', pull_request: { additions: 134 } });
  });

  it('push, and the files change on the branch', async () => {
    const payload = await check('push', () => sim.pushFiles('acme', 'widgets', 'bob', { '.gitea/triage.yml': 'labels: {}\n' }));
    expect(payload).toMatchObject({ ref: 'refs/heads/main', total_commits: 1, pusher: { login: 'bob' } });
    expect((payload.head_commit as { added: string[] }).added).toEqual(['.gitea/triage.yml']);
    const res = await fetch(`${sim.url}/api/v1/repos/acme/widgets/contents/.gitea/triage.yml`, { headers: { Authorization: `token ${sim.token}` } });
    expect(res.status).toBe(200);
  });

  it('a pull request label write and comment come as pull_request_label and pull_request_comment', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'PR', user: 'bob', pull: { files: [] } });
    const [label] = await deliveriesOf(() =>
      fetch(`${sim.url}/api/v1/repos/acme/widgets/issues/${n}/labels`, {
        method: 'POST',
        headers: { Authorization: `token ${sim.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ labels: ['kind/bug'] }),
      }),
    );
    expect(label?.headers).toMatchObject({ 'x-gitea-event': 'pull_request', 'x-gitea-event-type': 'pull_request_label' });
    expect(shapeDiff(JSON.parse(label?.body ?? '{}'), fixture('pull_request-opened').body)).toEqual([]);
    const comment = only(await deliveriesOf(() => sim.comment('acme', 'widgets', n, 'alice', 'LGTM')));
    expect(comment.headers).toMatchObject({ 'x-gitea-event': 'issue_comment', 'x-gitea-event-type': 'pull_request_comment' });
    expect(JSON.parse(comment.body).is_pull).toBe(true);
  });

  it('reviews come as pull_request_approved / _rejected / _comment with action reviewed and a review object', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'PR', user: 'bob', pull: { files: [] } });
    const cases = [
      ['approve', 'pull_request_approved', 'pull_request_review_approved'],
      ['reject', 'pull_request_rejected', 'pull_request_review_rejected'],
      ['comment', 'pull_request_comment', 'pull_request_review_comment'],
    ] as const;
    for (const [kind, event, type] of cases) {
      const d = only(await deliveriesOf(() => sim.review('acme', 'widgets', n, 'alice', { kind, body: `a ${kind}` })));
      expect(d.headers).toMatchObject({ 'x-gitea-event': event, 'x-gitea-event-type': type });
      const body = JSON.parse(d.body) as Record<string, unknown>;
      expect(body).toMatchObject({ action: 'reviewed', review: { type, content: `a ${kind}` }, sender: { login: 'alice' }, requested_reviewer: { login: 'alice' } });
      expect(shapeDiff(body, fixture('pull_request-opened').body).filter((p) => !/^\$\.(review|requested_reviewer)/.test(p))).toEqual([]);
    }
  });
});

describe('simulated Gitea deliveries: hooks created through the API', () => {
  it('a repo hook and an org hook each deliver the same event, under two UUIDs', async () => {
    const hooked = await SimGitea.start();
    try {
      hooked.addOrg('acme');
      hooked.addRepo('acme', 'widgets');
      const call = (path: string, body: unknown) =>
        fetch(`${hooked.url}/api/v1${path}`, {
          method: 'POST',
          headers: { Authorization: `token ${hooked.token}`, 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
        });
      const hook = (events: string[], extra: Record<string, unknown> = {}) => ({
        type: 'gitea',
        active: true,
        events,
        config: { url: `${receiverUrl}/hook`, content_type: 'json', secret: SECRET },
        ...extra,
      });
      await call('/repos/acme/widgets/hooks', hook(['issues', 'issue_comment', 'pull_request', 'push'], { authorization_header: 'Bearer hook-auth' }));
      await call('/orgs/acme/hooks', hook(['issues', 'issue_comment']));
      await call('/repos/acme/widgets/hooks', hook(['push'], { branch_filter: 'release/*' }));
      await call('/repos/acme/widgets/hooks', hook(['issues'], { active: false }));
      await call('/repos/acme/widgets/hooks', {
        ...hook(['issues']),
        config: { url: `${receiverUrl}/form`, content_type: 'form', secret: SECRET },
      });

      const before = received.length;
      hooked.openIssue('acme', 'widgets', { title: 'x', user: 'alice' });
      await hooked.awaitDeliveries();
      const got = received.slice(before);
      expect(got).toHaveLength(3); // repo hook, org hook, form hook — not the push-only or the inactive one
      const json = got.filter((d) => d.url === '/hook');
      expect(new Set(json.map((d) => d.headers['x-gitea-delivery'])).size).toBe(2);
      expect(json[0]?.body).toBe(json[1]?.body);
      expect(json.map((d) => d.headers['x-gitea-hook-installation-target-type']).sort()).toEqual(['organization', 'repository']);
      expect(json.find((d) => d.headers['x-gitea-hook-installation-target-type'] === 'repository')?.headers.authorization).toBe('Bearer hook-auth');
      for (const d of json) expect(await verify(SECRET, d.body, d.headers['x-hub-signature-256'] as string)).toBe(true);

      // A form hook posts payload=<urlencoded JSON>; the signature covers the JSON.
      const form = only(got.filter((d) => d.url === '/form'));
      expect(form.headers['content-type']).toBe('application/x-www-form-urlencoded');
      const jsonOfForm = new URLSearchParams(form.body).get('payload') ?? '';
      expect(jsonOfForm).toBe(json[0]?.body);
      expect(await verify(SECRET, jsonOfForm, form.headers['x-hub-signature-256'] as string)).toBe(true);

      const beforePush = received.length;
      hooked.pushFiles('acme', 'widgets', 'bob', { 'a.txt': 'a' }, 'release/1.0');
      hooked.pushFiles('acme', 'widgets', 'bob', { 'b.txt': 'b' }, 'main');
      await hooked.awaitDeliveries();
      const pushes = received.slice(beforePush).map((d) => JSON.parse(d.url === '/form' ? '{}' : d.body).ref);
      // main: the repo hook only; release/1.0: the repo hook and the filtered push hook.
      expect(pushes.sort()).toEqual(['refs/heads/main', 'refs/heads/release/1.0', 'refs/heads/release/1.0']);

      // A review goes to hooks with `pull_request` (which switches on `pull_request_review`), not to the
      // org hook's `issue_comment` (models/webhook/webhook.go Webhook.HasEvent).
      const pr = hooked.addIssue('acme', 'widgets', { title: 'PR', user: 'bob', pull: { files: [] } });
      const beforeReview = received.length;
      hooked.review('acme', 'widgets', pr, 'bob', { kind: 'comment', body: 'nit' });
      await hooked.awaitDeliveries();
      const reviews = received.slice(beforeReview);
      expect(reviews.map((d) => `${d.url} ${d.headers['x-gitea-hook-installation-target-type']} ${d.headers['x-gitea-event']}`)).toEqual([
        '/hook repository pull_request_comment',
      ]);
    } finally {
      await hooked.close();
    }
  });
});
