import { goTime, type SimComment, type SimIssue, type SimRepo, type SimUser } from './model.js';
import { HttpError, listOptions, paged, type Reply, type RequestContext, type Router } from './router.js';
import { commentJson, issueCommentPayload, issueJson, repoJson, userJson } from './shapes.js';
import { isAdmin, permissionsOf, type SimState } from './state.js';

/** `/version`, `/user`, repositories, issues and their comments, collaborator permissions. */
export function registerIssueRoutes(router: Router, state: SimState): void {
  router.add('GET', '/version', () => ({ status: 200, body: { version: state.version } }), { anonymous: true });
  router.add('GET', '/user', (c) => ({ status: 200, body: userJson(state.ctx, c.doer, true) }));

  router.add('GET', '/repos/{owner}/{repo}', (c) => {
    const repo = state.repoOf(c);
    return { status: 200, body: repoJson(state.ctx, repo, permissionsOf(state, repo, c.doer)) };
  });
  router.add('GET', '/orgs/{org}/repos', (c) => listOrgRepos(state, c));
  router.add('GET', '/repos/{owner}/{repo}/issues', (c) => listIssues(state, c));
  router.add('GET', '/repos/{owner}/{repo}/issues/{index}', (c) => {
    const { repo, issue } = state.issueOf(c);
    return { status: 200, body: issueJson(state.ctx, repo, issue) };
  });
  router.add('GET', '/repos/{owner}/{repo}/issues/{index}/comments', (c) => {
    const { repo, issue } = state.issueOf(c);
    return { status: 200, body: issue.comments.map((cm) => commentJson(state.ctx, repo, issue, cm)) };
  });
  router.add('POST', '/repos/{owner}/{repo}/issues/{index}/comments', (c) => {
    const { repo, issue } = state.issueOf(c);
    const text = (c.body as { body?: unknown } | undefined)?.body;
    if (typeof text !== 'string' || text === '') throw new HttpError(422, '[Body]: Required');
    const cm = addComment(state, repo, issue, c.doer, text);
    return { status: 201, body: commentJson(state.ctx, repo, issue, cm) };
  });
  router.add('GET', '/repos/{owner}/{repo}/collaborators/{collaborator}/permission', (c) => {
    const repo = state.repoOf(c);
    const name = c.params.collaborator ?? '';
    // routers/api/v1/repo/collaborators.go: site admins, repo admins, and users asking about themselves.
    if (!c.doer.isAdmin && c.doer.login.toLowerCase() !== name.toLowerCase() && !isAdmin(state.levelOf(repo, c.doer))) {
      throw new HttpError(403, 'Only admins can query all permissions, repo admins can query all repo permissions, collaborators can query only their own');
    }
    const user = state.users.get(name.toLowerCase());
    if (!user || user.isOrg) throw new HttpError(404, `user redirect does not exist [name: ${name}]`);
    const level = state.levelOf(repo, user);
    return { status: 200, body: { permission: level, role_name: level, user: userJson(state.ctx, user, false) } };
  });
}

/**
 * routers/api/v1/user/repo.go ListOrgRepos → listUserRepos (v1.21.11, v1.25.4): one page of every
 * repository of the org, private ones included, ordered by id (models/repo/repo_list.go
 * GetUserRepositories), THEN drops those the caller has no access to — so a page can be short or empty
 * while later pages hold repositories. `X-Total-Count` and `Link` count the unfiltered list.
 */
function listOrgRepos(state: SimState, c: RequestContext): Reply {
  const org = state.orgOf(c);
  const all = [...state.repos.values()].filter((r) => r.owner.id === org.id).sort((a, b) => a.id - b.id);
  const { page, limit } = listOptions(c.query);
  const p = Math.max(page, 1);
  const visible = all
    .slice((p - 1) * limit, p * limit)
    .filter((repo) => c.doer.isAdmin || state.levelOf(repo, c.doer) !== 'none')
    .map((repo) => repoJson(state.ctx, repo, permissionsOf(state, repo, c.doer)));
  return { status: 200, body: visible, headers: { 'X-Total-Count': String(all.length), ...linkHeader(state, c, `/api/v1/orgs/${org.login}/repos`, all.length, limit, p) } };
}

/** services/context/api.go genAPILinks: `<…?page=N>; rel="next"`, `last`, `first`, `prev` (those that apply). */
function linkHeader(state: SimState, c: RequestContext, path: string, total: number, limit: number, page: number): Record<string, string> {
  const pages = Math.max(1, Math.ceil(total / limit));
  const at = (n: number): string => {
    const q = new URLSearchParams(c.query);
    q.set('page', String(n));
    return `${state.ctx.base}${path}?${q.toString()}`;
  };
  const links: string[] = [];
  if (page < pages) links.push(`<${at(page + 1)}>; rel="next"`, `<${at(pages)}>; rel="last"`);
  if (page > 1) links.push(`<${at(1)}>; rel="first"`, `<${at(page - 1)}>; rel="prev"`);
  return links.length > 0 ? { Link: links.join(',') } : {};
}

function listIssues(state: SimState, c: RequestContext): Reply {
  const repo = state.repoOf(c);
  const stateFilter = c.query.get('state') ?? 'open';
  const type = c.query.get('type');
  const sinceText = c.query.get('since');
  const since = sinceText ? Date.parse(sinceText) : NaN;
  if (sinceText && Number.isNaN(since)) throw new HttpError(422, `invalid since: ${sinceText}`);
  const list = [...repo.issues.values()]
    .filter((i) => stateFilter === 'all' || i.state === stateFilter)
    .filter((i) => (type === 'issues' ? !i.pull : type === 'pulls' ? !!i.pull : true))
    .filter((i) => Number.isNaN(since) || Math.floor(i.updatedMs / 1000) >= Math.floor(since / 1000))
    // ListIssues sorts newest first (SortByCreatedDesc).
    .sort((a, b) => b.createdMs - a.createdMs || b.number - a.number);
  return paged(
    list.map((i) => issueJson(state.ctx, repo, i)),
    c.query,
    false,
  );
}

/** A comment on an issue or pull request, and its `issue_comment`/`pull_request_comment` delivery. */
export function addComment(state: SimState, repo: SimRepo, issue: SimIssue, user: SimUser, body: string): SimComment {
  const now = goTime(state.now());
  const cm: SimComment = { id: ++state.ids.comment, user, body, created: now, updated: now };
  issue.comments.push(cm);
  state.touch(repo, issue);
  state.emit(repo, issue.pull ? 'pull_request_comment' : 'issue_comment', issueCommentPayload(state.ctx, repo, issue, cm, user));
  return cm;
}
