import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { GITEA_SIZE_LIMITS, GiteaClient, type GiteaClientOptions } from '../../../src/gitea/client.js';
import { GiteaError } from '../../../src/gitea/errors.js';
import { createLogger, silentLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { SimGitea } from '../../../src/simgitea/index.js';

const TOKEN = 'client-test-token-5f3a9c';

let sim: SimGitea;
const clients: GiteaClient[] = [];

function client(options: Partial<GiteaClientOptions> = {}, target: { url: string } = sim): GiteaClient {
  const c = new GiteaClient({
    baseUrl: target.url,
    token: TOKEN,
    maxSockets: 4,
    keepAlive: true,
    timeoutMs: 2000,
    retries: 3,
    retryBaseMs: 5,
    retryMaxMs: 50,
    log: silentLogger(),
    ...options,
  });
  clients.push(c);
  return c;
}

async function failure(p: Promise<unknown>): Promise<GiteaError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GiteaError) return err;
    throw err;
  }
  throw new Error('expected a GiteaError');
}

/** A plain HTTP server that counts what reaches it (and can answer with a redirect). */
async function countingServer(handler?: http.RequestListener): Promise<{ url: string; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    if (handler) handler(req, res);
    else res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  sim = await SimGitea.start({ token: TOKEN, seed: 42 });
  sim.addOrg('acme');
  sim.addUser('alice');
  sim.addRepo('acme', 'widgets', {
    files: {
      '.gitea/triage.yml': 'labels:\n  kind/bug:\n    title: [crash]\n',
      'docs/ünïcode.md': '# Grüße ✓\n',
    },
  });
  for (let i = 0; i < 120; i++) sim.addLabel('acme', 'widgets', { name: `label-${String(i).padStart(3, '0')}` });
  sim.addOrgLabel('acme', { name: 'priority/high', exclusive: true });
  const files = Array.from({ length: 3000 }, (_, i) => ({ filename: `src/file-${i}.ts`, additions: 2, deletions: 1 }));
  sim.addIssue('acme', 'widgets', { title: 'Huge refactor', user: 'alice', pull: { files } });
  for (let i = 0; i < 74; i++) sim.addIssue('acme', 'widgets', { title: `Issue ${i}`, user: 'alice' });
});

afterEach(() => {
  sim.setFaults({});
  sim.resetStats();
});

afterAll(async () => {
  for (const c of clients) c.close();
  await sim.close();
});

describe('GiteaClient paging', () => {
  it('reads 120 labels in 3 pages of 50', async () => {
    const labels = await client().listRepoLabels('acme', 'widgets');
    expect(labels).toHaveLength(120);
    expect(labels[0]).toMatchObject({ name: 'label-000', exclusive: false });
    expect(new Set(labels.map((l) => l.id)).size).toBe(120);
    expect(sim.stats().byRoute['GET /repos/{owner}/{repo}/labels']).toBe(3);
  });

  it('reads every file of a 3,000-file pull request', async () => {
    const files = await client().listPullFiles('acme', 'widgets', 1);
    expect(files).toHaveLength(3000);
    expect(files[2999]).toMatchObject({ filename: 'src/file-2999.ts', additions: 2, deletions: 1, changes: 3 });
    expect(sim.stats().byRoute['GET /repos/{owner}/{repo}/pulls/{index}/files']).toBe(60);
  });

  it('lists issues and pull requests across pages, filtered by type', async () => {
    const c = client();
    expect(await c.listIssues('acme', 'widgets', { state: 'all' })).toHaveLength(75);
    const issues = await c.listIssues('acme', 'widgets', { type: 'issues' });
    expect(issues).toHaveLength(74);
    expect(issues.every((i) => i.pull_request === null)).toBe(true);
    const pulls = await c.listIssues('acme', 'widgets', { type: 'pulls' });
    expect(pulls.map((p) => p.number)).toEqual([1]);
  });

  it('answers null for the labels of something that is not an organisation', async () => {
    const c = client();
    expect(await c.listOrgLabels('alice')).toBeNull();
    expect((await c.listOrgLabels('acme'))?.map((l) => l.name)).toEqual(['priority/high']);
  });
});

describe('GiteaClient retries', () => {
  it('retries a 500 a bounded number of times, counted, then fails with a transient error', async () => {
    sim.setFaults({ errorRate: 1, statuses: [500] });
    const c = client({ retries: 3 });
    const err = await failure(c.getRepo('acme', 'widgets'));
    expect(err).toMatchObject({ status: 500, transient: true, method: 'GET', path: '/repos/acme/widgets' });
    expect(err.message).toContain('GET /repos/acme/widgets → 500');
    expect(c.stats()).toEqual({ requests: 4, retries: 3 });
    expect(sim.stats().requests).toBe(4);
  });

  it('gets through intermittent 5xx, one retry per injected failure', async () => {
    sim.setFaults({ errorRate: 0.4 });
    const c = client({ retries: 10 });
    for (let i = 0; i < 20; i++) expect((await c.getRepo('acme', 'widgets')).full_name).toBe('acme/widgets');
    const { requests, retries } = c.stats();
    expect(retries).toBeGreaterThan(0);
    expect(requests).toBe(20 + retries);
    expect(sim.stats().requests).toBe(requests);
  });

  it("waits what a 429's Retry-After says", async () => {
    sim.setFaults({ rate429: 1, retryAfterSeconds: 0.03 });
    const capture = new LogCapture();
    const c = client({ retries: 2, retryBaseMs: 10_000, retryMaxMs: 10_000, log: createLogger({ level: 'debug', format: 'json', stream: capture.stream }) });
    const err = await failure(c.getVersion());
    expect(err).toMatchObject({ status: 429, transient: true });
    const waits = capture.find({ msg: 'gitea request failed; retrying' }).map((l) => l.delayMs);
    expect(waits).toEqual([30, 30]);
  });

  it('caps a long Retry-After at retryMaxMs', async () => {
    sim.setFaults({ rate429: 1, retryAfterSeconds: 120 });
    const capture = new LogCapture();
    const c = client({ retries: 1, retryMaxMs: 40, log: createLogger({ level: 'debug', format: 'json', stream: capture.stream }) });
    await failure(c.getVersion());
    expect(capture.find({ msg: 'gitea request failed; retrying' }).map((l) => l.delayMs)).toEqual([40]);
    expect(c.stats()).toEqual({ requests: 2, retries: 1 });
  });

  it('turns other 4xx into a typed error at once, without retrying', async () => {
    const c = client();
    const err = await failure(c.getIssue('acme', 'widgets', 999));
    expect(err).toBeInstanceOf(GiteaError);
    expect(err).toMatchObject({ status: 404, transient: false, path: '/repos/acme/widgets/issues/999' });
    expect(c.stats()).toEqual({ requests: 1, retries: 0 });
  });

  it('does not resend a comment after a 500 (Gitea may have stored it), but does after a 503', async () => {
    const c = client({ retries: 2 });
    sim.setFaults({ errorRate: 1, statuses: [500] });
    await failure(c.createComment('acme', 'widgets', 2, 'hello'));
    expect(c.stats().requests).toBe(1);
    sim.setFaults({ errorRate: 1, statuses: [503] });
    await failure(c.createComment('acme', 'widgets', 2, 'hello'));
    expect(c.stats().requests).toBe(4);
  });

  it('times out a stalled request and retries it', async () => {
    sim.setFaults({ stallRate: 1, stallMs: 2000 });
    const c = client({ timeoutMs: 100, retries: 1 });
    const err = await failure(c.getVersion());
    expect(err).toMatchObject({ status: undefined, code: 'ETIMEDOUT', transient: true });
    expect(c.stats()).toEqual({ requests: 2, retries: 1 });
  });

  it('never writes the token into logs or error messages', async () => {
    const capture = new LogCapture();
    const c = client({ retries: 1, log: createLogger({ level: 'debug', format: 'json', stream: capture.stream }) });
    await c.getRepo('acme', 'widgets');
    sim.setFaults({ errorRate: 1 });
    const err = await failure(c.getRepo('acme', 'widgets'));
    sim.setFaults({});
    const unauthorized = await failure(client({ token: 'not-the-token-123' }).getRepo('acme', 'widgets'));
    expect(unauthorized.status).toBe(401);
    expect(capture.lines.length).toBeGreaterThan(2);
    expect(capture.text).not.toContain(TOKEN);
    expect(err.message).not.toContain(TOKEN);
    expect(unauthorized.message).not.toContain('not-the-token-123');
    expect(capture.find({ msg: 'gitea request', status: 200 })[0]).toMatchObject({ method: 'GET', path: '/repos/acme/widgets', attempt: 1 });
  });
});

describe('GiteaClient connections', () => {
  it('keeps 200 requests on at most maxSockets (4) connections', async () => {
    const c = client({ maxSockets: 4, keepAlive: true });
    await Promise.all(Array.from({ length: 200 }, (_, i) => c.getIssueLabels('acme', 'widgets', 2 + (i % 70))));
    const s = sim.stats();
    expect(s.requests).toBe(200);
    expect(s.connections).toBeGreaterThan(0);
    expect(s.connections).toBeLessThanOrEqual(4);
  });

  it('opens one connection per request without keep-alive (the linear mode)', async () => {
    const c = client({ maxSockets: 4, keepAlive: false });
    for (let i = 0; i < 25; i++) await c.getIssueLabels('acme', 'widgets', 2);
    expect(sim.stats()).toMatchObject({ requests: 25, connections: 25 });
  });
});

describe('GiteaClient circuit breaker', () => {
  it('opens when Gitea is down, and then callers wait instead of hammering it', async () => {
    sim.setFaults({ down: true });
    const c = client({ retries: 0, circuit: { failureThreshold: 3, cooldownMs: 5000, maxWaitMs: 100 } });
    for (let i = 0; i < 3; i++) {
      const err = await failure(c.getVersion());
      expect(err).toMatchObject({ status: undefined, transient: true });
    }
    expect(c.health()).toEqual({ state: 'open', consecutiveFailures: 3 });
    const before = sim.stats().connections;
    const errors = await Promise.all(Array.from({ length: 5 }, () => failure(c.getRepo('acme', 'widgets'))));
    for (const err of errors) expect(err.message).toMatch(/circuit open/);
    expect(sim.stats().connections).toBe(before);
    expect(c.stats().requests).toBe(3);
  });

  it('closes again once a probe gets through', async () => {
    sim.setFaults({ down: true });
    const c = client({ retries: 0, circuit: { failureThreshold: 2, cooldownMs: 50, maxWaitMs: 5000 } });
    await failure(c.getVersion());
    await failure(c.getVersion());
    expect(c.health().state).toBe('open');
    sim.setFaults({});
    const results = await Promise.all(Array.from({ length: 4 }, () => c.getRepo('acme', 'widgets')));
    expect(results.map((r) => r.name)).toEqual(['widgets', 'widgets', 'widgets', 'widgets']);
    expect(c.health()).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });
});

describe('GiteaClient getFiles', () => {
  it('fetches several files in one file-contents request on Gitea 1.25, decoding UTF-8', async () => {
    const c = client();
    const files = await c.getFiles('acme', 'widgets', ['.gitea/triage.yml', '.gitea/triage.yaml', 'docs/ünïcode.md']);
    expect(files).toEqual([
      { path: '.gitea/triage.yml', content: 'labels:\n  kind/bug:\n    title: [crash]\n' },
      null,
      { path: 'docs/ünïcode.md', content: '# Grüße ✓\n' },
    ]);
    const routes = sim.stats().byRoute;
    expect(routes['GET /repos/{owner}/{repo}/file-contents']).toBe(1);
    expect(routes['GET /repos/{owner}/{repo}/contents/{filepath*}']).toBeUndefined();
  });

  it('splits more than 30 paths over several requests and asks for the version once', async () => {
    const c = client();
    const paths = Array.from({ length: 35 }, (_, i) => `missing-${i}.md`);
    expect(await c.getFiles('acme', 'widgets', paths)).toEqual(paths.map(() => null));
    expect(await c.getFiles('acme', 'widgets', ['.gitea/triage.yml'])).toHaveLength(1);
    const routes = sim.stats().byRoute;
    expect(routes['GET /repos/{owner}/{repo}/file-contents']).toBe(3);
    expect(routes['GET /version']).toBe(1);
  });

  it('falls back to one contents request per file before Gitea 1.24', async () => {
    const old = await SimGitea.start({ token: TOKEN, version: '1.21.0' });
    try {
      old.addRepo('acme', 'widgets', { files: { '.gitea/triage.yml': 'labels: {}\n' } });
      const c = client({}, old);
      expect(await c.getFiles('acme', 'widgets', ['.gitea/triage.yml', 'nope.yml'])).toEqual([
        { path: '.gitea/triage.yml', content: 'labels: {}\n' },
        null,
      ]);
      const routes = old.stats().byRoute;
      expect(routes['GET /repos/{owner}/{repo}/contents/{filepath*}']).toBe(2);
      expect(routes['GET /repos/{owner}/{repo}/file-contents']).toBeUndefined();
    } finally {
      await old.close();
    }
  });

  it("uses the '+gitea-' API level of a Forgejo version", async () => {
    const forgejo = await SimGitea.start({ token: TOKEN, version: '11.0.1+gitea-1.22.0' });
    try {
      forgejo.addRepo('acme', 'widgets', { files: { 'a.md': 'a' } });
      await client({}, forgejo).getFiles('acme', 'widgets', ['a.md']);
      expect(forgejo.stats().byRoute['GET /repos/{owner}/{repo}/contents/{filepath*}']).toBe(1);
    } finally {
      await forgejo.close();
    }
  });
});

describe('GiteaClient stays on GITEA_URL', () => {
  it('never requests a URL taken from a payload: it is only ever a path segment', async () => {
    const elsewhere = await countingServer();
    try {
      const c = client();
      // e.g. a payload's repository.owner.login or issue.url fed to the client by mistake
      const err = await failure(c.getIssue(`${elsewhere.url}/api/v1/repos/acme`, 'widgets', 1));
      expect(err.status).toBe(404);
      expect(elsewhere.hits).toEqual([]);
      expect(sim.stats().requests).toBe(1);
    } finally {
      await elsewhere.close();
    }
  });

  it("refuses '..' segments and file paths before sending anything", async () => {
    const c = client();
    await expect(c.getRepo('..', 'admin')).rejects.toThrow(/refusing path segment/);
    await expect(c.getFiles('acme', 'widgets', ['../../../../version'])).rejects.toThrow(/refusing path segment/);
    await expect(c.listHooks({ repo: 'acme/widgets/../x' })).rejects.toThrow(/owner\/repo/);
    expect(sim.stats().requests).toBe(0);
  });

  it('does not follow a redirect to another host', async () => {
    const elsewhere = await countingServer();
    const redirecting = await countingServer((_req, res) => {
      res.statusCode = 302;
      res.setHeader('Location', `${elsewhere.url}/steal`);
      res.end();
    });
    try {
      const err = await failure(client({}, redirecting).getCurrentUser());
      expect(err).toMatchObject({ status: 302, transient: false });
      expect(redirecting.hits).toEqual(['GET /api/v1/user']);
      expect(elsewhere.hits).toEqual([]);
    } finally {
      await redirecting.close();
      await elsewhere.close();
    }
  });
});

/** Answers every request with a JSON array that never ends (a broken proxy), until the client hangs up. */
function endlessAnswer(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.setHeader('Content-Type', 'application/json');
  res.write('[');
  const chunk = Buffer.from(`${JSON.stringify({ id: 1, name: 'x'.repeat(1000) })},`.repeat(64));
  let open = true;
  res.on('close', () => (open = false));
  const pump = () => {
    while (open && res.write(chunk));
    if (open) res.once('drain', pump);
  };
  pump();
}

describe('GiteaClient size limits', () => {
  it('stops reading an endless answer at the default response limit, with an error naming it; the client still works', async () => {
    let endless = true;
    const proxy = await countingServer((req, res) => {
      if (endless) return endlessAnswer(req, res);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ id: 1, login: 'triage-bot' }));
    });
    try {
      // A generous timeout: only the size limit can end the endless answer.
      const c = client({ timeoutMs: 120_000 }, proxy);
      const err = await failure(c.listRepoLabels('acme', 'widgets'));
      expect(err.message).toBe(
        `GET /repos/acme/widgets/labels: the answer is larger than the response size limit (${GITEA_SIZE_LIMITS.responseBytes} bytes); is a proxy in front of Gitea misbehaving?`,
      );
      expect(err).toMatchObject({ transient: true, code: 'ERR_SIZE_LIMIT' });
      expect(err.message).not.toContain(TOKEN);
      // Not retried: the same call would read the same answer.
      expect(proxy.hits).toEqual(['GET /api/v1/repos/acme/widgets/labels?page=1&limit=50']);
      // The next call on the same client gets through (the pool and the circuit are fine).
      endless = false;
      await expect(c.getCurrentUser()).resolves.toMatchObject({ login: 'triage-bot' });
      expect(c.health().state).toBe('closed');
    } finally {
      await proxy.close();
    }
  });

  it('applies a configured response limit to an answer that announces its length', async () => {
    const big = await countingServer((_req, res) => {
      const body = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `label-${i}`, color: 'ededed' })));
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Content-Length', String(Buffer.byteLength(body)));
      res.end(body);
    });
    try {
      const err = await failure(client({ maxResponseBytes: 4096 }, big).listRepoLabels('acme', 'widgets'));
      expect(err.message).toMatch(/the answer is larger than the response size limit \(4096 bytes\)/);
      expect(big.hits).toHaveLength(1);
    } finally {
      await big.close();
    }
  });

  it('refuses to send a request body over the request limit, naming it', async () => {
    const c = client({ maxRequestBytes: 1024 });
    const err = await failure(c.createComment('acme', 'widgets', 1, 'y'.repeat(2000)));
    expect(err.message).toBe('POST /repos/acme/widgets/issues/1/comments: the request body is larger than the request size limit (1024 bytes)');
    expect(err.transient).toBe(false);
    expect(sim.stats().requests).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => client({ maxResponseBytes: 0 })).toThrow('GiteaClient: maxResponseBytes must be a positive integer, got 0');
  });
});

describe('GiteaClient calls', () => {
  it('adds labels by id and gets the full list back; removes by id', async () => {
    const c = client();
    const labels = await c.listRepoLabels('acme', 'widgets');
    const [a, b] = labels as [(typeof labels)[number], (typeof labels)[number]];
    const after = await c.addIssueLabels('acme', 'widgets', 3, [b.id, a.id]);
    expect(after.map((l) => l.name)).toEqual([a.name, b.name]);
    await c.removeIssueLabel('acme', 'widgets', 3, a.id);
    expect(sim.issueLabels('acme', 'widgets', 3)).toEqual([b.name]);
    expect(sim.stats().labelWrites).toBe(2);
  });

  it('reads the permission, and reports the 403 Gitea gives a non-admin bot', async () => {
    const c = client();
    sim.setPermission('acme', 'widgets', 'alice', 'write');
    expect(await c.getPermission('acme', 'widgets', 'alice')).toBe('write');
    sim.setBotIsAdmin(false);
    try {
      const err = await failure(c.getPermission('acme', 'widgets', 'alice'));
      expect(err).toMatchObject({ status: 403, transient: false });
    } finally {
      sim.setBotIsAdmin(true);
    }
  });

  it('reads an empty template list (Gitea sends null) as []', async () => {
    expect(await client().listIssueTemplates('acme', 'widgets')).toEqual([]);
  });

  it('creates, lists, edits and deletes a hook', async () => {
    const c = client();
    const target = { repo: 'acme/widgets' };
    const hook = await c.createHook(target, {
      type: 'gitea',
      active: true,
      events: ['issues', 'issue_comment', 'pull_request', 'push'],
      config: { url: 'http://127.0.0.1:9/webhook', content_type: 'json', secret: 's3cret' },
    });
    expect(hook.config).toEqual({ content_type: 'json', url: 'http://127.0.0.1:9/webhook' });
    expect((await c.listHooks(target)).map((h) => h.id)).toEqual([hook.id]);
    const edited = await c.editHook(target, hook.id, { active: false, events: ['push'] });
    expect(edited).toMatchObject({ active: false, events: ['push'] });
    await c.deleteHook(target, hook.id);
    expect(await c.listHooks(target)).toEqual([]);
  });
});
