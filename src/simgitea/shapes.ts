import { createHash } from 'node:crypto';
import type { SimComment, SimHook, SimIssue, SimLabel, SimRepo, SimUser } from './model.js';
import { byName } from './model.js';

/**
 * JSON shapes of Gitea 1.25.4's API objects and webhook payloads, key for key and in Go's field order
 * (modules/structs/*.go, services/convert/*.go; compare tests/fixtures/payloads/*.json).
 */
export interface ShapeContext {
  /** Base URL without `/api/v1`, no trailing slash. */
  base: string;
  /** Host used for placeholder e-mails (`<login>@noreply.<domain>`). */
  domain: string;
  userById(id: number): SimUser | undefined;
  labelById(id: number): SimLabel | undefined;
  repoById(id: number): SimRepo | undefined;
  /** The simulated Gitea is at least this version (shapes changed between versions). */
  atLeast(major: number, minor: number): boolean;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

function avatar(ctx: ShapeContext, login: string): string {
  return `${ctx.base}/avatars/${createHash('md5').update(login).digest('hex')}`;
}

/**
 * `convert.ToUser`. With `viewer` (the API converting for a signed-in user, or an issue's poster) the real
 * e-mail shows; without one (`sender`, `pusher`, `comment.user` in payloads) Gitea shows the placeholder.
 */
export function userJson(ctx: ShapeContext, u: SimUser, viewer: boolean): Record<string, unknown> {
  const email = u.isOrg ? '' : viewer ? u.email : `${u.login}@noreply.${ctx.domain}`;
  return {
    id: u.id,
    login: u.login,
    login_name: '',
    source_id: 0,
    full_name: u.fullName,
    email,
    avatar_url: avatar(ctx, u.login),
    html_url: `${ctx.base}/${u.login}`,
    language: '',
    is_admin: viewer ? u.isAdmin : false,
    last_login: ZERO_TIME,
    created: u.created,
    restricted: false,
    active: false,
    prohibit_login: false,
    location: '',
    website: u.website,
    description: u.description,
    visibility: 'public',
    followers_count: 0,
    following_count: 0,
    starred_repos_count: 0,
    username: u.login,
  };
}

/** `convert.ToLabel`: colour without `#`; org labels point at `/orgs/{org}/labels/{id}`. */
export function labelJson(ctx: ShapeContext, l: SimLabel): Record<string, unknown> {
  let url = '';
  if (l.repoId !== undefined) {
    const repo = ctx.repoById(l.repoId);
    if (repo) url = `${ctx.base}/api/v1/repos/${repo.owner.login}/${repo.name}/labels/${l.id}`;
  } else if (l.orgId !== undefined) {
    const org = ctx.userById(l.orgId);
    if (org) url = `${ctx.base}/api/v1/orgs/${encodeURIComponent(org.login)}/labels/${l.id}`;
  }
  return {
    id: l.id,
    name: l.name,
    exclusive: l.exclusive,
    is_archived: l.archived,
    color: l.color.replace(/^#/, ''),
    description: l.description,
    url,
  };
}

export function issueLabels(ctx: ShapeContext, issue: SimIssue): SimLabel[] {
  return [...issue.labelIds]
    .map((id) => ctx.labelById(id))
    .filter((l): l is SimLabel => l !== undefined)
    .sort(byName);
}

export function repoJson(
  ctx: ShapeContext,
  repo: SimRepo,
  permissions: { admin: boolean; push: boolean; pull: boolean },
): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const issues = [...repo.issues.values()];
  return {
    id: repo.id,
    owner: userJson(ctx, repo.owner, false),
    name: repo.name,
    full_name: full,
    description: repo.description,
    empty: false,
    private: repo.private,
    fork: false,
    template: false,
    mirror: false,
    size: 0,
    language: '',
    languages_url: `${ctx.base}/api/v1/repos/${full}/languages`,
    html_url: `${ctx.base}/${full}`,
    url: `${ctx.base}/api/v1/repos/${full}`,
    link: '',
    ssh_url: `git@${new URL(ctx.base).hostname}:${full}.git`,
    clone_url: `${ctx.base}/${full}.git`,
    original_url: '',
    website: '',
    stars_count: 0,
    forks_count: 0,
    watchers_count: 0,
    open_issues_count: issues.filter((i) => !i.pull && i.state === 'open').length,
    open_pr_counter: issues.filter((i) => i.pull && i.state === 'open').length,
    release_counter: 0,
    default_branch: repo.defaultBranch,
    archived: false,
    created_at: repo.created,
    updated_at: repo.updated,
    archived_at: '1970-01-01T00:00:00Z',
    permissions,
    has_code: true,
    has_issues: true,
    internal_tracker: {
      enable_time_tracker: true,
      allow_only_contributors_to_track_time: true,
      enable_issue_dependencies: true,
    },
    has_wiki: true,
    has_pull_requests: true,
    has_projects: true,
    projects_mode: 'all',
    has_releases: true,
    has_packages: true,
    has_actions: true,
    ignore_whitespace_conflicts: false,
    allow_merge_commits: true,
    allow_rebase: true,
    allow_rebase_explicit: true,
    allow_squash_merge: true,
    allow_fast_forward_only_merge: true,
    allow_rebase_update: true,
    allow_manual_merge: false,
    autodetect_manual_merge: false,
    default_delete_branch_after_merge: false,
    default_merge_style: 'merge',
    default_allow_maintainer_edit: false,
    avatar_url: '',
    internal: false,
    mirror_interval: '',
    object_format_name: 'sha1',
    mirror_updated: ZERO_TIME,
    topics: [],
    licenses: [],
  };
}

/** `convert.ToAPIIssue`: the same object for issues and pull requests (`pull_request` non-null for PRs). */
export function issueJson(ctx: ShapeContext, repo: SimRepo, issue: SimIssue): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const kind = issue.pull ? 'pulls' : 'issues';
  return {
    id: issue.id,
    url: `${ctx.base}/api/v1/repos/${full}/issues/${issue.number}`,
    html_url: `${ctx.base}/${full}/${kind}/${issue.number}`,
    number: issue.number,
    user: userJson(ctx, issue.user, true),
    original_author: '',
    original_author_id: 0,
    title: issue.title,
    body: issue.body,
    ref: '',
    assets: [],
    labels: issueLabels(ctx, issue).map((l) => labelJson(ctx, l)),
    milestone: null,
    assignee: null,
    assignees: null,
    state: issue.state,
    is_locked: false,
    comments: issue.comments.length,
    created_at: issue.created,
    updated_at: issue.updated,
    closed_at: issue.closed,
    due_date: null,
    time_estimate: 0,
    pull_request: issue.pull
      ? { merged: false, merged_at: null, draft: issue.pull.draft, html_url: `${ctx.base}/${full}/pulls/${issue.number}` }
      : null,
    repository: { id: repo.id, name: repo.name, owner: repo.owner.login, full_name: full },
    pin_order: 0,
  };
}

/** `convert.ToAPIPullRequest`. */
export function pullJson(ctx: ShapeContext, repo: SimRepo, issue: SimIssue): Record<string, unknown> {
  const pull = issue.pull;
  if (!pull) throw new Error(`#${issue.number} is not a pull request`);
  const full = `${repo.owner.login}/${repo.name}`;
  const repoObj = repoJson(ctx, repo, { admin: false, push: true, pull: true });
  const head = pull.headRepoGone
    ? { label: pull.headRef, ref: pull.headRef, sha: pull.headSha, repo_id: -1, repo: null }
    : { label: pull.headRef, ref: pull.headRef, sha: pull.headSha, repo_id: repo.id, repo: repoObj };
  return {
    id: pull.id,
    url: `${ctx.base}/${full}/pulls/${issue.number}`,
    number: issue.number,
    user: userJson(ctx, issue.user, false),
    title: issue.title,
    body: issue.body,
    labels: issueLabels(ctx, issue).map((l) => labelJson(ctx, l)),
    milestone: null,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_reviewers_teams: [],
    state: issue.state,
    draft: pull.draft,
    is_locked: false,
    comments: issue.comments.length,
    ...diffStats(ctx, pull),
    html_url: `${ctx.base}/${full}/pulls/${issue.number}`,
    diff_url: `${ctx.base}/${full}/pulls/${issue.number}.diff`,
    patch_url: `${ctx.base}/${full}/pulls/${issue.number}.patch`,
    mergeable: true,
    merged: false,
    merged_at: null,
    merge_commit_sha: null,
    merged_by: null,
    allow_maintainer_edit: false,
    base: { label: pull.baseRef, ref: pull.baseRef, sha: pull.baseSha, repo_id: repo.id, repo: repoObj },
    head,
    merge_base: pull.baseSha,
    due_date: null,
    created_at: issue.created,
    updated_at: issue.updated,
    closed_at: issue.closed,
    pin_order: 0,
  };
}

/**
 * `additions`, `deletions`, `changed_files` of services/convert/pull.go ToAPIPullRequest: absent before
 * 1.22 (not in modules/structs/pull.go); 1.22–1.23 plain ints, left 0 when the head repository is gone
 * (the diff is computed only when `pr.HeadRepo != nil`); 1.24+ `*int` with omitempty: absent then.
 */
function diffStats(ctx: ShapeContext, pull: NonNullable<SimIssue['pull']>): Record<string, number> {
  if (!ctx.atLeast(1, 22)) return {};
  if (pull.headRepoGone) return ctx.atLeast(1, 24) ? {} : { additions: 0, deletions: 0, changed_files: 0 };
  return {
    additions: pull.files.reduce((n, f) => n + f.additions, 0),
    deletions: pull.files.reduce((n, f) => n + f.deletions, 0),
    changed_files: pull.files.length,
  };
}

/** `convert.ToAPIComment` (the user converted without a viewer, as in payloads). */
export function commentJson(ctx: ShapeContext, repo: SimRepo, issue: SimIssue, c: SimComment): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const kind = issue.pull ? 'pulls' : 'issues';
  return {
    id: c.id,
    html_url: `${ctx.base}/${full}/${kind}/${issue.number}#issuecomment-${c.id}`,
    pull_request_url: issue.pull ? `${ctx.base}/${full}/pulls/${issue.number}` : '',
    issue_url: issue.pull ? '' : `${ctx.base}/${full}/issues/${issue.number}`,
    user: userJson(ctx, c.user, false),
    original_author: '',
    original_author_id: 0,
    body: c.body,
    assets: [],
    created_at: c.created,
    updated_at: c.updated,
  };
}

/** One entry of `GET …/pulls/{index}/files` (`convert.ToChangedFile`). */
export function changedFileJson(
  ctx: ShapeContext,
  repo: SimRepo,
  issue: SimIssue,
  f: { filename: string; status: string; additions: number; deletions: number; previous_filename?: string },
): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const sha = issue.pull?.headSha ?? '';
  const file = f.filename.split('/').map(encodeURIComponent).join('/');
  return {
    filename: f.filename,
    ...(f.previous_filename ? { previous_filename: f.previous_filename } : {}),
    status: f.status,
    additions: f.additions,
    deletions: f.deletions,
    changes: f.additions + f.deletions,
    html_url: `${ctx.base}/${full}/src/commit/${sha}/${file}`,
    contents_url: `${ctx.base}/api/v1/repos/${full}/contents/${file}?ref=${sha}`,
    raw_url: `${ctx.base}/${full}/raw/commit/${sha}/${file}`,
  };
}

/** `ContentsResponse` for a file (`GET …/contents/{path}` and the entries of `file-contents`). */
export function contentsJson(
  ctx: ShapeContext,
  repo: SimRepo,
  filePath: string,
  content: string,
  ref: string,
  commitSha: string,
): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const bytes = Buffer.from(content, 'utf8');
  const sha = gitBlobSha(bytes);
  const file = filePath.split('/').map(encodeURIComponent).join('/');
  const self = `${ctx.base}/api/v1/repos/${full}/contents/${file}?ref=${encodeURIComponent(ref)}`;
  const git = `${ctx.base}/api/v1/repos/${full}/git/blobs/${sha}`;
  const html = `${ctx.base}/${full}/src/branch/${ref}/${file}`;
  return {
    name: filePath.split('/').pop() ?? filePath,
    path: filePath,
    sha,
    last_commit_sha: commitSha,
    last_commit_message: 'Update',
    type: 'file',
    size: bytes.length,
    encoding: 'base64',
    content: bytes.toString('base64'),
    target: null,
    url: self,
    html_url: html,
    git_url: git,
    download_url: `${ctx.base}/${full}/raw/branch/${ref}/${file}`,
    submodule_git_url: null,
    _links: { self, git, html },
  };
}

/** A directory entry as `GET …/contents/{dir}` lists it. */
export function dirEntryJson(ctx: ShapeContext, repo: SimRepo, entryPath: string, isDir: boolean, ref: string): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const file = entryPath.split('/').map(encodeURIComponent).join('/');
  const self = `${ctx.base}/api/v1/repos/${full}/contents/${file}?ref=${encodeURIComponent(ref)}`;
  return {
    name: entryPath.split('/').pop() ?? entryPath,
    path: entryPath,
    sha: '',
    type: isDir ? 'dir' : 'file',
    size: 0,
    encoding: null,
    content: null,
    url: self,
  };
}

/** `api.Hook` (1.25: `url`, `content_type` and `metadata` are not serialised; `config` keys sorted like a Go map). */
export function hookJson(h: SimHook): Record<string, unknown> {
  return {
    id: h.id,
    type: h.type,
    branch_filter: h.branchFilter,
    config: { content_type: h.contentType, url: h.url },
    events: [...h.events],
    authorization_header: h.authorizationHeader,
    active: h.active,
    updated_at: h.updated,
    created_at: h.created,
  };
}

export function gitBlobSha(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}

// ------------------------------------------------------------------------------------------------
// Webhook payloads (modules/structs/hook.go). Key order follows the Go structs.

export function issuePayload(
  ctx: ShapeContext,
  repo: SimRepo,
  issue: SimIssue,
  action: string,
  sender: SimUser,
  changes?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    action,
    number: issue.number,
    ...(changes ? { changes } : {}),
    issue: issueJson(ctx, repo, issue),
    repository: repoJson(ctx, repo, { admin: false, push: false, pull: true }),
    sender: userJson(ctx, sender, false),
    commit_id: '',
  };
}

export function pullRequestPayload(
  ctx: ShapeContext,
  repo: SimRepo,
  issue: SimIssue,
  action: string,
  sender: SimUser,
  changes?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    action,
    number: issue.number,
    ...(changes ? { changes } : {}),
    pull_request: pullJson(ctx, repo, issue),
    requested_reviewer: null,
    repository: repoJson(ctx, repo, { admin: false, push: false, pull: true }),
    sender: userJson(ctx, sender, false),
    commit_id: '',
    review: null,
  };
}

export function issueCommentPayload(
  ctx: ShapeContext,
  repo: SimRepo,
  issue: SimIssue,
  comment: SimComment,
  sender: SimUser,
): Record<string, unknown> {
  return {
    action: 'created',
    issue: issueJson(ctx, repo, issue),
    comment: commentJson(ctx, repo, issue, comment),
    repository: repoJson(ctx, repo, { admin: false, push: false, pull: true }),
    sender: userJson(ctx, sender, false),
    is_pull: issue.pull !== undefined,
  };
}

/** `ChangesPayload`: title/body only when changed; the label lists are always present and null for webhooks. */
export function changes(from: { title?: string; body?: string }): Record<string, unknown> {
  return {
    ...(from.title !== undefined ? { title: { from: from.title } } : {}),
    ...(from.body !== undefined ? { body: { from: from.body } } : {}),
    added_labels: null,
    removed_labels: null,
  };
}

export interface PushCommit {
  id: string;
  message: string;
  author: SimUser;
  timestamp: string;
  added: string[];
  removed: string[];
  modified: string[];
}

export function pushPayload(
  ctx: ShapeContext,
  repo: SimRepo,
  ref: string,
  before: string,
  after: string,
  commits: PushCommit[],
  pusher: SimUser,
): Record<string, unknown> {
  const full = `${repo.owner.login}/${repo.name}`;
  const commitJson = (c: PushCommit): Record<string, unknown> => {
    const who = { name: c.author.fullName || c.author.login, email: c.author.email, username: c.author.login };
    return {
      id: c.id,
      message: c.message,
      url: `${ctx.base}/${full}/commit/${c.id}`,
      author: who,
      committer: { ...who },
      verification: null,
      timestamp: c.timestamp,
      added: c.added,
      removed: c.removed,
      modified: c.modified,
    };
  };
  // Newest first, at most [ui] FEED_MAX_COMMIT_NUM (5) listed; total_commits counts them all.
  const listed = commits.slice(0, 5).map(commitJson);
  return {
    ref,
    before,
    after,
    compare_url: `${ctx.base}/${full}/compare/${before}...${after}`,
    commits: listed,
    total_commits: commits.length,
    head_commit: listed[0] ?? null,
    repository: repoJson(ctx, repo, { admin: false, push: false, pull: true }),
    pusher: userJson(ctx, pusher, false),
    sender: userJson(ctx, pusher, false),
  };
}
