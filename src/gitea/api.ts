import type {
  GiteaChangedFile,
  GiteaContents,
  GiteaHook,
  GiteaIssue,
  GiteaIssueTemplate,
  GiteaLabel,
  GiteaPermission,
  GiteaRepo,
  GiteaUser,
} from './types.js';

/**
 * Every Gitea endpoint the service and its tools call: implemented once by `GiteaClient`
 * (`client.ts`), the only code that speaks HTTP to Gitea. Paths are relative to `${GITEA_URL}/api/v1`.
 * Transient failures (network, 5xx, 429) are retried inside; what reaches the caller is a `GiteaError`.
 */
export interface GiteaApi {
  /** `GET /version` → e.g. `1.25.4` (Forgejo answers e.g. `11.0.1+gitea-1.22.0`). */
  getVersion(): Promise<string>;
  /** `GET /user`: the bot's own account. */
  getCurrentUser(): Promise<GiteaUser>;
  /** `GET /repos/{owner}/{repo}` (for `default_branch`). */
  getRepo(owner: string, repo: string): Promise<GiteaRepo>;
  /**
   * `GET /orgs/{org}/repos`, every page (Gitea orders them by id; `X-Total-Count`): the repositories of an
   * organisation the bot can see (the backfill's `--org`). A 404 (no such organisation) is a `GiteaError`.
   */
  listOrgRepos(org: string): Promise<GiteaRepo[]>;
  /** `GET /repos/{owner}/{repo}/issues/{index}` (issues and pull requests). */
  getIssue(owner: string, repo: string, index: number): Promise<GiteaIssue>;
  /** `GET /repos/{owner}/{repo}/issues?state=open&type=…&since=…`, every page. */
  listIssues(
    owner: string,
    repo: string,
    options?: { state?: 'open' | 'closed' | 'all'; type?: 'issues' | 'pulls'; since?: string },
  ): Promise<GiteaIssue[]>;
  /** `GET /repos/{owner}/{repo}/issues/{index}/labels`: the labels on it now. */
  getIssueLabels(owner: string, repo: string, index: number): Promise<GiteaLabel[]>;
  /** `POST /repos/{owner}/{repo}/issues/{index}/labels` `{labels: ids}` → the issue's labels after the write. */
  addIssueLabels(owner: string, repo: string, index: number, labelIds: number[]): Promise<GiteaLabel[]>;
  /** `DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}`. */
  removeIssueLabel(owner: string, repo: string, index: number, labelId: number): Promise<void>;
  /** `GET /repos/{owner}/{repo}/labels`, every page (`page`, `limit` ≤ 50, `X-Total-Count`). */
  listRepoLabels(owner: string, repo: string): Promise<GiteaLabel[]>;
  /** `GET /orgs/{org}/labels`, every page; `null` when `org` is not an organisation (404). */
  listOrgLabels(org: string): Promise<GiteaLabel[] | null>;
  /** `POST /repos/{owner}/{repo}/labels`. */
  createRepoLabel(
    owner: string,
    repo: string,
    label: { name: string; color: string; description?: string; exclusive?: boolean },
  ): Promise<GiteaLabel>;
  /**
   * Several files of the default branch (or `ref`): one `GET …/file-contents?body=…` on Gitea ≥ 1.24
   * (≤ 30 paths per request), else one `GET …/contents/{path}` per file. `null` for a missing file.
   * Returned content is decoded UTF-8 text.
   */
  getFiles(owner: string, repo: string, paths: string[], ref?: string): Promise<({ path: string; content: string } | null)[]>;
  /** `GET /repos/{owner}/{repo}/issue_templates`: Gitea's own parse of every issue template (markdown and forms). */
  listIssueTemplates(owner: string, repo: string): Promise<GiteaIssueTemplate[]>;
  /**
   * `GET /repos/{owner}/{repo}/pulls/{index}/files`, every page (a 3,000-file PR is normal). On Gitea before
   * 1.22.3 a rename lacks `previous_filename`: it is filled in from `GET …/pulls/{index}.diff`.
   */
  listPullFiles(owner: string, repo: string, index: number): Promise<GiteaChangedFile[]>;
  /**
   * `GET /repos/{owner}/{repo}/collaborators/{user}/permission`. Gitea answers it only to a repo admin:
   * a 403 becomes `GiteaError` with `status` 403 (the caller refuses the command and says why).
   */
  getPermission(owner: string, repo: string, user: string): Promise<GiteaPermission>;
  /** `POST /repos/{owner}/{repo}/issues/{index}/comments`. */
  createComment(owner: string, repo: string, index: number, body: string): Promise<void>;
  /** Hooks of a repo (`{repo: 'owner/name'}`) or an org (`{org}`): list, create, edit (PATCH), delete. */
  listHooks(target: HookTarget): Promise<GiteaHook[]>;
  createHook(target: HookTarget, hook: HookOptions): Promise<GiteaHook>;
  editHook(target: HookTarget, id: number, hook: Partial<HookOptions>): Promise<GiteaHook>;
  deleteHook(target: HookTarget, id: number): Promise<void>;
}

export type HookTarget = { repo: string } | { org: string };

export interface HookOptions {
  type: 'gitea';
  active: boolean;
  events: string[];
  branch_filter?: string;
  authorization_header?: string;
  config: { url: string; content_type: 'json' | 'form'; secret?: string; http_method?: string };
}
