import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SimGitea } from '../../src/simgitea/index.js';

/**
 * The simulated Gitea's HTTP API against Gitea 1.25.4's behaviour (routers/api/v1/**, models/issues/**),
 * over real HTTP with plain fetch.
 */
const TOKEN = 'sim-test-token';
let sim: SimGitea;

const swagger = JSON.parse(readFileSync(new URL('../fixtures/gitea/swagger.v1.json', import.meta.url), 'utf8')) as {
  definitions: Record<string, { properties?: Record<string, unknown> }>;
};

async function api(
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown; target?: SimGitea } = {},
): Promise<{ status: number; headers: Headers; json: any }> {
  const target = options.target ?? sim;
  const token = options.token === undefined ? TOKEN : options.token;
  const res = await fetch(`${target.url}/api/v1${path}`, {
    method,
    headers: {
      ...(token ? { Authorization: `token ${token}` } : {}),
      ...(options.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

function names(list: { name: string }[]): string[] {
  return list.map((l) => l.name);
}

/** Every key of `obj` is a property of the swagger definition `def`. */
function unknownKeys(obj: Record<string, unknown>, def: string): string[] {
  const props = swagger.definitions[def]?.properties;
  if (!props) throw new Error(`no swagger definition ${def}`);
  return Object.keys(obj).filter((k) => !(k in props));
}

const ids: Record<string, number> = {};

beforeAll(async () => {
  sim = await SimGitea.start({ token: TOKEN });
  sim.addOrg('acme');
  sim.addUser('alice');
  sim.addUser('bob');
  sim.addRepo('acme', 'widgets', { files: { 'README.md': '# Widgets\n', 'docs/guide.md': 'guide' } });
  sim.addRepo('alice', 'notes');
  for (const [name, exclusive] of [
    ['prio/z', true], // created first: lower id, alphabetically last
    ['prio/a', true],
    ['kind/bug', true],
    ['kind/feature', true],
    ['area/ui/dark', true],
    ['area/ui/light', true],
    ['area/api', true],
    ['needs-info', false],
    ['topic/x', false],
    ['topic/y', false],
  ] as const) {
    ids[name] = sim.addLabel('acme', 'widgets', { name, exclusive, color: '#ee0701' }).id;
  }
  ids['org:priority/high'] = sim.addOrgLabel('acme', { name: 'priority/high', exclusive: true }).id;
  ids['notes:kind/bug'] = sim.addLabel('alice', 'notes', { name: 'kind/bug', exclusive: true }).id;
  for (let i = 0; i < 20; i++) sim.addIssue('acme', 'widgets', { title: `Issue ${i}`, user: 'alice' });
});

afterAll(async () => {
  await sim.close();
});

describe('simulated Gitea: authentication and version', () => {
  it('answers /version without a token, like Gitea', async () => {
    const res = await api('GET', '/version', { token: null });
    expect(res).toMatchObject({ status: 200, json: { version: '1.25.4' } });
  });

  it('wants a valid token everywhere else', async () => {
    expect((await api('GET', '/repos/acme/widgets', { token: null })).status).toBe(401);
    expect((await api('GET', '/repos/acme/widgets', { token: 'wrong' })).status).toBe(401);
    expect((await api('GET', '/version', { token: 'wrong' })).status).toBe(401);
    const me = await api('GET', '/user');
    expect(me.json).toMatchObject({ login: 'triage-bot', username: 'triage-bot' });
    // `username` is added by User.MarshalJSON (a copy of `login`), so the swagger spec does not list it.
    expect(unknownKeys(me.json, 'User')).toEqual(['username']);
  });
});

describe('simulated Gitea: paging', () => {
  beforeAll(() => {
    for (let i = 0; i < 110; i++) sim.addLabel('alice', 'notes', { name: `n-${String(i).padStart(3, '0')}` });
  });

  it('returns ALL repository labels when no page is asked for (GetLabelsByRepoID pages only when page > 0)', async () => {
    const res = await api('GET', '/repos/alice/notes/labels');
    expect(res.json).toHaveLength(111);
    expect(res.headers.get('x-total-count')).toBe('111');
    expect(res.json[0].name).toBe('kind/bug'); // sorted by name
  });

  it('caps limit at 50 and defaults it to 30', async () => {
    expect((await api('GET', '/repos/alice/notes/labels?page=1&limit=100')).json).toHaveLength(50);
    expect((await api('GET', '/repos/alice/notes/labels?page=3&limit=50')).json).toHaveLength(11);
    expect((await api('GET', '/repos/alice/notes/labels?page=1')).json).toHaveLength(30);
  });

  it('serves page 1 of issues when no page is asked for, newest first', async () => {
    const res = await api('GET', '/repos/acme/widgets/issues');
    expect(res.json).toHaveLength(20);
    expect(res.json[0].number).toBe(20);
    const page = await api('GET', '/repos/acme/widgets/issues?limit=7&page=3');
    expect(page.json.map((i: { number: number }) => i.number)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(page.headers.get('x-total-count')).toBe('20');
  });

  it('filters issues by state and since', async () => {
    const n = sim.addIssue('acme', 'widgets', { title: 'closed one', user: 'bob', state: 'closed' });
    expect((await api('GET', '/repos/acme/widgets/issues?state=closed')).json.map((i: { number: number }) => i.number)).toEqual([n]);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await api('GET', `/repos/acme/widgets/issues?state=all&since=${future}`)).json).toEqual([]);
  });
});

describe('simulated Gitea: adding labels to an issue', () => {
  it('accepts ids and returns the full label list, sorted by name', async () => {
    const res = await api('POST', '/repos/acme/widgets/issues/1/labels', { body: { labels: [ids['topic/y'], ids['needs-info']] } });
    expect(res.status).toBe(200);
    expect(names(res.json)).toEqual(['needs-info', 'topic/y']);
    expect(unknownKeys(res.json[0], 'Label')).toEqual([]);
    expect(res.json[0].color).toBe('ee0701');
  });

  it('accepts names (repo and org labels), silently ignoring unknown ones', async () => {
    const res = await api('POST', '/repos/acme/widgets/issues/2/labels', { body: { labels: ['topic/x', 'priority/high', 'no-such-label'] } });
    expect(res.status).toBe(200);
    expect(names(res.json)).toEqual(['priority/high', 'topic/x']);
    expect(res.json[0].url).toBe(`${sim.url}/api/v1/orgs/acme/labels/${ids['org:priority/high']}`);
  });

  it('refuses ids mixed with names (400) and values that are neither (400)', async () => {
    const mixed = await api('POST', '/repos/acme/widgets/issues/3/labels', { body: { labels: [ids['topic/x'], 'topic/y'] } });
    expect(mixed.status).toBe(400);
    expect(mixed.json.message).toBe('labels should be an array of strings or integers');
    expect((await api('POST', '/repos/acme/widgets/issues/3/labels', { body: { labels: [true] } })).status).toBe(400);
    expect(sim.issueLabels('acme', 'widgets', 3)).toEqual([]);
  });

  it("ignores another repository's label ids", async () => {
    const res = await api('POST', '/repos/acme/widgets/issues/4/labels', { body: { labels: [ids['notes:kind/bug']] } });
    expect(res.json).toEqual([]);
  });

  it('a new exclusive label removes its siblings of the same scope', async () => {
    await api('POST', '/repos/acme/widgets/issues/5/labels', { body: { labels: [ids['kind/bug'], ids['needs-info']] } });
    const res = await api('POST', '/repos/acme/widgets/issues/5/labels', { body: { labels: [ids['kind/feature']] } });
    expect(names(res.json)).toEqual(['kind/feature', 'needs-info']);
  });

  it('of several exclusive labels in one request the alphabetically last wins, whatever the order or ids', async () => {
    const byIds = await api('POST', '/repos/acme/widgets/issues/6/labels', { body: { labels: [ids['prio/z'], ids['prio/a']] } });
    expect(names(byIds.json)).toEqual(['prio/z']);
    const byNames = await api('POST', '/repos/acme/widgets/issues/7/labels', { body: { labels: ['prio/z', 'prio/a'] } });
    expect(names(byNames.json)).toEqual(['prio/z']);
  });

  it('takes the scope up to the LAST slash', async () => {
    const res = await api('POST', '/repos/acme/widgets/issues/8/labels', {
      body: { labels: [ids['area/ui/dark'], ids['area/api']] },
    });
    expect(names(res.json)).toEqual(['area/api', 'area/ui/dark']); // scopes "area" and "area/ui"
    const next = await api('POST', '/repos/acme/widgets/issues/8/labels', { body: { labels: [ids['area/ui/light']] } });
    expect(names(next.json)).toEqual(['area/api', 'area/ui/light']);
  });

  it('leaves non-exclusive labels of one prefix alone', async () => {
    const res = await api('POST', '/repos/acme/widgets/issues/9/labels', { body: { labels: [ids['topic/x'], ids['topic/y']] } });
    expect(names(res.json)).toEqual(['topic/x', 'topic/y']);
  });

  it('answers 404 for a missing issue and 403 to a user without write access', async () => {
    expect((await api('POST', '/repos/acme/widgets/issues/999/labels', { body: { labels: [1] } })).status).toBe(404);
    sim.addUser('reader', { token: 'reader-token' });
    const res = await api('POST', '/repos/acme/widgets/issues/10/labels', { token: 'reader-token', body: { labels: [ids['topic/x']] } });
    expect(res.status).toBe(403);
  });

  it('counts label writes', async () => {
    sim.resetStats();
    await api('POST', '/repos/acme/widgets/issues/11/labels', { body: { labels: [ids['topic/x']] } });
    await api('DELETE', `/repos/acme/widgets/issues/11/labels/${ids['topic/x']}`);
    await api('GET', '/repos/acme/widgets/issues/11/labels');
    expect(sim.stats()).toMatchObject({ labelWrites: 2, requests: 3 });
  });
});

describe('simulated Gitea: removing a label', () => {
  it('removes by id (204)', async () => {
    await api('POST', '/repos/acme/widgets/issues/12/labels', { body: { labels: [ids['topic/x'], ids['topic/y']] } });
    const res = await api('DELETE', `/repos/acme/widgets/issues/12/labels/${ids['topic/x']}`);
    expect(res.status).toBe(204);
    expect(sim.issueLabels('acme', 'widgets', 12)).toEqual(['topic/y']);
  });

  it('answers 204 for an existing label that is not on the issue, changing nothing', async () => {
    const res = await api('DELETE', `/repos/acme/widgets/issues/12/labels/${ids['needs-info']}`);
    expect(res.status).toBe(204);
    expect(sim.issueLabels('acme', 'widgets', 12)).toEqual(['topic/y']);
  });

  it('answers 422 for an unknown id and for a name instead of an id', async () => {
    expect((await api('DELETE', '/repos/acme/widgets/issues/12/labels/987654')).status).toBe(422);
    expect((await api('DELETE', `/repos/acme/widgets/issues/12/labels/${encodeURIComponent('topic/y')}`)).status).toBe(422);
    expect((await api('DELETE', '/repos/acme/widgets/issues/12/labels/topic')).status).toBe(422);
    expect(sim.issueLabels('acme', 'widgets', 12)).toEqual(['topic/y']);
  });

  it('answers 404 for a missing issue', async () => {
    expect((await api('DELETE', `/repos/acme/widgets/issues/999/labels/${ids['topic/y']}`)).status).toBe(404);
  });
});

describe('simulated Gitea: permissions', () => {
  it('answers a repo admin (the bot by default) about anyone', async () => {
    sim.setPermission('acme', 'widgets', 'bob', 'write');
    const res = await api('GET', '/repos/acme/widgets/collaborators/bob/permission');
    expect(res.json).toMatchObject({ permission: 'write', role_name: 'write', user: { login: 'bob' } });
    expect(unknownKeys(res.json, 'RepoCollaboratorPermission')).toEqual([]);
    expect((await api('GET', '/repos/acme/widgets/collaborators/alice/permission')).json.permission).toBe('read');
    expect((await api('GET', '/repos/alice/notes/collaborators/alice/permission')).json.permission).toBe('owner');
    expect((await api('GET', '/repos/acme/widgets/collaborators/nobody/permission')).status).toBe(404);
  });

  it('refuses (403) a bot that is not repo admin, except about itself', async () => {
    const strict = await SimGitea.start({ token: TOKEN, botIsAdmin: false });
    try {
      strict.addOrg('acme');
      strict.addUser('bob');
      strict.addRepo('acme', 'widgets');
      const res = await api('GET', '/repos/acme/widgets/collaborators/bob/permission', { target: strict });
      expect(res.status).toBe(403);
      const self = await api('GET', '/repos/acme/widgets/collaborators/triage-bot/permission', { target: strict });
      expect(self).toMatchObject({ status: 200, json: { permission: 'write' } });
      strict.setPermission('acme', 'widgets', 'triage-bot', 'admin');
      expect((await api('GET', '/repos/acme/widgets/collaborators/bob/permission', { target: strict })).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

describe('simulated Gitea: files', () => {
  it('file-contents answers in request order, null for what is missing', async () => {
    const body = encodeURIComponent(JSON.stringify({ files: ['docs/guide.md', 'nope.md', 'README.md', 'docs'] }));
    const res = await api('GET', `/repos/acme/widgets/file-contents?body=${body}`);
    expect(res.status).toBe(200);
    expect(res.json.map((f: { path: string; type: string } | null) => f && `${f.type}:${f.path}`)).toEqual([
      'file:docs/guide.md',
      null,
      'file:README.md',
      'dir:docs',
    ]);
    expect(Buffer.from(res.json[2].content, 'base64').toString('utf8')).toBe('# Widgets\n');
    expect(unknownKeys(res.json[0], 'ContentsResponse')).toEqual([]);
  });

  it('file-contents answers at most 30 files, 400 for a bad body, 404 for an unknown ref', async () => {
    const many = encodeURIComponent(JSON.stringify({ files: Array.from({ length: 40 }, (_, i) => `f${i}`) }));
    expect((await api('GET', `/repos/acme/widgets/file-contents?body=${many}`)).json).toHaveLength(30);
    expect((await api('GET', '/repos/acme/widgets/file-contents?body=nope')).status).toBe(400);
    const one = encodeURIComponent(JSON.stringify({ files: ['README.md'] }));
    expect((await api('GET', `/repos/acme/widgets/file-contents?body=${one}&ref=no-branch`)).status).toBe(404);
  });

  it('contents answers a file, 404 when missing, a listing for a directory', async () => {
    const file = await api('GET', '/repos/acme/widgets/contents/docs/guide.md');
    expect(file.json).toMatchObject({ type: 'file', path: 'docs/guide.md', encoding: 'base64' });
    expect((await api('GET', '/repos/acme/widgets/contents/docs/missing.md')).status).toBe(404);
    expect((await api('GET', '/repos/acme/widgets/contents/docs')).json.map((e: { path: string }) => e.path)).toEqual(['docs/guide.md']);
  });

  it('has no file-contents before 1.24 and takes no label names before 1.22', async () => {
    const old = await SimGitea.start({ token: TOKEN, version: '1.21.0' });
    try {
      old.addRepo('acme', 'widgets', { files: { 'a.md': 'a' } });
      const label = old.addLabel('acme', 'widgets', { name: 'kind/bug' });
      const n = old.addIssue('acme', 'widgets', { title: 't', user: 'alice' });
      const body = encodeURIComponent(JSON.stringify({ files: ['a.md'] }));
      expect((await api('GET', `/repos/acme/widgets/file-contents?body=${body}`, { target: old })).status).toBe(404);
      expect((await api('POST', `/repos/acme/widgets/issues/${n}/labels`, { target: old, body: { labels: ['kind/bug'] } })).status).toBe(422);
      const byId = await api('POST', `/repos/acme/widgets/issues/${n}/labels`, { target: old, body: { labels: [label.id] } });
      expect(names(byId.json)).toEqual(['kind/bug']);
    } finally {
      await old.close();
    }
  });
});

describe('simulated Gitea: issue templates', () => {
  beforeAll(() => {
    sim.addRepo('acme', 'templated', {
      files: {
        '.gitea/ISSUE_TEMPLATE/bug.md': [
          '---',
          'name: Bug report',
          'about: Something is broken',
          'title: "[bug] "',
          'labels: kind/bug, needs-info',
          '---',
          '### What happened',
          '',
          '### Steps to reproduce',
          '',
        ].join('\n'),
        '.gitea/ISSUE_TEMPLATE/plain.md': '### Just a heading\n',
        '.gitea/ISSUE_TEMPLATE/config.yml': 'blank_issues_enabled: false\n',
        '.gitea/ISSUE_TEMPLATE/broken.yml': 'name: Broken\nabout: no body\n',
        '.gitea/ISSUE_TEMPLATE/nested/deep.md': '---\nname: Deep\nabout: not listed\n---\n',
        '.github/ISSUE_TEMPLATE/feature.yaml': [
          'name: Feature request',
          'description: Suggest an idea',
          'labels: [kind/feature]',
          'body:',
          '  - type: markdown',
          '    attributes:',
          '      value: Thanks!',
          '  - type: textarea',
          '    id: problem',
          '    attributes:',
          '      label: Problem',
          '    validations:',
          '      required: true',
          '  - type: input',
          '    attributes:',
          '      label: Version',
          '',
        ].join('\n'),
        'ISSUE_TEMPLATE/root.md': '---\nname: Root\nabout: At the root\n---\nbody\n',
        'issue_template.md': '---\nname: Legacy\nabout: single file\n---\n',
        'docs/ISSUE_TEMPLATE/elsewhere.md': '---\nname: Elsewhere\nabout: not a template folder\n---\n',
      },
    });
  });

  it("lists Gitea's parse of markdown templates and YAML forms, in Gitea's folder order", async () => {
    const res = await api('GET', '/repos/acme/templated/issue_templates');
    expect(res.status).toBe(200);
    expect(res.json.map((t: { file_name: string }) => t.file_name)).toEqual([
      'ISSUE_TEMPLATE/root.md',
      '.gitea/ISSUE_TEMPLATE/bug.md',
      '.gitea/ISSUE_TEMPLATE/plain.md',
      '.github/ISSUE_TEMPLATE/feature.yaml',
    ]);
    const [, bug, plain, form] = res.json;
    expect(bug).toEqual({
      name: 'Bug report',
      title: '[bug] ',
      about: 'Something is broken',
      labels: ['kind/bug', 'needs-info'],
      assignees: null,
      ref: 'refs/heads/',
      content: '### What happened\n\n### Steps to reproduce\n',
      body: null,
      file_name: '.gitea/ISSUE_TEMPLATE/bug.md',
    });
    expect(unknownKeys(bug, 'IssueTemplate')).toEqual([]);
    // No front matter: the file name is the name, the text the content and the about.
    expect(plain).toMatchObject({ name: 'plain.md', about: '### Just a heading\n', content: '### Just a heading\n' });
    expect(form).toMatchObject({ name: 'Feature request', about: 'Suggest an idea', labels: ['kind/feature'], content: '' });
    expect(form.body).toEqual([
      { type: 'markdown', id: '0', attributes: { value: 'Thanks!' }, validations: null, visible: ['form'] },
      { type: 'textarea', id: 'problem', attributes: { label: 'Problem' }, validations: { required: true }, visible: ['form', 'content'] },
      { type: 'input', id: '2', attributes: { label: 'Version' }, validations: null, visible: ['form', 'content'] },
    ]);
    expect(unknownKeys(form.body[1], 'IssueFormField')).toEqual([]);
  });

  it('leaves invalid templates out and says how many in X-Gitea-Warning', async () => {
    const res = await api('GET', '/repos/acme/templated/issue_templates');
    expect(res.headers.get('x-gitea-warning')).toBe('error occurs when parsing issue template: count=1');
  });

  it('answers null when a repository has no templates', async () => {
    const res = await api('GET', '/repos/acme/widgets/issue_templates');
    expect(res).toMatchObject({ status: 200, json: null });
  });
});

describe('simulated Gitea: pull request files and objects', () => {
  it('pages PR files with Gitea headers; 404 for an issue that is not a PR', async () => {
    const n = sim.addIssue('acme', 'widgets', {
      title: 'PR',
      user: 'bob',
      pull: { files: Array.from({ length: 45 }, (_, i) => ({ filename: `f${i}.go`, additions: i, deletions: 1 })) },
    });
    const res = await api('GET', `/repos/acme/widgets/pulls/${n}/files?page=2&limit=30`);
    expect(res.json).toHaveLength(15);
    expect(res.headers.get('x-total-count')).toBe('45');
    expect(res.headers.get('x-hasmore')).toBe('false');
    expect(unknownKeys(res.json[0], 'ChangedFile')).toEqual([]);
    expect((await api('GET', '/repos/acme/widgets/pulls/1/files')).status).toBe(404);
    const issue = await api('GET', `/repos/acme/widgets/issues/${n}`);
    expect(issue.json.pull_request).toMatchObject({ merged: false, draft: false });
    expect(unknownKeys(issue.json, 'Issue')).toEqual([]);
    expect(unknownKeys(issue.json.pull_request, 'PullRequestMeta')).toEqual([]);
  });

  it('answers repository and comment objects with the swagger fields', async () => {
    const repo = await api('GET', '/repos/acme/widgets');
    expect(repo.json).toMatchObject({ full_name: 'acme/widgets', default_branch: 'main', permissions: { admin: true, push: true, pull: true } });
    expect(unknownKeys(repo.json, 'Repository')).toEqual([]);
    const comment = await api('POST', '/repos/acme/widgets/issues/13/comments', { body: { body: 'Thanks!' } });
    expect(comment.status).toBe(201);
    expect(unknownKeys(comment.json, 'Comment')).toEqual([]);
    expect(sim.comments('acme', 'widgets', 13)).toEqual([{ user: 'triage-bot', body: 'Thanks!' }]);
  });
});

describe('simulated Gitea: hooks', () => {
  it('never returns the secret; active defaults to false; events default to push', async () => {
    const res = await api('POST', '/repos/acme/widgets/hooks', {
      body: { type: 'gitea', config: { url: 'http://127.0.0.1:9/hook', content_type: 'json', secret: 'top-secret' } },
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ type: 'gitea', active: false, events: ['push'], branch_filter: '', authorization_header: '' });
    expect(JSON.stringify(res.json)).not.toContain('top-secret');
    expect(unknownKeys(res.json, 'Hook')).toEqual([]);
    expect(JSON.stringify((await api('GET', '/repos/acme/widgets/hooks')).json)).not.toContain('top-secret');
  });

  it('PATCH resets events, branch_filter and authorization_header when they are omitted', async () => {
    const created = await api('POST', '/orgs/acme/hooks', {
      body: {
        type: 'gitea',
        active: true,
        events: ['issues', 'issue_comment'],
        branch_filter: 'main',
        authorization_header: 'Bearer abc',
        config: { url: 'http://127.0.0.1:9/hook', content_type: 'json' },
      },
    });
    expect(created.json.events).toEqual(expect.arrayContaining(['issues', 'issue_label', 'issue_comment']));
    const patched = await api('PATCH', `/orgs/acme/hooks/${created.json.id}`, { body: { config: { url: 'http://127.0.0.1:9/other' } } });
    expect(patched.json).toMatchObject({
      active: true,
      events: ['push'],
      branch_filter: '',
      authorization_header: '',
      config: { url: 'http://127.0.0.1:9/other', content_type: 'json' },
    });
    expect((await api('DELETE', `/orgs/acme/hooks/${created.json.id}`)).status).toBe(204);
    expect((await api('GET', `/orgs/acme/hooks/${created.json.id}`)).status).toBe(404);
  });

  it('validates like Gitea: hook type, required config, content type', async () => {
    const bad = (body: unknown) => api('POST', '/repos/acme/widgets/hooks', { body });
    expect((await bad({ type: 'nope', config: { url: 'x', content_type: 'json' } })).status).toBe(422);
    expect((await bad({ type: 'gitea', config: { content_type: 'json' } })).json.message).toBe('Missing config option: url');
    expect((await bad({ type: 'gitea', config: { url: 'x', content_type: 'xml' } })).json.message).toBe('Invalid content type');
  });
});

describe('simulated Gitea: faults', () => {
  it('replays the same faults for the same seed', async () => {
    const statuses: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const s = await SimGitea.start({ token: TOKEN, seed: 1234 });
      try {
        s.setFaults({ errorRate: 0.5, statuses: [500, 502, 503] });
        const seen: number[] = [];
        for (let i = 0; i < 20; i++) seen.push((await api('GET', '/user', { target: s })).status);
        statuses.push(seen);
      } finally {
        await s.close();
      }
    }
    expect(statuses[0]).toEqual(statuses[1]);
    expect(new Set(statuses[0])).toEqual(new Set([200, 500, 502, 503]));
  });

  it('refuses connections while down', async () => {
    sim.setFaults({ down: true });
    try {
      await expect(api('GET', '/version', { token: null })).rejects.toThrow();
    } finally {
      sim.setFaults({});
    }
    expect((await api('GET', '/version', { token: null })).status).toBe(200);
  });
});
