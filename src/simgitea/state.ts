import { createHash, randomBytes } from 'node:crypto';
import { parseGiteaVersion, versionAtLeastPatch } from '../gitea/version.js';
import { goTime, type Level, type SimChangedFile, type SimHook, type SimIssue, type SimLabel, type SimRepo, type SimUser } from './model.js';
import { HttpError, type RequestContext } from './router.js';
import type { ShapeContext } from './shapes.js';

export type LabelInput = { name: string; color?: string; exclusive?: boolean; description?: string };
export type FileInput = { filename: string; additions: number; deletions: number; status?: string; previous_filename?: string };
export type IssueInput = {
  title: string;
  body?: string;
  user: string;
  labels?: string[];
  state?: 'open' | 'closed';
  pull?: { files: FileInput[]; head?: string | undefined; draft?: boolean | undefined; headRepoGone?: boolean | undefined };
};

/** Queues the deliveries of one event (implemented by `deliveries.ts`). */
export type Emit = (repo: SimRepo, type: string, payload: Record<string, unknown>, branch?: string) => void;

export const ZERO_SHA = '0'.repeat(40);

/**
 * The simulated Gitea's whole state (users, repositories, labels, hooks) and the lookups and permission
 * rules every resource module shares. Resource modules (issues, labels, pulls, contents, hooks) register
 * their routes against one `SimState`.
 */
export class SimState {
  readonly users = new Map<string, SimUser>();
  readonly usersById = new Map<number, SimUser>();
  readonly repos = new Map<string, SimRepo>();
  readonly reposById = new Map<number, SimRepo>();
  readonly labels = new Map<number, SimLabel>();
  readonly ids = { user: 0, repo: 0, label: 0, issue: 0, pull: 0, comment: 0, hook: 0 };
  readonly ctx: ShapeContext;
  readonly bot: SimUser;
  readonly versionParts: [number, number];
  botIsAdmin: boolean;
  /** A fixed clock (epoch ms) while set: several changes then share one `updated_at`. */
  frozenAt: number | undefined;

  constructor(
    url: string,
    readonly version: string,
    botLogin: string,
    token: string,
    botIsAdmin: boolean,
    readonly hooks: Map<number, SimHook>,
    readonly emit: Emit,
  ) {
    const parsed = parseGiteaVersion(version);
    this.versionParts = parsed ? [parsed.major, parsed.minor] : [1, 25];
    this.botIsAdmin = botIsAdmin;
    this.ctx = {
      base: url,
      domain: new URL(url).hostname,
      userById: (id) => this.usersById.get(id),
      labelById: (id) => this.labels.get(id),
      repoById: (id) => this.reposById.get(id),
      atLeast: (major, minor) => this.atLeast([major, minor]),
    };
    this.bot = this.createUser(botLogin, { fullName: 'Triage Bot', token });
  }

  now(): number {
    return this.frozenAt ?? Date.now();
  }

  atLeast([major, minor]: [number, number]): boolean {
    const [ma, mi] = this.versionParts;
    return ma > major || (ma === major && mi >= minor);
  }

  /** The patch number too (`1.22.3` → true for [1, 22, 3]). */
  atLeastPatch([major, minor, patch]: [number, number, number]): boolean {
    const parsed = parseGiteaVersion(this.version);
    return !parsed || versionAtLeastPatch(parsed, major, minor, patch);
  }

  // ---------------------------------------------------------------------------------------------
  // Request lookups (404 answers)

  repoOf(c: RequestContext): SimRepo {
    const repo = this.repos.get(`${c.params.owner}/${c.params.repo}`.toLowerCase());
    if (!repo) throw new HttpError(404, 'repository does not exist');
    return repo;
  }

  issueOf(c: RequestContext): { repo: SimRepo; issue: SimIssue } {
    const repo = this.repoOf(c);
    const text = c.params.index ?? '';
    const issue = /^\d+$/.test(text) ? repo.issues.get(Number(text)) : undefined;
    if (!issue) throw new HttpError(404, `issue does not exist [repo_id: ${repo.id}, index: ${text}]`);
    return { repo, issue };
  }

  orgOf(c: RequestContext): SimUser {
    const org = this.users.get((c.params.org ?? '').toLowerCase());
    if (!org?.isOrg) throw new HttpError(404, 'organization does not exist');
    return org;
  }

  // ---------------------------------------------------------------------------------------------
  // Permissions

  ownsOrg(u: SimUser): boolean {
    return u.isAdmin || (u.id === this.bot.id && this.botIsAdmin);
  }

  /** The user's access to a repository: owner, site admin, explicit collaborator level, the bot's default, else read (public repo). */
  levelOf(repo: SimRepo, u: SimUser): Level {
    if (repo.owner.id === u.id) return 'owner';
    const explicit = repo.permissions.get(u.login.toLowerCase());
    if (explicit) return explicit;
    if (u.isAdmin) return 'admin';
    if (repo.private) return 'none';
    if (u.id === this.bot.id) return this.botIsAdmin ? 'admin' : 'write';
    return 'read';
  }

  // ---------------------------------------------------------------------------------------------
  // State changes and seeding helpers

  touch(repo: SimRepo, issue: SimIssue): void {
    const now = this.now();
    issue.updatedMs = now;
    issue.updated = goTime(now);
    repo.updated = goTime(now);
  }

  createUser(login: string, options: { fullName?: string; email?: string; token?: string; isAdmin?: boolean; isOrg?: boolean }): SimUser {
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
      created: goTime(this.now()),
      tokens: new Set(options.token ? [options.token] : []),
    };
    this.users.set(login.toLowerCase(), u);
    this.usersById.set(u.id, u);
    return u;
  }

  ensureUser(login: string): SimUser {
    return this.users.get(login.toLowerCase()) ?? this.createUser(login, {});
  }

  createLabel(input: LabelInput & { repoId?: number; orgId?: number }): SimLabel {
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

  createIssue(repo: SimRepo, input: IssueInput): SimIssue {
    const now = this.now();
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
        ...(input.pull.headRepoGone ? { headRepoGone: true } : {}),
      };
    }
    repo.issues.set(number, issue);
    return issue;
  }

  mustRepo(owner: string, repo: string): SimRepo {
    const r = this.repos.get(`${owner}/${repo}`.toLowerCase());
    if (!r) throw new Error(`simgitea: no repository ${owner}/${repo}`);
    return r;
  }

  mustIssue(owner: string, repo: string, n: number): SimIssue {
    const issue = this.mustRepo(owner, repo).issues.get(n);
    if (!issue) throw new Error(`simgitea: no issue ${owner}/${repo}#${n}`);
    return issue;
  }

  mustLabelByName(repo: SimRepo, name: string): SimLabel {
    for (const l of this.labels.values()) {
      if (l.name === name && (l.repoId === repo.id || (repo.owner.isOrg && l.orgId === repo.owner.id))) return l;
    }
    throw new Error(`simgitea: no label ${JSON.stringify(name)} in ${repo.owner.login}/${repo.name} or its organisation`);
  }

  branchFiles(repo: SimRepo, branch: string, create: true): Map<string, string>;
  branchFiles(repo: SimRepo, branch: string, create: false): Map<string, string> | undefined;
  branchFiles(repo: SimRepo, branch: string, create: boolean): Map<string, string> | undefined {
    let tree = repo.branches.get(branch);
    if (!tree && create) {
      // A new branch starts from the default branch.
      tree = new Map(repo.branches.get(repo.defaultBranch) ?? []);
      repo.branches.set(branch, tree);
      repo.heads.set(branch, repo.heads.get(repo.defaultBranch) ?? ZERO_SHA);
    }
    return tree;
  }
}

export function isAdmin(level: Level): boolean {
  return level === 'admin' || level === 'owner';
}

export function canWrite(level: Level): boolean {
  return level === 'write' || isAdmin(level);
}

/** The `permissions` object of a repository as `doer` sees it. */
export function permissionsOf(state: SimState, repo: SimRepo, doer: SimUser): { admin: boolean; push: boolean; pull: boolean } {
  const level = state.levelOf(repo, doer);
  return { admin: isAdmin(level), push: canWrite(level), pull: level !== 'none' };
}

/** modules/label NormalizeColor: `#rgb`/`#rrggbb` with or without `#`, stored lower-case with `#`. */
export function normalizeColor(color: string): string {
  const m = /^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$/.exec(color.trim());
  if (!m) throw new HttpError(422, `invalid color ${JSON.stringify(color)}`);
  const hex = (m[1] as string).toLowerCase();
  return '#' + (hex.length === 3 ? [...hex].map((c) => c + c).join('') : hex);
}

/** services/convert ToChangedFile's statuses; never `modified` (that is GitHub's word). */
export const FILE_STATUSES: ReadonlySet<string> = new Set(['added', 'deleted', 'renamed', 'copied', 'changed', 'unchanged']);

/** A changed file as Gitea has it: a status Gitea uses (default `changed`, or `unchanged` for 0/0); `previous_filename` only for renames. */
export function toChangedFile(f: FileInput): SimChangedFile {
  const status = f.status ?? (f.additions + f.deletions === 0 ? 'unchanged' : 'changed');
  if (!FILE_STATUSES.has(status)) throw new Error(`simgitea: Gitea has no file status ${JSON.stringify(status)} (it uses ${[...FILE_STATUSES].join(', ')})`);
  return {
    filename: f.filename,
    status,
    additions: f.additions,
    deletions: f.deletions,
    ...(f.previous_filename && status === 'renamed' ? { previous_filename: f.previous_filename } : {}),
  };
}

export function randomSha(): string {
  return createHash('sha1').update(randomBytes(16)).digest('hex');
}
