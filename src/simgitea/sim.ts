import type http from 'node:http';
import type { Logger } from '../log/logger.js';
import type { GiteaIssue, GiteaLabel } from '../gitea/types.js';
import { Deliverer, type SimDeliveryRecord, type SimWebhookTarget } from './deliveries.js';
import { registerHookRoutes } from './hooks.js';
import { addComment, registerIssueRoutes } from './issues.js';
import { clearLabels, emitLabelUpdated, registerLabelRoutes, replaceLabels, sidebarSetLabels } from './labels.js';
import { goTime, type SimRepo } from './model.js';
import { mulberry32 } from './prng.js';
import { registerPullRoutes } from './pulls.js';
import { registerContentRoutes } from './contents.js';
import { Router } from './router.js';
import { listenLocal, SimServer, type SimFaults, type SimStats } from './server.js';
import { changes, issueJson, issueLabels, issuePayload, labelJson, pullRequestPayload, pushPayload, userJson } from './shapes.js';
import { randomSha, SimState, toChangedFile, ZERO_SHA, type FileInput, type IssueInput, type LabelInput } from './state.js';
import { makeDelivery, type Delivery, type DeliveryOptions } from './webhooks.js';

export type { SimDeliveryRecord, SimFaults, SimStats, SimWebhookTarget };

export interface SimGiteaOptions {
  /** Added to every API request (before it is answered). */
  latencyMs?: number;
  /** Up to this much more, uniformly (seeded when `seed` is given). */
  jitterMs?: number;
  /** What `GET /version` answers; also gates endpoints (`file-contents` ≥ 1.24, label names ≥ 1.22). Default `1.25.4`. */
  version?: string;
  /** The bot's API token. Default `sim-bot-token`. */
  token?: string;
  /** Default `triage-bot`. */
  botLogin?: string;
  /** The bot is admin of every repository (needed for the permission endpoint). Default true. */
  botIsAdmin?: boolean;
  /** A hook that receives every event of every repository (like a system webhook). */
  webhook?: SimWebhookTarget;
  log?: Logger;
  /** Seed for latency jitter and fault injection, so runs replay exactly. */
  seed?: number;
  /**
   * Play Forgejo: deliveries carry Forgejo's headers (`X-Forgejo-*` besides Gitea's), and `version`
   * defaults to `8.0.2+gitea-1.22.0` (Forgejo's `GET /version`: its own version, then the Gitea API level).
   */
  forgejo?: boolean;
}

/**
 * A simulated Gitea 1.25.4: a real `node:http` server on 127.0.0.1 (port 0) implementing the endpoints of
 * `src/gitea/api.ts` the way Gitea does (paging, label rules, exclusive scopes, permission checks, issue
 * templates, hooks), sending signed webhook deliveries like Gitea, with configurable latency and fault
 * injection, and counting requests, connections and label writes.
 *
 * This class is the façade; the parts live beside it: `state.ts` (the data and shared rules), `router.ts`
 * and `server.ts` (HTTP), one module per resource (`issues.ts`, `labels.ts`, `pulls.ts`, `contents.ts`,
 * `hooks.ts`), `deliveries.ts` (which hooks an event goes to) and `shapes.ts` (Gitea's JSON).
 *
 * Seeding methods (`addRepo`, `addLabel`, `addIssue`, …) change state silently; the "as a person" methods
 * (`openIssue`, `comment`, `setLabelsAsUser`, `pushFiles`, …) also send the delivery Gitea would send.
 */
export class SimGitea {
  /** Base URL without `/api/v1`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly token: string;
  readonly botLogin: string;
  readonly version: string;
  /** Plays Forgejo (see `SimGiteaOptions.forgejo`). */
  readonly forgejo: boolean;
  /** Every delivery sent (or being sent), in the order they were created. */
  readonly deliveries: SimDeliveryRecord[];

  private readonly state: SimState;
  private readonly http: SimServer;
  private readonly deliverer: Deliverer;
  private closed = false;

  private constructor(server: http.Server, url: string, options: SimGiteaOptions) {
    this.url = url;
    this.token = options.token ?? 'sim-bot-token';
    this.botLogin = options.botLogin ?? 'triage-bot';
    this.forgejo = options.forgejo ?? false;
    this.version = options.version ?? (options.forgejo ? '8.0.2+gitea-1.22.0' : '1.25.4');
    const hooks = new Map();
    this.deliverer = new Deliverer(options.webhook, hooks, options.forgejo ?? false);
    this.deliveries = this.deliverer.records;
    this.state = new SimState(url, this.version, this.botLogin, this.token, options.botIsAdmin ?? true, hooks, (repo, type, payload, branch) =>
      this.deliverer.emit(repo, type, payload, branch),
    );
    const router = new Router();
    registerIssueRoutes(router, this.state);
    registerLabelRoutes(router, this.state);
    registerContentRoutes(router, this.state);
    registerPullRoutes(router, this.state);
    registerHookRoutes(router, this.state);
    const random = options.seed !== undefined ? mulberry32(options.seed) : Math.random;
    this.http = new SimServer(server, url, router, this.state, random, options.log, { latencyMs: options.latencyMs ?? 0, jitterMs: options.jitterMs ?? 0 });
  }

  /** Starts the server on 127.0.0.1, on a free port. */
  static async start(options: SimGiteaOptions = {}): Promise<SimGitea> {
    const { server, url } = await listenLocal();
    return new SimGitea(server, url, options);
  }

  /** Stops the server, drops every connection, abandons stalled requests. Deliveries in flight are awaited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.http.close();
    await this.deliverer.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Behaviour knobs

  setFaults(faults: SimFaults): void {
    this.http.faults = { ...faults };
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    this.http.latencyMs = latencyMs;
    this.http.jitterMs = jitterMs;
  }

  setBotIsAdmin(value: boolean): void {
    this.state.botIsAdmin = value;
  }

  /** Gitea's clock for what happens next (times have one-second resolution); `undefined`: the real clock. */
  setClock(ms: number | undefined): void {
    this.state.frozenAt = ms;
  }

  /** Where the every-event hook delivers (e.g. the service, once it has a port); `undefined` stops it. */
  setWebhook(target: SimWebhookTarget | undefined): void {
    this.deliverer.webhook = target;
  }

  stats(): SimStats {
    const c = this.http.counters;
    return { ...c, byRoute: { ...c.byRoute } };
  }

  resetStats(): void {
    this.http.resetStats();
  }

  /** Resolves once every delivery created so far has been answered (or has failed). */
  async awaitDeliveries(): Promise<void> {
    await this.deliverer.settle();
  }

  /** A signed delivery as Gitea would send it, without sending it (secret: the configured webhook's by default). */
  makeDelivery(event: string, type: string, payload: unknown, options: DeliveryOptions = {}): Delivery {
    return makeDelivery(event, type, payload, { secret: this.deliverer.webhook?.secret, ...(this.forgejo ? { forgejo: true } : {}), ...options });
  }

  // ---------------------------------------------------------------------------------------------
  // Seeding (silent: no deliveries)

  addOrg(name: string, options: { fullName?: string } = {}): { id: number; login: string } {
    const org = this.state.createUser(name, { fullName: options.fullName ?? name, isOrg: true });
    return { id: org.id, login: org.login };
  }

  addUser(login: string, options: { fullName?: string; email?: string; token?: string; isAdmin?: boolean } = {}): { id: number; login: string } {
    const existing = this.state.users.get(login.toLowerCase());
    if (existing) {
      if (options.token) existing.tokens.add(options.token);
      if (options.isAdmin !== undefined) existing.isAdmin = options.isAdmin;
      return { id: existing.id, login: existing.login };
    }
    const u = this.state.createUser(login, options);
    return { id: u.id, login: u.login };
  }

  addRepo(
    owner: string,
    name: string,
    options: { defaultBranch?: string; files?: Record<string, string>; description?: string; private?: boolean } = {},
  ): { id: number; full_name: string } {
    const s = this.state;
    const ownerUser = s.users.get(owner.toLowerCase()) ?? s.createUser(owner, {});
    const key = `${ownerUser.login}/${name}`.toLowerCase();
    if (s.repos.has(key)) throw new Error(`simgitea: repository ${owner}/${name} exists`);
    const branch = options.defaultBranch ?? 'main';
    const now = goTime(this.state.now());
    const repo: SimRepo = {
      id: ++s.ids.repo,
      owner: ownerUser,
      name,
      description: options.description ?? '',
      defaultBranch: branch,
      private: options.private ?? false,
      branches: new Map([[branch, new Map(Object.entries(options.files ?? {}))]]),
      heads: new Map([[branch, randomSha()]]),
      issues: new Map(),
      nextIndex: 1,
      permissions: new Map(),
      created: now,
      updated: now,
    };
    s.repos.set(key, repo);
    s.reposById.set(repo.id, repo);
    return { id: repo.id, full_name: `${ownerUser.login}/${name}` };
  }

  addLabel(owner: string, repo: string, label: LabelInput): GiteaLabel {
    const r = this.state.mustRepo(owner, repo);
    const l = this.state.createLabel({ ...label, repoId: r.id });
    return labelJson(this.state.ctx, l) as unknown as GiteaLabel;
  }

  addOrgLabel(org: string, label: LabelInput): GiteaLabel {
    const o = this.state.users.get(org.toLowerCase());
    if (!o?.isOrg) throw new Error(`simgitea: ${org} is not an organisation`);
    const l = this.state.createLabel({ ...label, orgId: o.id });
    return labelJson(this.state.ctx, l) as unknown as GiteaLabel;
  }

  /** Writes a file on the default branch (or `ref`) without a push event. */
  setFile(owner: string, repo: string, path: string, content: string, ref?: string): void {
    const r = this.state.mustRepo(owner, repo);
    this.state.branchFiles(r, ref ?? r.defaultBranch, true).set(path, content);
  }

  removeFile(owner: string, repo: string, path: string, ref?: string): void {
    const r = this.state.mustRepo(owner, repo);
    this.state.branchFiles(r, ref ?? r.defaultBranch, true).delete(path);
  }

  /** Creates an issue (or, with `pull`, a pull request) silently. Issues and PRs share one number sequence. */
  addIssue(owner: string, repo: string, issue: IssueInput): number {
    const r = this.state.mustRepo(owner, repo);
    return this.state.createIssue(r, issue).number;
  }

  /** The hook's HTTP method, as only Gitea's web UI can set it (the API neither shows nor changes it). */
  setHookHttpMethod(hookId: number, method: 'POST' | 'GET'): void {
    const hook = this.state.hooks.get(hookId);
    if (!hook) throw new Error(`simgitea: no hook ${hookId}`);
    hook.httpMethod = method;
  }

  /** The explicit permission of `user` on a repository (Gitea: collaborator access). */
  setPermission(owner: string, repo: string, user: string, level: 'none' | 'read' | 'write' | 'admin'): void {
    const r = this.state.mustRepo(owner, repo);
    this.state.ensureUser(user);
    r.permissions.set(user.toLowerCase(), level);
  }

  /** The names of the labels on an issue, sorted like Gitea (by name). */
  issueLabels(owner: string, repo: string, n: number): string[] {
    return issueLabels(this.state.ctx, this.state.mustIssue(owner, repo, n)).map((l) => l.name);
  }

  /** The issue as `GET /repos/{owner}/{repo}/issues/{n}` shows it. */
  issue(owner: string, repo: string, n: number): GiteaIssue {
    const r = this.state.mustRepo(owner, repo);
    return issueJson(this.state.ctx, r, this.state.mustIssue(owner, repo, n)) as unknown as GiteaIssue;
  }

  comments(owner: string, repo: string, n: number): { user: string; body: string }[] {
    return this.state.mustIssue(owner, repo, n).comments.map((c) => ({ user: c.user.login, body: c.body }));
  }

  // ---------------------------------------------------------------------------------------------
  // Acting as a person: state change + the delivery Gitea would send

  openIssue(owner: string, repo: string, issue: { title: string; body?: string; user: string; labels?: string[] }): number {
    const r = this.state.mustRepo(owner, repo);
    const created = this.state.createIssue(r, issue);
    this.state.emit(r, 'issues', issuePayload(this.state.ctx, r, created, 'opened', created.user));
    return created.number;
  }

  openPull(
    owner: string,
    repo: string,
    pull: { title: string; body?: string; user: string; files: FileInput[]; labels?: string[]; head?: string; draft?: boolean; headRepoGone?: boolean },
  ): number {
    const r = this.state.mustRepo(owner, repo);
    const created = this.state.createIssue(r, { ...pull, pull: { files: pull.files, head: pull.head, draft: pull.draft, headRepoGone: pull.headRepoGone } });
    this.state.emit(r, 'pull_request', pullRequestPayload(this.state.ctx, r, created, 'opened', created.user));
    return created.number;
  }

  editIssue(owner: string, repo: string, n: number, edit: { title?: string; body?: string }, user: string): void {
    const s = this.state;
    const r = s.mustRepo(owner, repo);
    const issue = s.mustIssue(owner, repo, n);
    const sender = s.ensureUser(user);
    const from: { title?: string; body?: string } = {};
    if (edit.title !== undefined && edit.title !== issue.title) {
      from.title = issue.title;
      issue.title = edit.title;
    }
    if (edit.body !== undefined && edit.body !== issue.body) {
      from.body = issue.body;
      issue.body = edit.body;
    }
    s.touch(r, issue);
    if (issue.pull) s.emit(r, 'pull_request', pullRequestPayload(s.ctx, r, issue, 'edited', sender, changes(from)));
    else s.emit(r, 'issues', issuePayload(s.ctx, r, issue, 'edited', sender, changes(from)));
  }

  closeIssue(owner: string, repo: string, n: number, user: string): void {
    const s = this.state;
    const r = s.mustRepo(owner, repo);
    const issue = s.mustIssue(owner, repo, n);
    const sender = s.ensureUser(user);
    issue.state = 'closed';
    issue.closed = goTime(this.state.now());
    s.touch(r, issue);
    if (issue.pull) s.emit(r, 'pull_request', pullRequestPayload(s.ctx, r, issue, 'closed', sender));
    else s.emit(r, 'issues', issuePayload(s.ctx, r, issue, 'closed', sender));
  }

  /** A comment by `user`; returns the comment id. */
  comment(owner: string, repo: string, n: number, user: string, body: string): number {
    const r = this.state.mustRepo(owner, repo);
    const issue = this.state.mustIssue(owner, repo, n);
    return addComment(this.state, r, issue, this.state.ensureUser(user), body).id;
  }

  /** `user` sets the issue's labels to exactly `names` (as in the web UI); one `label_updated`. */
  setLabelsAsUser(owner: string, repo: string, n: number, user: string, names: string[]): void {
    const r = this.state.mustRepo(owner, repo);
    const issue = this.state.mustIssue(owner, repo, n);
    const labels = names.map((name) => this.state.mustLabelByName(r, name));
    replaceLabels(this.state, r, issue, labels);
    emitLabelUpdated(this.state, r, issue, this.state.ensureUser(user));
  }

  /**
   * `user` sets the labels to `names` in the issue sidebar: one request and one `label_updated` per label
   * changed, ordered as this Gitea version's web UI orders them (see `sidebarSetLabels`).
   */
  setLabelsInSidebar(owner: string, repo: string, n: number, user: string, names: string[]): void {
    const r = this.state.mustRepo(owner, repo);
    const labels = names.map((name) => this.state.mustLabelByName(r, name));
    sidebarSetLabels(this.state, r, this.state.mustIssue(owner, repo, n), this.state.ensureUser(user), labels);
  }

  /** Deliveries are queued, not sent, until `releaseDeliveries` (Gitea's workers deliver out of order). */
  holdDeliveries(): void {
    this.deliverer.hold();
  }

  /**
   * Sends held deliveries one at a time, each answered before the next: all (`created` or `reverse`
   * order; holding ends) or those at the given indexes of the held list (the others stay held).
   */
  releaseDeliveries(order: 'created' | 'reverse' | number[] = 'created'): Promise<void> {
    return this.deliverer.release(order);
  }

  /** `user` clears every label (the issue list's "clear labels"); one `label_cleared` listing the old labels. */
  clearLabelsAsUser(owner: string, repo: string, n: number, user: string): void {
    const r = this.state.mustRepo(owner, repo);
    clearLabels(this.state, r, this.state.mustIssue(owner, repo, n), this.state.ensureUser(user));
  }

  /**
   * `user` submits a review: services/webhook/notifier.go PullRequestReview sends a pull request payload
   * with action `reviewed`, `requested_reviewer` and `sender` the reviewer, and `review: {type, content}`,
   * as type `pull_request_review_approved` / `_rejected` / `_comment` (X-Gitea-Event `pull_request_approved`,
   * `pull_request_rejected`, `pull_request_comment`; modules/webhook/type.go Event(), v1.21.11 and v1.25.4).
   */
  review(owner: string, repo: string, n: number, user: string, review: { kind: 'approve' | 'reject' | 'comment'; body?: string }): void {
    const s = this.state;
    const r = s.mustRepo(owner, repo);
    const issue = s.mustIssue(owner, repo, n);
    if (!issue.pull) throw new Error(`simgitea: ${owner}/${repo}#${n} is not a pull request`);
    const reviewer = s.ensureUser(user);
    const type = { approve: 'pull_request_review_approved', reject: 'pull_request_review_rejected', comment: 'pull_request_review_comment' }[review.kind];
    s.touch(r, issue);
    const payload = pullRequestPayload(s.ctx, r, issue, 'reviewed', reviewer);
    s.emit(r, type, { ...payload, requested_reviewer: userJson(s.ctx, reviewer, false), review: { type, content: review.body ?? '' } });
  }

  /** New commits on a pull request's head: its files change; `pull_request_sync`. */
  syncPull(owner: string, repo: string, n: number, user: string, files: FileInput[]): void {
    const s = this.state;
    const r = s.mustRepo(owner, repo);
    const issue = s.mustIssue(owner, repo, n);
    if (!issue.pull) throw new Error(`simgitea: ${owner}/${repo}#${n} is not a pull request`);
    issue.pull.files = files.map(toChangedFile);
    issue.pull.headSha = randomSha();
    s.touch(r, issue);
    s.emit(r, 'pull_request_sync', pullRequestPayload(s.ctx, r, issue, 'synchronized', s.ensureUser(user)));
  }

  /** One commit by `user` on `ref` (default branch by default); `null` deletes a file. Returns the new head sha. */
  pushFiles(
    owner: string,
    repo: string,
    user: string,
    files: Record<string, string | null>,
    ref?: string,
    options: { message?: string } = {},
  ): string {
    const s = this.state;
    const r = s.mustRepo(owner, repo);
    const pusher = s.ensureUser(user);
    const branch = (ref ?? r.defaultBranch).replace(/^refs\/heads\//, '');
    const tree = s.branchFiles(r, branch, true);
    const added: string[] = [];
    const modified: string[] = [];
    const removed: string[] = [];
    for (const [path, content] of Object.entries(files)) {
      if (content === null) {
        if (tree.delete(path)) removed.push(path);
      } else {
        (tree.has(path) ? modified : added).push(path);
        tree.set(path, content);
      }
    }
    const before = r.heads.get(branch) ?? ZERO_SHA;
    const after = randomSha();
    r.heads.set(branch, after);
    const now = this.state.now();
    r.updated = goTime(now);
    const commit = { id: after, message: `${options.message ?? 'Update files'}\n`, author: pusher, timestamp: goTime(now), added, removed, modified };
    s.emit(r, 'push', pushPayload(s.ctx, r, `refs/heads/${branch}`, before, after, [commit], pusher), branch);
    return after;
  }
}
