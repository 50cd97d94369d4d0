import { parse as parseYaml } from 'yaml';
import type { GiteaApi } from '../gitea/api.js';
import type { GiteaIssueTemplate, GiteaLabel } from '../gitea/types.js';
import type { Logger } from '../log/logger.js';
import { configLabelLocation, configLabelNames, parseTriageConfig } from '../triage/config.js';
import { templateInfo } from '../triage/templates.js';
import type { ConfigProblem, TemplateInfo, TriageConfig } from '../triage/types.js';

/** A label the repo can use: its own, or (for org-owned repos) one of the org's. */
export interface ContextLabel {
  id: number;
  name: string;
  exclusive: boolean;
  /** True for an org label (`GET /orgs/{org}/labels`). */
  org: boolean;
}

/** Everything the triage of one repository needs from Gitea, loaded once and cached. */
export interface RepoContext {
  /** `owner/repo` as asked. */
  repo: string;
  /** Where the config came from: the repo's own file, `TRIAGE_CONFIG`, or nowhere (repo not triaged). */
  source: 'repo' | 'default' | 'none';
  /** The file the config was read from (`.gitea/triage.yml`, or the `TRIAGE_CONFIG` path). */
  file?: string;
  config?: TriageConfig;
  /** Set when the config cannot be used: the repo's issues are left alone. */
  problem?: ConfigProblem;
  templates: TemplateInfo[];
  /** Label name → label; repo labels win over org labels of the same name. */
  labels: Map<string, ContextLabel>;
  /** Epoch ms. */
  loadedAt: number;
}

/** Where a repo opts in, in order of preference (docs/architecture.md, "Repository context"). */
export const CONFIG_FILES = ['.gitea/triage.yml', '.gitea/triage.yaml'] as const;

/**
 * Single-file issue templates, in the order Gitea's web UI tries them (`IssueTemplateCandidates`,
 * routers/web/repo/issue.go). `GET …/issue_templates` does not return these: it parses only the
 * `ISSUE_TEMPLATE`/`issue_template` folders (services/issue/template.go, `templateDirCandidates`).
 * Gitea falls back to them when the folders hold no template, and so does the loader.
 */
export const SINGLE_TEMPLATE_FILES = ['ISSUE_TEMPLATE', 'issue_template'].flatMap((base) =>
  ['', '.gitea/', '.github/'].flatMap((dir) => ['md', 'yaml', 'yml'].map((ext) => `${dir}${base}.${ext}`)),
);

export interface ContextLoaderOptions {
  gitea: GiteaApi;
  /** How long a loaded context is used; 0: no cache, every `get` loads. */
  ttlMs: number;
  /** `TRIAGE_CONFIG`: used by repos without a config file of their own. */
  defaultConfig?: { text: string; file: string };
  /**
   * Used for every repository instead of its own config file (and of `defaultConfig`): the replay
   * tool's preview of a candidate config before it is merged. Reported as the repo's own (`source: 'repo'`).
   */
  overrideConfig?: { text: string; file: string };
  log: Logger;
  now?: () => number;
  /**
   * The repository's context generation in the store (`ContextGenerations.get`), bumped by whichever
   * replica acknowledges a push to its default branch: a cached context loaded under an older
   * generation is not used (docs/architecture.md, "The store"). Absent: this process's own invalidations only.
   */
  generation?: (repo: string) => Promise<number>;
}

/** What the parser made of a config. */
interface Parsed {
  result: ReturnType<typeof parseTriageConfig>;
}

interface Entry {
  /** The load (in flight or done). */
  promise: Promise<RepoContext>;
  /** Set once the load succeeded. */
  value?: RepoContext;
  /** The store's generation of the repo when the load began. */
  storeGeneration?: number;
}

/**
 * Per-repository context with a TTL cache. Concurrent callers share one load; a config problem is
 * cached like a good config (a broken file is not re-fetched for every event, and is logged once per
 * load); a failed load (a Gitea error) is not cached, so the caller's evaluation fails and is retried.
 */
export class ContextLoader {
  private readonly gitea: GiteaApi;
  private readonly ttlMs: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly defaultParsed: (Parsed & { file: string }) | undefined;
  private readonly overrideParsed: (Parsed & { file: string }) | undefined;
  private readonly entries = new Map<string, Entry>();
  /** Bumped by `invalidate`: a load that started before the bump must not store its (stale) result. */
  private readonly generations = new Map<string, number>();
  private readonly storeGeneration: ((repo: string) => Promise<number>) | undefined;

  constructor(options: ContextLoaderOptions) {
    if (!Number.isInteger(options.ttlMs) || options.ttlMs < 0) {
      throw new Error(`ContextLoader: ttlMs must be an integer >= 0, got ${String(options.ttlMs)}`);
    }
    this.gitea = options.gitea;
    this.ttlMs = options.ttlMs;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.storeGeneration = options.generation;
    if (options.defaultConfig) {
      const { text, file } = options.defaultConfig;
      this.defaultParsed = { file, result: parseTriageConfig(text, file) };
    }
    if (options.overrideConfig) {
      const { text, file } = options.overrideConfig;
      this.overrideParsed = { file, result: parseTriageConfig(text, file) };
    }
  }

  /**
   * The context of `owner/repo`, from the cache when fresh. `log` (optional) is the caller's logger,
   * so that a config problem is reported with the delivery that found it.
   * Rejects with the Gitea error when a request failed (nothing cached then).
   */
  get(owner: string, repo: string, log?: Logger): Promise<RepoContext> {
    if (this.ttlMs === 0) return this.load(owner, repo, log ?? this.log);
    if (!this.storeGeneration) return this.cached(owner, repo, log, undefined);
    // The store's generation first: one read per evaluation, so that a push acknowledged by any
    // replica is seen before an event journaled after it is evaluated.
    return this.storeGeneration(repoKey(owner, repo)).then((g) => this.cached(owner, repo, log, g));
  }

  private cached(owner: string, repo: string, log: Logger | undefined, storeGeneration: number | undefined): Promise<RepoContext> {
    const key = repoKey(owner, repo);
    const entry = this.entries.get(key);
    if (entry && storeGeneration !== undefined && (entry.storeGeneration ?? 0) < storeGeneration) {
      this.entries.delete(key); // loaded before a push another replica acknowledged
    } else if (entry) {
      if (!entry.value) return entry.promise; // in flight: share it
      if (this.now() - entry.value.loadedAt < this.ttlMs) return entry.promise;
      this.entries.delete(key);
    }
    const generation = this.generations.get(key) ?? 0;
    const promise = this.load(owner, repo, log ?? this.log);
    const fresh: Entry = { promise, ...(storeGeneration !== undefined ? { storeGeneration } : {}) };
    this.entries.set(key, fresh);
    promise.then(
      (value) => {
        // Still the current entry of the same generation: keep it. Otherwise an invalidate() came
        // in while loading (a push to the default branch): the value may predate the push.
        if (this.entries.get(key) === fresh && (this.generations.get(key) ?? 0) === generation) fresh.value = value;
      },
      () => {
        if (this.entries.get(key) === fresh) this.entries.delete(key);
      },
    );
    return promise;
  }

  /** Drops the cached context of `owner/repo` (e.g. after a push to its default branch). */
  invalidate(repo: string): void {
    const key = repo.toLowerCase();
    this.generations.set(key, (this.generations.get(key) ?? 0) + 1);
    this.entries.delete(key);
  }

  /** Repos with a cached or loading context (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  private async load(owner: string, repo: string, log: Logger): Promise<RepoContext> {
    const full = `${owner}/${repo}`;
    const empty = { repo: full, templates: [], labels: new Map<string, ContextLabel>() };
    // One request on Gitea >= 1.24 (`GET …/file-contents`); nothing else is fetched for a repo
    // without a config, so an untriaged repo costs one request per TTL.
    const files = this.overrideParsed ? [] : await this.gitea.getFiles(owner, repo, [...CONFIG_FILES]);
    const found = files.find((f) => f !== null) ?? null;

    let source: RepoContext['source'];
    let file: string;
    let parsed: Parsed;
    if (this.overrideParsed) {
      source = 'repo';
      file = this.overrideParsed.file;
      parsed = this.overrideParsed;
    } else if (found) {
      source = 'repo';
      file = found.path;
      parsed = { result: parseTriageConfig(found.content, found.path) };
    } else if (this.defaultParsed) {
      source = 'default';
      file = this.defaultParsed.file;
      parsed = this.defaultParsed;
    } else {
      return { ...empty, source: 'none', loadedAt: this.now() };
    }

    if ('problem' in parsed.result) return this.withProblem({ ...empty, source, file, loadedAt: this.now() }, parsed.result.problem, log);
    const config = parsed.result.config;

    // Templates matter only to `missing_sections: template`: a config without it costs no request for them.
    const usesTemplates = [...config.labels.values()].some((rule) => rule.missingSections === 'template');
    const [templates, repoLabels, orgLabels] = await Promise.all([
      usesTemplates ? this.templates(owner, repo, log) : Promise.resolve([]),
      this.gitea.listRepoLabels(owner, repo),
      // null: the owner is a user, not an organisation.
      this.gitea.listOrgLabels(owner),
    ]);
    const labels = new Map<string, ContextLabel>();
    for (const label of repoLabels) addLabel(labels, label, false);
    for (const label of orgLabels ?? []) addLabel(labels, label, true);

    const context: RepoContext = { repo: full, source, file, config, templates, labels, loadedAt: this.now() };
    // Gitea silently ignores labels it does not know: a config naming one is reported, not half-applied.
    const missing = configLabelNames(config).filter((name) => !labels.has(name));
    if (missing.length > 0) {
      const where = configLabelLocation(config, missing[0]!);
      const problem: ConfigProblem = {
        file,
        ...(where?.line !== undefined ? { line: where.line } : {}),
        ...(where ? { path: where.path } : {}),
        message: `label${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found in ${orgLabels ? 'the repo or its org' : 'the repo'}`,
      };
      delete context.config;
      return this.withProblem(context, problem, log);
    }
    return context;
  }

  private withProblem(context: RepoContext, problem: ConfigProblem, log: Logger): RepoContext {
    log.warn('triage config problem: issues of this repo are left as they are', {
      repo: context.repo,
      file: problem.file,
      ...(problem.line !== undefined ? { line: problem.line } : {}),
      ...(problem.path !== undefined ? { path: problem.path } : {}),
      error: problem.message,
    });
    return { ...context, problem };
  }

  /**
   * Gitea's own parse of the template folders (one request instead of listing eight folders and
   * fetching each file); when they hold none, the single-file template Gitea would use.
   */
  private async templates(owner: string, repo: string, log: Logger): Promise<TemplateInfo[]> {
    const listed = (await this.gitea.listIssueTemplates(owner, repo)) ?? [];
    if (listed.length > 0) return listed.map((t) => templateInfo(t));
    const files = await this.gitea.getFiles(owner, repo, SINGLE_TEMPLATE_FILES);
    const first = files.find((f) => f !== null);
    if (!first) return [];
    const template = singleFileTemplate(first.path, first.content);
    if (!template) {
      log.debug('issue template not usable', { repo: `${owner}/${repo}`, file: first.path });
      return [];
    }
    return [templateInfo(template)];
  }
}

function repoKey(owner: string, repo: string): string {
  // Gitea's owner and repo names are case-insensitive.
  return `${owner}/${repo}`.toLowerCase();
}

function addLabel(labels: Map<string, ContextLabel>, label: GiteaLabel, org: boolean): void {
  if (labels.has(label.name)) return;
  labels.set(label.name, { id: label.id, name: label.name, exclusive: label.exclusive === true, org });
}

// A line of three or more dashes opens and closes it, as in Gitea's ExtractMetadataBytes.
const FRONT_MATTER = /^-{3,}[ \t]*\r?\n([\s\S]*?)\r?\n-{3,}[ \t]*(?:\r?\n|$)/;

/**
 * A single-file template as Gitea's API would describe it: markdown with optional YAML front
 * matter (its text after the front matter is `content`), or a YAML issue form (`body` fields).
 * Undefined when the file does not parse.
 */
export function singleFileTemplate(path: string, text: string): GiteaIssueTemplate | undefined {
  // Gitea's `file_name` is the path in the repo (unmarshal in modules/issue/template).
  const fileName = path;
  const baseName = path.slice(path.lastIndexOf('/') + 1);
  try {
    if (path.endsWith('.md')) {
      const fm = FRONT_MATTER.exec(text);
      const meta = fm ? (parseYaml(fm[1]!) as unknown) : undefined;
      const name = isRecord(meta) && typeof meta.name === 'string' ? meta.name : baseName;
      return { name, file_name: fileName, content: fm ? text.slice(fm[0].length) : text };
    }
    const form = parseYaml(text) as unknown;
    if (!isRecord(form) || !Array.isArray(form.body)) return undefined;
    const name = typeof form.name === 'string' ? form.name : baseName;
    return { name, file_name: fileName, body: form.body as GiteaIssueTemplate['body'] };
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
