import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import picomatch from 'picomatch';
import type { Logger } from '../log/logger.js';
import type { GiteaIssue, GiteaLabel } from '../gitea/types.js';
import { parseGiteaVersion } from '../gitea/version.js';
import {
  byName,
  exclusiveScope,
  goTime,
  type Level,
  type SimChangedFile,
  type SimComment,
  type SimHook,
  type SimIssue,
  type SimLabel,
  type SimRepo,
  type SimUser,
} from './model.js';
import { mulberry32 } from './prng.js';
import {
  changedFileJson,
  changes,
  commentJson,
  contentsJson,
  dirEntryJson,
  hookJson,
  issueCommentPayload,
  issueJson,
  issueLabels,
  issuePayload,
  labelJson,
  pullRequestPayload,
  pushPayload,
  repoJson,
  userJson,
  type ShapeContext,
} from './shapes.js';
import { parseIssueTemplates } from './templates.js';
import { eventFamily, expandHookEvents, makeDelivery, sendDelivery, type Delivery, type DeliveryOptions } from './webhooks.js';

export interface SimWebhookTarget {
  url: string;
  secret: string;
  contentType?: 'json' | 'form';
}

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
}

/** Fault injection, per API request. Rates are probabilities in [0, 1]. */
export interface SimFaults {
  /** Answer with one of `statuses` instead of handling the request. */
  errorRate?: number;
  /** Default [500, 502, 503]. */
  statuses?: number[];
  /** Answer 429 (as a proxy in front of Gitea would; Gitea itself sends none). */
  rate429?: number;
  /** `Retry-After` sent with 429s (and injected 503s) when set. */
  retryAfterSeconds?: number;
  /** Hold the request for `stallMs` before handling it (to exercise client timeouts). */
  stallRate?: number;
  /** Default 30000. */
  stallMs?: number;
  /** Destroy the connection without answering. */
  resetRate?: number;
  /** Gitea is down: connections are closed as soon as they are accepted. */
  down?: boolean;
}

export interface SimDeliveryRecord {
  id: string;
  event: string;
  type: string;
  action?: string;
  url: string;
  /** Who caused it (`sender.login`). */
  sender?: string;
  status?: number;
  error?: string;
}

export interface SimStats {
  requests: number;
  connections: number;
  byRoute: Record<string, number>;
  labelWrites: number;
}

type LabelInput = { name: string; color?: string; exclusive?: boolean; description?: string };
type FileInput = { filename: string; additions: number; deletions: number; status?: string; previous_filename?: string };

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

interface RequestContext {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  doer: SimUser;
}

type Handler = (c: RequestContext) => Reply;

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  /** Handled without a token (Gitea serves `/version` anonymously). */
  anonymous?: boolean;
  /** Only from this Gitea version on. */
  since?: [number, number];
  handler: Handler;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const HOOK_TYPES = new Set(['dingtalk', 'discord', 'gitea', 'gogs', 'msteams', 'slack', 'telegram', 'feishu', 'matrix', 'wechatwork', 'packagist']);
const ZERO_SHA = '0'.repeat(40);

/**
 * A simulated Gitea 1.25.4: a real `node:http` server on 127.0.0.1 (port 0) implementing the endpoints of
 * `src/gitea/api.ts` the way Gitea does (paging, label rules, exclusive scopes, permission checks, issue
 * templates, hooks), sending signed webhook deliveries like Gitea, with configurable latency and fault
 * injection, and counting requests, connections and label writes.
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
  /** Every delivery sent (or being sent), in the order they were created. */
  readonly deliveries: SimDeliveryRecord[] = [];

  private readonly server: http.Server;
  private readonly log: Logger | undefined;
  private readonly random: () => number;
  private readonly versionParts: [number, number];
  private latencyMs: number;
  private jitterMs: number;
  private botIsAdmin: boolean;
  private webhook: SimWebhookTarget | undefined;
  private faults: SimFaults = {};
  private counters: SimStats = { requests: 0, connections: 0, byRoute: {}, labelWrites: 0 };
  private readonly routes: Route[] = [];
  private readonly timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly pending = new Set<Promise<void>>();
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  private closed = false;

  private readonly users = new Map<string, SimUser>();
  private readonly usersById = new Map<number, SimUser>();
  private readonly repos = new Map<string, SimRepo>();
  private readonly reposById = new Map<number, SimRepo>();
  private readonly labels = new Map<number, SimLabel>();
  private readonly hooks = new Map<number, SimHook>();
  private readonly ids = { user: 0, repo: 0, label: 0, issue: 0, pull: 0, comment: 0, hook: 0 };
  private readonly ctx: ShapeContext;
  private readonly bot: SimUser;

  private constructor(server: http.Server, url: string, options: SimGiteaOptions) {
    this.server = server;
    this.url = url;
    this.log = options.log;
    this.token = options.token ?? 'sim-bot-token';
    this.botLogin = options.botLogin ?? 'triage-bot';
    this.version = options.version ?? '1.25.4';
    const parsed = parseGiteaVersion(this.version);
    this.versionParts = parsed ? [parsed.major, parsed.minor] : [1, 25];
    this.latencyMs = options.latencyMs ?? 0;
    this.jitterMs = options.jitterMs ?? 0;
    this.botIsAdmin = options.botIsAdmin ?? true;
    this.webhook = options.webhook;
    this.random = options.seed !== undefined ? mulberry32(options.seed) : Math.random;
    this.ctx = {
      base: url,
      domain: new URL(url).hostname,
      userById: (id) => this.usersById.get(id),
      labelById: (id) => this.labels.get(id),
      repoById: (id) => this.reposById.get(id),
    };
    this.bot = this.createUser(this.botLogin, { fullName: 'Triage Bot', token: this.token });
    this.defineRoutes();
  }

  /** Starts the server on 127.0.0.1, on a free port. */
  static async start(options: SimGiteaOptions = {}): Promise<SimGitea> {
    const server = http.createServer();
    // Go's server keeps idle connections open; Node's default (5 s) would race with pooled clients.
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const sim = new SimGitea(server, `http://127.0.0.1:${port}`, options);
    server.on('connection', (socket: Socket) => sim.onConnection(socket));
    server.on('request', (req, res) => {
      void sim.onRequest(req, res);
    });
    return sim;
  }

  /** Stops the server, drops every connection, abandons stalled requests. Deliveries in flight are awaited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t.timer);
      t.resolve();
    }
    this.timers.clear();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await this.awaitDeliveries();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  // ---------------------------------------------------------------------------------------------
  // Behaviour knobs

  setFaults(faults: SimFaults): void {
    this.faults = { ...faults };
  }

  setLatency(latencyMs: number, jitterMs = 0): void {
    this.latencyMs = latencyMs;
    this.jitterMs = jitterMs;
  }

  setBotIsAdmin(value: boolean): void {
    this.botIsAdmin = value;
  }

  /** Where the every-event hook delivers (e.g. the service, once it has a port); `undefined` stops it. */
  setWebhook(target: SimWebhookTarget | undefined): void {
    this.webhook = target;
  }

  stats(): SimStats {
    return { ...this.counters, byRoute: { ...this.counters.byRoute } };
  }

  resetStats(): void {
    this.counters = { requests: 0, connections: 0, byRoute: {}, labelWrites: 0 };
  }

  /** Resolves once every delivery created so far has been answered (or has failed). */
  async awaitDeliveries(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** A signed delivery as Gitea would send it, without sending it (secret: the configured webhook's by default). */
  makeDelivery(event: string, type: string, payload: unknown, options: DeliveryOptions = {}): Delivery {
    return makeDelivery(event, type, payload, { secret: this.webhook?.secret, ...options });
  }

  // ---------------------------------------------------------------------------------------------
  // Seeding (silent: no deliveries)

  addOrg(name: string, options: { fullName?: string } = {}): { id: number; login: string } {
    const org = this.createUser(name, { fullName: options.fullName ?? name, isOrg: true });
    return { id: org.id, login: org.login };
  }

  addUser(login: string, options: { fullName?: string; email?: string; token?: string; isAdmin?: boolean } = {}): { id: number; login: string } {
    const existing = this.users.get(login.toLowerCase());
    if (existing) {
      if (options.token) existing.tokens.add(options.token);
      if (options.isAdmin !== undefined) existing.isAdmin = options.isAdmin;
      return { id: existing.id, login: existing.login };
    }
    const u = this.createUser(login, options);
    return { id: u.id, login: u.login };
  }

  addRepo(
    owner: string,
    name: string,
    options: { defaultBranch?: string; files?: Record<string, string>; description?: string } = {},
  ): { id: number; full_name: string } {
    const ownerUser = this.users.get(owner.toLowerCase()) ?? this.createUser(owner, {});
    const key = `${ownerUser.login}/${name}`.toLowerCase();
    if (this.repos.has(key)) throw new Error(`simgitea: repository ${owner}/${name} exists`);
    const branch = options.defaultBranch ?? 'main';
    const now = goTime(Date.now());
    const repo: SimRepo = {
      id: ++this.ids.repo,
      owner: ownerUser,
      name,
      description: options.description ?? '',
      defaultBranch: branch,
      branches: new Map([[branch, new Map(Object.entries(options.files ?? {}))]]),
      heads: new Map([[branch, randomSha()]]),
      issues: new Map(),
      nextIndex: 1,
      permissions: new Map(),
      created: now,
      updated: now,
    };
    this.repos.set(key, repo);
    this.reposById.set(repo.id, repo);
    return { id: repo.id, full_name: `${ownerUser.login}/${name}` };
  }

  addLabel(owner: string, repo: string, label: LabelInput): GiteaLabel {
    const r = this.mustRepo(owner, repo);
    const l = this.createLabel({ ...label, repoId: r.id });
    return labelJson(this.ctx, l) as unknown as GiteaLabel;
  }

  addOrgLabel(org: string, label: LabelInput): GiteaLabel {
    const o = this.users.get(org.toLowerCase());
    if (!o?.isOrg) throw new Error(`simgitea: ${org} is not an organisation`);
    const l = this.createLabel({ ...label, orgId: o.id });
    return labelJson(this.ctx, l) as unknown as GiteaLabel;
  }

  /** Writes a file on the default branch (or `ref`) without a push event. */
  setFile(owner: string, repo: string, path: string, content: string, ref?: string): void {
    const r = this.mustRepo(owner, repo);
    this.branchFiles(r, ref ?? r.defaultBranch, true).set(path, content);
  }

  removeFile(owner: string, repo: string, path: string, ref?: string): void {
    const r = this.mustRepo(owner, repo);
    this.branchFiles(r, ref ?? r.defaultBranch, true).delete(path);
  }

  /** Creates an issue (or, with `pull`, a pull request) silently. Issues and PRs share one number sequence. */
  addIssue(
    owner: string,
    repo: string,
    issue: {
      title: string;
      body?: string;
      user: string;
      labels?: string[];
      state?: 'open' | 'closed';
      pull?: { files: FileInput[]; head?: string; draft?: boolean };
    },
  ): number {
    const r = this.mustRepo(owner, repo);
    return this.createIssue(r, issue).number;
  }

  /** The explicit permission of `user` on a repository (Gitea: collaborator access). */
  setPermission(owner: string, repo: string, user: string, level: 'read' | 'write' | 'admin'): void {
    const r = this.mustRepo(owner, repo);
    this.ensureUser(user);
    r.permissions.set(user.toLowerCase(), level);
  }

  /** The names of the labels on an issue, sorted like Gitea (by name). */
  issueLabels(owner: string, repo: string, n: number): string[] {
    return issueLabels(this.ctx, this.mustIssue(owner, repo, n)).map((l) => l.name);
  }

  /** The issue as `GET /repos/{owner}/{repo}/issues/{n}` shows it. */
  issue(owner: string, repo: string, n: number): GiteaIssue {
    const r = this.mustRepo(owner, repo);
    return issueJson(this.ctx, r, this.mustIssue(owner, repo, n)) as unknown as GiteaIssue;
  }

  comments(owner: string, repo: string, n: number): { user: string; body: string }[] {
    return this.mustIssue(owner, repo, n).comments.map((c) => ({ user: c.user.login, body: c.body }));
  }

  // ---------------------------------------------------------------------------------------------
  // Acting as a person: state change + the delivery Gitea would send

  openIssue(owner: string, repo: string, issue: { title: string; body?: string; user: string; labels?: string[] }): number {
    const r = this.mustRepo(owner, repo);
    const created = this.createIssue(r, issue);
    this.emit(r, 'issues', issuePayload(this.ctx, r, created, 'opened', created.user));
    return created.number;
  }

  openPull(
    owner: string,
    repo: string,
    pull: { title: string; body?: string; user: string; files: FileInput[]; labels?: string[]; head?: string; draft?: boolean },
  ): number {
    const r = this.mustRepo(owner, repo);
    const created = this.createIssue(r, { ...pull, pull: { files: pull.files, head: pull.head, draft: pull.draft } });
    this.emit(r, 'pull_request', pullRequestPayload(this.ctx, r, created, 'opened', created.user));
    return created.number;
  }

  editIssue(owner: string, repo: string, n: number, edit: { title?: string; body?: string }, user: string): void {
    const r = this.mustRepo(owner, repo);
    const issue = this.mustIssue(owner, repo, n);
    const sender = this.ensureUser(user);
    const from: { title?: string; body?: string } = {};
    if (edit.title !== undefined && edit.title !== issue.title) {
      from.title = issue.title;
      issue.title = edit.title;
    }
    if (edit.body !== undefined && edit.body !== issue.body) {
      from.body = issue.body;
      issue.body = edit.body;
    }
    this.touch(r, issue);
    if (issue.pull) this.emit(r, 'pull_request', pullRequestPayload(this.ctx, r, issue, 'edited', sender, changes(from)));
    else this.emit(r, 'issues', issuePayload(this.ctx, r, issue, 'edited', sender, changes(from)));
  }

  closeIssue(owner: string, repo: string, n: number, user: string): void {
    const r = this.mustRepo(owner, repo);
    const issue = this.mustIssue(owner, repo, n);
    const sender = this.ensureUser(user);
    issue.state = 'closed';
    issue.closed = goTime(Date.now());
    this.touch(r, issue);
    if (issue.pull) this.emit(r, 'pull_request', pullRequestPayload(this.ctx, r, issue, 'closed', sender));
    else this.emit(r, 'issues', issuePayload(this.ctx, r, issue, 'closed', sender));
  }

  /** A comment by `user`; returns the comment id. */
  comment(owner: string, repo: string, n: number, user: string, body: string): number {
    const r = this.mustRepo(owner, repo);
    const issue = this.mustIssue(owner, repo, n);
    return this.addComment(r, issue, this.ensureUser(user), body).id;
  }

  /** `user` sets the issue's labels to exactly `names` (as in the web UI); one `label_updated`. */
  setLabelsAsUser(owner: string, repo: string, n: number, user: string, names: string[]): void {
    const r = this.mustRepo(owner, repo);
    const issue = this.mustIssue(owner, repo, n);
    const labels = names.map((name) => this.mustLabelByName(r, name));
    this.replaceLabels(r, issue, labels);
    this.emitLabelUpdated(r, issue, this.ensureUser(user));
  }

  /** New commits on a pull request's head: its files change; `pull_request_sync`. */
  syncPull(owner: string, repo: string, n: number, user: string, files: FileInput[]): void {
    const r = this.mustRepo(owner, repo);
    const issue = this.mustIssue(owner, repo, n);
    if (!issue.pull) throw new Error(`simgitea: ${owner}/${repo}#${n} is not a pull request`);
    issue.pull.files = files.map(toChangedFile);
    issue.pull.headSha = randomSha();
    this.touch(r, issue);
    this.emit(r, 'pull_request_sync', pullRequestPayload(this.ctx, r, issue, 'synchronized', this.ensureUser(user)));
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
    const r = this.mustRepo(owner, repo);
    const pusher = this.ensureUser(user);
    const branch = (ref ?? r.defaultBranch).replace(/^refs\/heads\//, '');
    const tree = this.branchFiles(r, branch, true);
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
    const now = Date.now();
    r.updated = goTime(now);
    const commit = {
      id: after,
      message: `${options.message ?? 'Update files'}\n`,
      author: pusher,
      timestamp: goTime(now),
      added,
      removed,
      modified,
    };
    this.emit(r, 'push', pushPayload(this.ctx, r, `refs/heads/${branch}`, before, after, [commit], pusher), branch);
    return after;
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  private onConnection(socket: Socket): void {
    this.counters.connections++;
    if (this.faults.down) socket.destroy();
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    this.counters.requests++;
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', this.url);
    } catch {
      url = new URL('/', this.url);
    }
    const match = this.match(method, url.pathname);
    const key = match ? `${method} ${match.route.pattern}` : `${method} <unmatched>`;
    this.counters.byRoute[key] = (this.counters.byRoute[key] ?? 0) + 1;

    if (this.faults.down) {
      req.socket.destroy();
      return;
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, 10 * 1024 * 1024);
    } catch {
      req.socket.destroy();
      return;
    }
    const wait = this.latencyMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0);
    if (wait > 0) await this.delay(wait);

    const f = this.faults;
    if (f.resetRate && this.random() < f.resetRate) {
      req.socket.destroy();
      return;
    }
    if (f.stallRate && this.random() < f.stallRate) await this.delay(f.stallMs ?? 30000);
    if (this.closed || res.destroyed) return;

    let reply: Reply;
    if (f.rate429 && this.random() < f.rate429) {
      reply = { status: 429, body: { message: 'rate limited (simulated proxy)' }, headers: retryAfter(f) };
    } else if (f.errorRate && this.random() < f.errorRate) {
      const statuses = f.statuses && f.statuses.length > 0 ? f.statuses : [500, 502, 503];
      const status = statuses[Math.floor(this.random() * statuses.length)] ?? 500;
      reply = { status, body: { message: 'simulated failure' }, headers: status === 503 ? retryAfter(f) : {} };
    } else {
      reply = this.dispatch(method, url, match, raw, req.headers.authorization);
    }
    if (reply.status >= 200 && reply.status < 300 && match && /^\/repos\/\{owner\}\/\{repo\}\/issues\/\{index\}\/labels/.test(match.route.pattern) && method !== 'GET') {
      this.counters.labelWrites++;
    }
    this.write(res, reply);
    this.log?.debug('simgitea request', { method, path: url.pathname, status: reply.status, durationMs: Math.round(performance.now() - started) });
  }

  private dispatch(method: string, url: URL, match: { route: Route; params: Record<string, string> } | null, raw: Buffer, authorization: string | undefined): Reply {
    try {
      const doer = this.authenticate(authorization);
      if (!match || (match.route.since && !this.atLeast(match.route.since))) {
        if (doer === 'invalid') return this.error(401, 'invalid token');
        return { status: 404, body: { errors: null, message: 'not found', url: `${this.url}/api/swagger` } };
      }
      if (doer === 'invalid' || (doer === null && !match.route.anonymous)) return this.error(401, 'token is required');
      let body: unknown;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return this.error(422, 'invalid JSON body');
        }
      }
      return match.route.handler({ params: match.params, query: url.searchParams, body, doer: doer ?? this.bot });
    } catch (err) {
      if (err instanceof HttpError) return this.error(err.status, err.message);
      this.log?.error('simgitea handler failed', { error: err instanceof Error ? err.message : String(err) });
      return this.error(500, 'internal error');
    }
  }

  private write(res: http.ServerResponse, reply: Reply): void {
    if (res.destroyed || res.writableEnded) return;
    res.statusCode = reply.status;
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    if (reply.body === undefined || reply.status === 204) {
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'application/json;charset=utf-8');
    res.end(JSON.stringify(reply.body));
  }

  private error(status: number, message: string): Reply {
    return { status, body: { message, url: `${this.url}/api/swagger` } };
  }

  /** `null`: no credentials; `'invalid'`: credentials that match no token. */
  private authenticate(header: string | undefined): SimUser | null | 'invalid' {
    if (!header) return null;
    const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
    if (!m) return 'invalid';
    for (const u of this.users.values()) if (u.tokens.has(m[1] as string)) return u;
    return 'invalid';
  }

  private match(method: string, pathname: string): { route: Route; params: Record<string, string> } | null {
    if (!pathname.startsWith('/api/v1/')) return null;
    let parts: string[];
    try {
      parts = pathname
        .slice('/api/v1/'.length)
        .split('/')
        .map((s) => decodeURIComponent(s));
    } catch {
      return null;
    }
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < route.segments.length; i++) {
        const seg = route.segments[i] as string;
        if (seg.endsWith('*}')) {
          // Greedy tail (a file path): every remaining segment, none empty.
          const rest = parts.slice(i);
          if (rest.length === 0 || rest.some((p) => p === '')) {
            ok = false;
            break;
          }
          params[seg.slice(1, -2)] = rest.join('/');
          return { route, params };
        }
        const part = parts[i];
        if (part === undefined) {
          ok = false;
          break;
        }
        if (seg.startsWith('{')) params[seg.slice(1, -1)] = part;
        else if (seg !== part) {
          ok = false;
          break;
        }
      }
      if (ok && parts.length === route.segments.length) return { route, params };
    }
    return null;
  }

  private route(method: string, pattern: string, handler: Handler, extra: { anonymous?: boolean; since?: [number, number] } = {}): void {
    this.routes.push({ method, pattern, segments: pattern.slice(1).split('/'), handler, ...extra });
  }

  private defineRoutes(): void {
    this.route('GET', '/version', () => ({ status: 200, body: { version: this.version } }), { anonymous: true });
    this.route('GET', '/user', (c) => ({ status: 200, body: userJson(this.ctx, c.doer, true) }));

    this.route('GET', '/repos/{owner}/{repo}', (c) => {
      const repo = this.repoOf(c);
      const level = this.levelOf(repo, c.doer);
      const perms = { admin: isAdmin(level), push: canWrite(level), pull: level !== 'none' };
      return { status: 200, body: repoJson(this.ctx, repo, perms) };
    });

    // routers/api/v1/org/org.go ListOrgRepos → listUserRepos: paged, ordered by id, X-Total-Count.
    this.route('GET', '/orgs/{org}/repos', (c) => {
      const org = this.orgOf(c);
      const list = [...this.repos.values()].filter((r) => r.owner.id === org.id).sort((a, b) => a.id - b.id);
      const json = list.map((repo) => {
        const level = this.levelOf(repo, c.doer);
        return repoJson(this.ctx, repo, { admin: isAdmin(level), push: canWrite(level), pull: level !== 'none' });
      });
      return this.paged(json, c.query, false);
    });
    this.route('GET', '/repos/{owner}/{repo}/issues', (c) => this.listIssues(c));
    this.route('GET', '/repos/{owner}/{repo}/issues/{index}', (c) => {
      const { repo, issue } = this.issueOf(c);
      return { status: 200, body: issueJson(this.ctx, repo, issue) };
    });
    this.route('GET', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => {
      const { issue } = this.issueOf(c);
      return { status: 200, body: issueLabels(this.ctx, issue).map((l) => labelJson(this.ctx, l)) };
    });
    this.route('POST', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => this.writeIssueLabels(c, 'add'));
    this.route('PUT', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => this.writeIssueLabels(c, 'replace'));
    this.route('DELETE', '/repos/{owner}/{repo}/issues/{index}/labels/{id}', (c) => this.deleteIssueLabel(c));
    this.route('GET', '/repos/{owner}/{repo}/issues/{index}/comments', (c) => {
      const { repo, issue } = this.issueOf(c);
      return { status: 200, body: issue.comments.map((cm) => commentJson(this.ctx, repo, issue, cm)) };
    });
    this.route('POST', '/repos/{owner}/{repo}/issues/{index}/comments', (c) => {
      const { repo, issue } = this.issueOf(c);
      const text = (c.body as { body?: unknown } | undefined)?.body;
      if (typeof text !== 'string' || text === '') throw new HttpError(422, '[Body]: Required');
      const cm = this.addComment(repo, issue, c.doer, text);
      return { status: 201, body: commentJson(this.ctx, repo, issue, cm) };
    });

    this.route('GET', '/repos/{owner}/{repo}/labels', (c) => {
      const repo = this.repoOf(c);
      const all = [...this.labels.values()].filter((l) => l.repoId === repo.id).sort(byName);
      return this.paged(all.map((l) => labelJson(this.ctx, l)), c.query, true);
    });
    this.route('POST', '/repos/{owner}/{repo}/labels', (c) => {
      const repo = this.repoOf(c);
      if (!canWrite(this.levelOf(repo, c.doer))) throw new HttpError(403, 'write permission is required');
      const l = this.createLabel({ ...labelOption(c.body), repoId: repo.id });
      return { status: 201, body: labelJson(this.ctx, l) };
    });
    this.route('GET', '/orgs/{org}/labels', (c) => {
      const org = this.orgOf(c);
      const all = [...this.labels.values()].filter((l) => l.orgId === org.id).sort(byName);
      return this.paged(all.map((l) => labelJson(this.ctx, l)), c.query, true);
    });
    this.route('POST', '/orgs/{org}/labels', (c) => {
      const org = this.orgOf(c);
      if (!this.ownsOrg(c.doer)) throw new HttpError(403, 'Must be an organization owner');
      const l = this.createLabel({ ...labelOption(c.body), orgId: org.id });
      return { status: 201, body: labelJson(this.ctx, l) };
    });

    this.route('GET', '/repos/{owner}/{repo}/file-contents', (c) => this.fileContents(c), { since: [1, 24] });
    this.route('GET', '/repos/{owner}/{repo}/contents', (c) => this.contents(c, ''));
    this.route('GET', '/repos/{owner}/{repo}/contents/{filepath*}', (c) => this.contents(c, c.params.filepath ?? ''));
    this.route('GET', '/repos/{owner}/{repo}/issue_templates', (c) => {
      const repo = this.repoOf(c);
      const { templates, errors } = parseIssueTemplates(this.branchFiles(repo, repo.defaultBranch, false) ?? new Map());
      const count = Object.keys(errors).length;
      const headers: Record<string, string> = count > 0 ? { 'X-Gitea-Warning': `error occurs when parsing issue template: count=${count}` } : {};
      // A nil Go slice: `null` when there are no valid templates.
      return { status: 200, body: templates.length > 0 ? templates : null, headers };
    });
    this.route('GET', '/repos/{owner}/{repo}/pulls/{index}/files', (c) => {
      const { repo, issue } = this.issueOf(c);
      if (!issue.pull) throw new HttpError(404, 'pull request does not exist');
      const files = issue.pull.files.map((f) => changedFileJson(this.ctx, repo, issue, f));
      const { page, limit } = listOptions(c.query);
      const p = Math.max(page, 1);
      const pages = Math.ceil(files.length / limit);
      return {
        status: 200,
        body: files.slice((p - 1) * limit, p * limit),
        headers: {
          'X-Total-Count': String(files.length),
          'X-Page': String(p),
          'X-PerPage': String(limit),
          'X-PageCount': String(pages),
          'X-HasMore': String(p < pages),
        },
      };
    });
    this.route('GET', '/repos/{owner}/{repo}/collaborators/{collaborator}/permission', (c) => {
      const repo = this.repoOf(c);
      const name = c.params.collaborator ?? '';
      // routers/api/v1/repo/collaborators.go: site admins, repo admins, and users asking about themselves.
      if (!c.doer.isAdmin && c.doer.login.toLowerCase() !== name.toLowerCase() && !isAdmin(this.levelOf(repo, c.doer))) {
        throw new HttpError(403, 'Only admins can query all permissions, repo admins can query all repo permissions, collaborators can query only their own');
      }
      const user = this.users.get(name.toLowerCase());
      if (!user || user.isOrg) throw new HttpError(404, `user redirect does not exist [name: ${name}]`);
      const level = this.levelOf(repo, user);
      return { status: 200, body: { permission: level, role_name: level, user: userJson(this.ctx, user, false) } };
    });

    for (const kind of ['repo', 'org'] as const) {
      const base = kind === 'repo' ? '/repos/{owner}/{repo}/hooks' : '/orgs/{org}/hooks';
      this.route('GET', base, (c) => {
        const owner = this.hookOwner(c, kind);
        const list = [...this.hooks.values()].filter((h) => (kind === 'repo' ? h.repoId === owner.id : h.orgId === owner.id));
        return this.paged(list.map(hookJson), c.query, true);
      });
      this.route('POST', base, (c) => this.createHook(c, kind));
      this.route('GET', `${base}/{id}`, (c) => ({ status: 200, body: hookJson(this.hookOf(c, kind)) }));
      this.route('PATCH', `${base}/{id}`, (c) => this.editHook(c, kind));
      this.route('DELETE', `${base}/{id}`, (c) => {
        const hook = this.hookOf(c, kind);
        this.hooks.delete(hook.id);
        return { status: 204 };
      });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Handlers

  private listIssues(c: RequestContext): Reply {
    const repo = this.repoOf(c);
    const state = c.query.get('state') ?? 'open';
    const type = c.query.get('type');
    const sinceText = c.query.get('since');
    const since = sinceText ? Date.parse(sinceText) : NaN;
    if (sinceText && Number.isNaN(since)) throw new HttpError(422, `invalid since: ${sinceText}`);
    const list = [...repo.issues.values()]
      .filter((i) => state === 'all' || i.state === state)
      .filter((i) => (type === 'issues' ? !i.pull : type === 'pulls' ? !!i.pull : true))
      .filter((i) => Number.isNaN(since) || Math.floor(i.updatedMs / 1000) >= Math.floor(since / 1000))
      // ListIssues sorts newest first (SortByCreatedDesc).
      .sort((a, b) => b.createdMs - a.createdMs || b.number - a.number);
    return this.paged(list.map((i) => issueJson(this.ctx, repo, i)), c.query, false);
  }

  /**
   * `POST …/issues/{index}/labels` (add) and `PUT` (replace), routers/api/v1/repo/issue_label.go: labels are
   * all ids (numbers) or all names (strings, since 1.22) — mixed is 400; unknown names and ids are ignored;
   * the answer is the issue's full label list; one `label_updated` delivery follows, even if nothing changed.
   */
  private writeIssueLabels(c: RequestContext, mode: 'add' | 'replace'): Reply {
    const { repo, issue } = this.issueOf(c);
    if (!canWrite(this.levelOf(repo, c.doer))) throw new HttpError(403, 'write permission is required');
    const raw = (c.body as { labels?: unknown } | undefined)?.labels;
    const list = Array.isArray(raw) ? raw : [];
    const ids: number[] = [];
    const names: string[] = [];
    for (const v of list) {
      if (typeof v === 'number') ids.push(Math.trunc(v));
      else if (typeof v === 'string') names.push(v);
      else throw new HttpError(400, 'a label must be an integer or a string');
    }
    // Before 1.22 `labels` was []int64: a string fails JSON binding.
    if (names.length > 0 && !this.atLeast([1, 22])) throw new HttpError(422, '[Labels]: cannot unmarshal string into int64');
    if (ids.length > 0 && names.length > 0) throw new HttpError(400, 'labels should be an array of strings or integers');
    if (names.length > 0) {
      const wanted = new Set(names);
      for (const l of this.labels.values()) {
        if (!wanted.has(l.name)) continue;
        if (l.repoId === repo.id || (repo.owner.isOrg && l.orgId === repo.owner.id)) ids.push(l.id);
      }
    }
    // GetLabelsByIDs orders by name: of several exclusive labels of one scope, the alphabetically last wins.
    const labels = [...new Set(ids)]
      .map((id) => this.labels.get(id))
      .filter((l): l is SimLabel => l !== undefined)
      .sort(byName);
    if (mode === 'add') this.addLabels(repo, issue, labels);
    else this.replaceLabels(repo, issue, labels);
    this.emitLabelUpdated(repo, issue, c.doer);
    return { status: 200, body: issueLabels(this.ctx, issue).map((l) => labelJson(this.ctx, l)) };
  }

  /** `DELETE …/issues/{index}/labels/{id}`: unknown (or non-numeric) id → 422; a label not on the issue → 204, no change. */
  private deleteIssueLabel(c: RequestContext): Reply {
    const { repo, issue } = this.issueOf(c);
    if (!canWrite(this.levelOf(repo, c.doer))) return { status: 403 };
    const text = c.params.id ?? '';
    const id = /^\d+$/.test(text) ? Number(text) : 0;
    const label = this.labels.get(id);
    if (!label) throw new HttpError(422, `label does not exist [label_id: ${id}]`);
    if (issue.labelIds.delete(label.id)) this.touch(repo, issue);
    this.emitLabelUpdated(repo, issue, c.doer);
    return { status: 204 };
  }

  private fileContents(c: RequestContext): Reply {
    const repo = this.repoOf(c);
    let files: unknown;
    try {
      files = (JSON.parse(c.query.get('body') ?? '') as { files?: unknown }).files;
    } catch {
      throw new HttpError(400, 'invalid body parameter');
    }
    const { ref, tree, sha } = this.resolveRef(repo, c.query.get('ref'));
    const out: unknown[] = [];
    for (const p of Array.isArray(files) ? files : []) {
      const path = typeof p === 'string' ? p.replace(/^\/+|\/+$/g, '') : '';
      const content = tree.get(path);
      if (content !== undefined) out.push(contentsJson(this.ctx, repo, path, content, ref, sha));
      else if (path !== '' && [...tree.keys()].some((k) => k.startsWith(path + '/'))) out.push(dirEntryJson(this.ctx, repo, path, true, ref));
      else out.push(null); // "Files which could not be retrieved are null."
      if (out.length === 30) break; // [api] DEFAULT_PAGING_NUM
    }
    return { status: 200, body: out };
  }

  private contents(c: RequestContext, path: string): Reply {
    const repo = this.repoOf(c);
    const { ref, tree, sha } = this.resolveRef(repo, c.query.get('ref'));
    const content = tree.get(path);
    if (content !== undefined) return { status: 200, body: contentsJson(this.ctx, repo, path, content, ref, sha) };
    const prefix = path === '' ? '' : path + '/';
    const children = new Map<string, boolean>();
    for (const k of tree.keys()) {
      if (!k.startsWith(prefix)) continue;
      const rest = k.slice(prefix.length);
      const slash = rest.indexOf('/');
      children.set(prefix + (slash < 0 ? rest : rest.slice(0, slash)), slash >= 0);
    }
    if (children.size === 0 && path !== '') throw new HttpError(404, `object does not exist [id: , rel_path: ${path}]`);
    const list = [...children.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, dir]) => dirEntryJson(this.ctx, repo, p, dir, ref));
    return { status: 200, body: list };
  }

  private createHook(c: RequestContext, kind: 'repo' | 'org'): Reply {
    const owner = this.hookOwner(c, kind);
    const form = (c.body ?? {}) as {
      type?: unknown;
      config?: Record<string, unknown>;
      events?: unknown;
      branch_filter?: unknown;
      authorization_header?: unknown;
      active?: unknown;
    };
    const type = typeof form.type === 'string' ? form.type : '';
    if (!HOOK_TYPES.has(type)) throw new HttpError(422, `Invalid hook type: ${type}`);
    const config = form.config ?? {};
    for (const name of ['url', 'content_type']) {
      if (typeof config[name] !== 'string') throw new HttpError(422, `Missing config option: ${name}`);
    }
    const contentType = config.content_type;
    if (contentType !== 'json' && contentType !== 'form') throw new HttpError(422, 'Invalid content type');
    const events = Array.isArray(form.events) && form.events.length > 0 ? form.events.map(String) : ['push'];
    const now = goTime(Date.now());
    const hook: SimHook = {
      id: ++this.ids.hook,
      ...(kind === 'repo' ? { repoId: owner.id } : { orgId: owner.id }),
      type,
      url: String(config.url),
      contentType,
      secret: typeof config.secret === 'string' ? config.secret : '',
      events: expandHookEvents(events),
      branchFilter: typeof form.branch_filter === 'string' ? form.branch_filter : '',
      authorizationHeader: typeof form.authorization_header === 'string' ? form.authorization_header : '',
      // CreateHookOption.active defaults to false.
      active: form.active === true,
      created: now,
      updated: now,
    };
    this.hooks.set(hook.id, hook);
    return { status: 201, body: hookJson(hook) };
  }

  /**
   * routers/api/v1/utils/hook.go editHook: `config` keys given are applied (`secret` too, never shown);
   * `events` is reset to `push`, `branch_filter` and `authorization_header` to empty when omitted;
   * `active` only when given.
   */
  private editHook(c: RequestContext, kind: 'repo' | 'org'): Reply {
    const hook = this.hookOf(c, kind);
    const form = (c.body ?? {}) as {
      config?: Record<string, unknown>;
      events?: unknown;
      branch_filter?: unknown;
      authorization_header?: unknown;
      active?: unknown;
    };
    if (form.config) {
      if (typeof form.config.url === 'string') hook.url = form.config.url;
      if (form.config.content_type !== undefined) {
        const ct = form.config.content_type;
        if (ct !== 'json' && ct !== 'form') throw new HttpError(422, 'Invalid content type');
        hook.contentType = ct;
      }
      if (typeof form.config.secret === 'string') hook.secret = form.config.secret;
    }
    const events = Array.isArray(form.events) && form.events.length > 0 ? form.events.map(String) : ['push'];
    hook.events = expandHookEvents(events);
    hook.branchFilter = typeof form.branch_filter === 'string' ? form.branch_filter : '';
    hook.authorizationHeader = typeof form.authorization_header === 'string' ? form.authorization_header : '';
    if (typeof form.active === 'boolean') hook.active = form.active;
    hook.updated = goTime(Date.now());
    return { status: 200, body: hookJson(hook) };
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups and rules

  private paged(items: unknown[], query: URLSearchParams, allWithoutPage: boolean): Reply {
    const { page, limit } = listOptions(query);
    const headers = { 'X-Total-Count': String(items.length) };
    // Labels and hooks (GetLabelsByRepoID, ListWebhooksByOpts): no `page` means every item; lists like issues: page 1.
    if (page === 0 && allWithoutPage) return { status: 200, body: items, headers };
    const p = Math.max(page, 1);
    return { status: 200, body: items.slice((p - 1) * limit, p * limit), headers };
  }

  private repoOf(c: RequestContext): SimRepo {
    const repo = this.repos.get(`${c.params.owner}/${c.params.repo}`.toLowerCase());
    if (!repo) throw new HttpError(404, 'repository does not exist');
    return repo;
  }

  private issueOf(c: RequestContext): { repo: SimRepo; issue: SimIssue } {
    const repo = this.repoOf(c);
    const text = c.params.index ?? '';
    const issue = /^\d+$/.test(text) ? repo.issues.get(Number(text)) : undefined;
    if (!issue) throw new HttpError(404, `issue does not exist [repo_id: ${repo.id}, index: ${text}]`);
    return { repo, issue };
  }

  private orgOf(c: RequestContext): SimUser {
    const org = this.users.get((c.params.org ?? '').toLowerCase());
    if (!org?.isOrg) throw new HttpError(404, 'organization does not exist');
    return org;
  }

  private hookOwner(c: RequestContext, kind: 'repo' | 'org'): { id: number } {
    if (kind === 'repo') {
      const repo = this.repoOf(c);
      if (!isAdmin(this.levelOf(repo, c.doer))) throw new HttpError(403, 'repository admin access is required');
      return repo;
    }
    const org = this.orgOf(c);
    if (!this.ownsOrg(c.doer)) throw new HttpError(403, 'Must be an organization owner');
    return org;
  }

  private hookOf(c: RequestContext, kind: 'repo' | 'org'): SimHook {
    const owner = this.hookOwner(c, kind);
    const text = c.params.id ?? '';
    const hook = /^\d+$/.test(text) ? this.hooks.get(Number(text)) : undefined;
    if (!hook || (kind === 'repo' ? hook.repoId !== owner.id : hook.orgId !== owner.id)) throw new HttpError(404, 'webhook does not exist');
    return hook;
  }

  private ownsOrg(u: SimUser): boolean {
    return u.isAdmin || (u.id === this.bot.id && this.botIsAdmin);
  }

  /** The user's access to a repository: owner, site admin, explicit collaborator level, the bot's default, else read (public repo). */
  private levelOf(repo: SimRepo, u: SimUser): Level {
    if (repo.owner.id === u.id) return 'owner';
    const explicit = repo.permissions.get(u.login.toLowerCase());
    if (explicit) return explicit;
    if (u.isAdmin) return 'admin';
    if (u.id === this.bot.id) return this.botIsAdmin ? 'admin' : 'write';
    return 'read';
  }

  private resolveRef(repo: SimRepo, ref: string | null): { ref: string; tree: Map<string, string>; sha: string } {
    const name = (ref ?? '').replace(/^refs\/heads\//, '') || repo.defaultBranch;
    const tree = repo.branches.get(name);
    if (!tree) throw new HttpError(404, `no such ref: ${name}`);
    return { ref: name, tree, sha: repo.heads.get(name) ?? ZERO_SHA };
  }

  private atLeast([major, minor]: [number, number]): boolean {
    const [ma, mi] = this.versionParts;
    return ma > major || (ma === major && mi >= minor);
  }

  /** models/issues/issue_label.go newIssueLabels: skip present and foreign labels; each exclusive label drops its siblings. */
  private addLabels(repo: SimRepo, issue: SimIssue, labels: SimLabel[]): void {
    let changed = false;
    for (const l of labels) {
      if (issue.labelIds.has(l.id)) continue;
      if (l.repoId !== repo.id && !(l.orgId !== undefined && l.orgId === repo.owner.id)) continue;
      const scope = exclusiveScope(l);
      if (scope) {
        for (const id of [...issue.labelIds]) {
          const other = this.labels.get(id);
          if (other && other.id !== l.id && exclusiveScope(other) === scope) issue.labelIds.delete(id);
        }
      }
      issue.labelIds.add(l.id);
      changed = true;
    }
    if (changed) this.touch(repo, issue);
  }

  /** ReplaceIssueLabels: of several exclusive labels of one scope the last (by name) is kept; foreign labels dropped. */
  private replaceLabels(repo: SimRepo, issue: SimIssue, labels: SimLabel[]): void {
    const valid = labels.filter((l) => l.repoId === repo.id || (l.orgId !== undefined && l.orgId === repo.owner.id));
    const kept = valid.filter((l, i) => {
      const scope = exclusiveScope(l);
      return !scope || !valid.slice(i + 1).some((o) => exclusiveScope(o) === scope);
    });
    issue.labelIds = new Set(kept.map((l) => l.id));
    this.touch(repo, issue);
  }

  private emitLabelUpdated(repo: SimRepo, issue: SimIssue, sender: SimUser): void {
    if (issue.pull) this.emit(repo, 'pull_request_label', pullRequestPayload(this.ctx, repo, issue, 'label_updated', sender));
    else this.emit(repo, 'issue_label', issuePayload(this.ctx, repo, issue, 'label_updated', sender));
  }

  private addComment(repo: SimRepo, issue: SimIssue, user: SimUser, body: string): SimComment {
    const now = goTime(Date.now());
    const cm: SimComment = { id: ++this.ids.comment, user, body, created: now, updated: now };
    issue.comments.push(cm);
    this.touch(repo, issue);
    this.emit(repo, issue.pull ? 'pull_request_comment' : 'issue_comment', issueCommentPayload(this.ctx, repo, issue, cm, user));
    return cm;
  }

  private touch(repo: SimRepo, issue: SimIssue): void {
    const now = Date.now();
    issue.updatedMs = now;
    issue.updated = goTime(now);
    repo.updated = goTime(now);
  }

  // ---------------------------------------------------------------------------------------------
  // Deliveries

  /**
   * Queues the deliveries of one event: to the `webhook` option's target, to the repository's active hooks
   * and to its organisation's, each hook filtered by its events (and branch filter, for pushes). Sent
   * asynchronously and concurrently, like Gitea's hook task queue.
   */
  private emit(repo: SimRepo, type: string, payload: Record<string, unknown>, branch?: string): void {
    const event = eventFamily(type);
    const targets: { url: string; options: DeliveryOptions; headers: Record<string, string> }[] = [];
    if (this.webhook) {
      targets.push({ url: this.webhook.url, options: { secret: this.webhook.secret, contentType: this.webhook.contentType ?? 'json', targetType: 'repository' }, headers: {} });
    }
    for (const h of this.hooks.values()) {
      const scope = h.repoId === repo.id ? 'repository' : repo.owner.isOrg && h.orgId === repo.owner.id ? 'organization' : undefined;
      if (!scope || !h.active || (h.type !== 'gitea' && h.type !== 'gogs') || !h.events.has(type)) continue;
      if (type === 'push' && branch && h.branchFilter && h.branchFilter !== '*' && !picomatch.isMatch(branch, h.branchFilter)) continue;
      targets.push({
        url: h.url,
        options: { secret: h.secret, contentType: h.contentType, targetType: scope },
        headers: h.authorizationHeader ? { Authorization: h.authorizationHeader } : {},
      });
    }
    const sender = (payload.sender as { login?: string } | undefined)?.login;
    const action = typeof payload.action === 'string' ? payload.action : undefined;
    for (const t of targets) {
      const delivery = makeDelivery(event, type, payload, t.options);
      const record: SimDeliveryRecord = {
        id: delivery.headers['X-Gitea-Delivery'] as string,
        event,
        type,
        url: t.url,
        ...(action ? { action } : {}),
        ...(sender ? { sender } : {}),
      };
      this.deliveries.push(record);
      const sent = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => sendDelivery(t.url, delivery, this.agents, t.headers))
        .then((outcome) => {
          if (outcome.status !== undefined) record.status = outcome.status;
          if (outcome.error !== undefined) record.error = outcome.error;
        });
      this.pending.add(sent);
      void sent.finally(() => this.pending.delete(sent));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // State helpers

  private createUser(login: string, options: { fullName?: string; email?: string; token?: string; isAdmin?: boolean; isOrg?: boolean }): SimUser {
    if (this.users.has(login.toLowerCase())) throw new Error(`simgitea: user or organisation ${login} exists`);
    const u: SimUser = {
      id: ++this.ids.user,
      login,
      fullName: options.fullName ?? '',
      email: options.email ?? (options.isOrg ? '' : `${login}@example.com`),
      isOrg: options.isOrg ?? false,
      isAdmin: options.isAdmin ?? false,
      website: '',
      description: '',
      created: goTime(Date.now()),
      tokens: new Set(options.token ? [options.token] : []),
    };
    this.users.set(login.toLowerCase(), u);
    this.usersById.set(u.id, u);
    return u;
  }

  private ensureUser(login: string): SimUser {
    return this.users.get(login.toLowerCase()) ?? this.createUser(login, {});
  }

  private createLabel(input: LabelInput & { repoId?: number; orgId?: number }): SimLabel {
    if (typeof input.name !== 'string' || input.name === '') throw new HttpError(422, '[Name]: Required');
    const l: SimLabel = {
      id: ++this.ids.label,
      ...(input.repoId !== undefined ? { repoId: input.repoId } : {}),
      ...(input.orgId !== undefined ? { orgId: input.orgId } : {}),
      name: input.name,
      color: normalizeColor(input.color ?? 'ededed'),
      exclusive: input.exclusive ?? false,
      description: input.description ?? '',
      archived: false,
    };
    this.labels.set(l.id, l);
    return l;
  }

  private createIssue(
    repo: SimRepo,
    input: {
      title: string;
      body?: string;
      user: string;
      labels?: string[];
      state?: 'open' | 'closed';
      pull?: { files: FileInput[]; head?: string | undefined; draft?: boolean | undefined };
    },
  ): SimIssue {
    const now = Date.now();
    const number = repo.nextIndex++;
    const issue: SimIssue = {
      id: ++this.ids.issue,
      number,
      title: input.title,
      body: input.body ?? '',
      user: this.ensureUser(input.user),
      state: input.state ?? 'open',
      labelIds: new Set((input.labels ?? []).map((name) => this.mustLabelByName(repo, name).id)),
      created: goTime(now),
      updated: goTime(now),
      createdMs: now,
      updatedMs: now,
      closed: input.state === 'closed' ? goTime(now) : null,
      comments: [],
    };
    if (input.pull) {
      issue.pull = {
        id: ++this.ids.pull,
        headRef: input.pull.head ?? `feature/pr-${number}`,
        headSha: randomSha(),
        baseRef: repo.defaultBranch,
        baseSha: repo.heads.get(repo.defaultBranch) ?? ZERO_SHA,
        files: input.pull.files.map(toChangedFile),
        draft: input.pull.draft ?? false,
      };
    }
    repo.issues.set(number, issue);
    return issue;
  }

  private mustRepo(owner: string, repo: string): SimRepo {
    const r = this.repos.get(`${owner}/${repo}`.toLowerCase());
    if (!r) throw new Error(`simgitea: no repository ${owner}/${repo}`);
    return r;
  }

  private mustIssue(owner: string, repo: string, n: number): SimIssue {
    const issue = this.mustRepo(owner, repo).issues.get(n);
    if (!issue) throw new Error(`simgitea: no issue ${owner}/${repo}#${n}`);
    return issue;
  }

  private mustLabelByName(repo: SimRepo, name: string): SimLabel {
    for (const l of this.labels.values()) {
      if (l.name === name && (l.repoId === repo.id || (repo.owner.isOrg && l.orgId === repo.owner.id))) return l;
    }
    throw new Error(`simgitea: no label ${JSON.stringify(name)} in ${repo.owner.login}/${repo.name} or its organisation`);
  }

  private branchFiles(repo: SimRepo, branch: string, create: true): Map<string, string>;
  private branchFiles(repo: SimRepo, branch: string, create: false): Map<string, string> | undefined;
  private branchFiles(repo: SimRepo, branch: string, create: boolean): Map<string, string> | undefined {
    let tree = repo.branches.get(branch);
    if (!tree && create) {
      // A new branch starts from the default branch.
      tree = new Map(repo.branches.get(repo.defaultBranch) ?? []);
      repo.branches.set(branch, tree);
      repo.heads.set(branch, repo.heads.get(repo.defaultBranch) ?? ZERO_SHA);
    }
    return tree;
  }

  private delay(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.timers.add(entry);
    });
  }
}

function listOptions(query: URLSearchParams): { page: number; limit: number } {
  const page = Number.parseInt(query.get('page') ?? '', 10);
  const limit = Number.parseInt(query.get('limit') ?? '', 10);
  return {
    page: Number.isFinite(page) && page > 0 ? page : 0,
    // convert.ToCorrectPageSize: ≤ 0 → DEFAULT_PAGING_NUM (30); above MAX_RESPONSE_ITEMS (50) → 50.
    limit: !Number.isFinite(limit) || limit <= 0 ? 30 : Math.min(limit, 50),
  };
}

function retryAfter(f: SimFaults): Record<string, string> {
  return f.retryAfterSeconds !== undefined ? { 'Retry-After': String(f.retryAfterSeconds) } : {};
}

function isAdmin(level: Level): boolean {
  return level === 'admin' || level === 'owner';
}

function canWrite(level: Level): boolean {
  return level === 'write' || isAdmin(level);
}

function labelOption(body: unknown): LabelInput {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.color !== 'string') throw new HttpError(422, '[Color]: Required');
  return {
    name: typeof b.name === 'string' ? b.name : '',
    color: b.color,
    exclusive: b.exclusive === true,
    description: typeof b.description === 'string' ? b.description : '',
  };
}

/** modules/label NormalizeColor: `#rgb`/`#rrggbb` with or without `#`, stored lower-case with `#`. */
function normalizeColor(color: string): string {
  const m = /^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/.exec(color.trim());
  if (!m) throw new HttpError(422, `invalid color ${JSON.stringify(color)}`);
  const hex = (m[1] as string).toLowerCase();
  return '#' + (hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex);
}

function toChangedFile(f: FileInput): SimChangedFile {
  return {
    filename: f.filename,
    status: f.status ?? 'modified',
    additions: f.additions,
    deletions: f.deletions,
    ...(f.previous_filename ? { previous_filename: f.previous_filename } : {}),
  };
}

function randomSha(): string {
  return createHash('sha1').update(randomBytes(16)).digest('hex');
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) reject(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
