import { Command, Option } from 'commander';
import type { GiteaApi, HookOptions, HookTarget } from '../gitea/api.js';
import { isGiteaStatus } from '../gitea/errors.js';
import type { GiteaHook, GiteaLabel } from '../gitea/types.js';
import { CONFIG_FILES } from '../context/context.js';
import { createLogger } from '../log/logger.js';
import { configLabelNames, parseTriageConfig } from '../triage/config.js';
import {
  GITEA_VARIABLES,
  loadToolConfig,
  parseArgs,
  parseUsage,
  runTool,
  ToolError,
  toolGiteaClient,
  type ToolIO,
} from './cli.js';
import { expandHookEvents, KNOWN_EVENTS, listedHookEvents, sameEvents, SERVICE_EVENTS } from './hook-events.js';
import { parseOrgName, parseRepoRef } from './filter.js';

export const REGISTER_TOOL = 'register-webhook';

export interface RegisterOptions {
  target: HookTarget;
  /** The receiver's URL, e.g. `https://triage.example.org/webhook`. */
  url: string;
  /** The `events` option sent to Gitea (default {@link SERVICE_EVENTS}). */
  events: string[];
  /** Create the labels the repo's triage config names that neither the repo nor its org has. */
  ensureLabels: boolean;
  /** Delete and re-create an existing hook, so it signs with the current secret. */
  rotateSecret: boolean;
  dryRun: boolean;
  verbose: boolean;
}

export type HookAction = 'created' | 'updated' | 'unchanged' | 're-created';

export interface RegisterReport {
  /** `repo owner/name` or `org name`. */
  target: string;
  dryRun: boolean;
  hook: {
    action: HookAction;
    /** The hook's id (after the change); undefined for a hook a dry run would create. */
    id?: number;
    /** What differed (`events …`, `active false → true`, …), for `updated` and `re-created`. */
    changes: string[];
    /** Other hooks with the same URL, deleted (a second hook doubles every delivery). */
    duplicatesRemoved: number[];
    /** True when an existing hook kept its secret (Gitea can neither show nor PATCH it). */
    secretKept: boolean;
  };
  labels?: {
    file: string;
    created: { name: string; exclusive: boolean; color: string }[];
    /** Label names the config uses that already exist in the repo or its org. */
    existing: string[];
  };
  /** Advice for the operator (ALLOWED_HOST_LIST, path). */
  notes: string[];
}


function registerProgram(): Command {
  return new Command(REGISTER_TOOL)
    .description(
      'Create or repair the Gitea webhook that feeds gitea-triage (idempotent: a hook with the same URL is updated).\n' +
        'Reads GITEA_URL, GITEA_TOKEN and WEBHOOK_SECRET (the first secret of the list signs the hook).',
    )
    .addOption(new Option('--repo <owner/repo>', 'a repository hook (needs admin on the repo)').conflicts('org'))
    .option('--org <name>', 'an organisation hook, for all its repos (needs an owner of the org)')
    .requiredOption('--url <url>', "the receiver's URL, e.g. https://triage.example.org/webhook")
    .option(
      '--events <list>',
      `events to subscribe, comma-separated (default: ${SERVICE_EVENTS.join(',')})`,
      (value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(',').map((e) => e.trim()).filter(Boolean)],
    )
    .option('--ensure-labels', "create the labels the repo's .gitea/triage.yml names that neither the repo nor its org has (with --repo)")
    .option('--rotate-secret', 'delete and re-create an existing hook so it signs with the current secret')
    .option('--dry-run', 'print what would be done; change nothing')
    .option('--verbose', 'log every Gitea request on stderr');
}

/** Parses and checks the arguments; `'help'` when `--help` was printed. */
export function parseRegisterArgs(argv: readonly string[], io: ToolIO): RegisterOptions | 'help' {
  const opts = parseArgs(registerProgram(), argv, io);
  if (opts === 'help') return 'help';
  const repo = opts.repo as string | undefined;
  const org = opts.org as string | undefined;
  if (repo === undefined && org === undefined) throw new ToolError('give --repo owner/repo or --org NAME');
  const target: HookTarget = repo !== undefined ? { repo: parseRepoRef(repo, '--repo') } : { org: parseOrgName(org as string, '--org') };
  const url = checkUrl(opts.url as string);
  const events = (opts.events as string[] | undefined) ?? [...SERVICE_EVENTS];
  if (events.length === 0) throw new ToolError('--events needs at least one event');
  const unknown = events.filter((e) => !KNOWN_EVENTS.includes(e.toLowerCase()));
  if (unknown.length > 0) {
    throw new ToolError(`unknown event${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (Gitea knows: ${KNOWN_EVENTS.join(', ')})`);
  }
  const ensureLabels = opts.ensureLabels === true;
  if (ensureLabels && !('repo' in target)) throw new ToolError('--ensure-labels needs --repo (labels are read from one repo’s triage config)');
  return {
    target,
    url,
    events: events.map((e) => e.toLowerCase()),
    ensureLabels,
    rotateSecret: opts.rotateSecret === true,
    dryRun: opts.dryRun === true,
    verbose: opts.verbose === true,
  };
}

function checkUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new ToolError(`--url must be an http(s) URL, got ${JSON.stringify(text)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ToolError(`--url must be an http(s) URL, got ${JSON.stringify(text)}`);
  if (u.username || u.password) throw new ToolError('--url must not carry credentials (Gitea would store and show them)');
  return text;
}

/** Advice about the receiver URL that Gitea's own checks would only reveal at the first delivery. */
function urlNotes(url: string): string[] {
  const notes: string[] = [];
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  // Gitea's [webhook] ALLOWED_HOST_LIST defaults to `external`: loopback and private addresses are refused.
  if (host === 'localhost' || /^127\./.test(host) || host === '::1') {
    notes.push('the URL is a loopback address: Gitea delivers to it only if [webhook] ALLOWED_HOST_LIST includes "loopback" (default "external")');
  } else if (/^10\./.test(host) || /^192\.168\./.test(host) || /^172\.(1[6-9]|2\d|3[01])\./.test(host) || /^f[cd][0-9a-f]{2}:/i.test(host)) {
    notes.push('the URL is a private address: Gitea delivers to it only if [webhook] ALLOWED_HOST_LIST includes "private" or this host (default "external")');
  }
  if (!/\/webhook\/?$/.test(u.pathname)) notes.push('the service receives webhooks on POST /webhook: check the URL’s path');
  return notes;
}

/** The event types the service acts on; a custom `--events` without some of them is worth a note. */
// `pull_request_review` switches on the three review deliveries (models/webhook/webhook.go Webhook.HasEvent), whose bodies may carry `/label`.
const NEEDED_TYPES = ['issues', 'issue_label', 'issue_comment', 'pull_request', 'pull_request_label', 'pull_request_comment', 'pull_request_review', 'pull_request_sync', 'push'];

function eventNotes(events: readonly string[]): string[] {
  const have = expandHookEvents(events);
  const missing = NEEDED_TYPES.filter((t) => !have.has(t));
  return missing.length > 0 ? [`the hook will not deliver ${missing.join(', ')}: the service needs them to triage everything`] : [];
}

/** `listHooks`, with what a 403/404 means for hooks (the first call that needs the hook permissions). */
async function listHooksExplained(gitea: GiteaApi, target: HookTarget): Promise<GiteaHook[]> {
  try {
    return await gitea.listHooks(target);
  } catch (error) {
    if (isGiteaStatus(error, 403)) {
      const need =
        'repo' in target
          ? 'admin on the repo and a token with the write:repository scope'
          : 'an owner of the org and a token with the write:organization scope';
      throw new ToolError(`${error.message} (hooks need ${need})`);
    }
    if (isGiteaStatus(error, 404)) {
      throw new ToolError(`${error.message} (no such ${'repo' in target ? 'repository' : 'organisation'}, or the token's account cannot see it)`);
    }
    throw error;
  }
}

function targetText(target: HookTarget): string {
  return 'repo' in target ? `repo ${target.repo}` : `org ${target.org}`;
}

/** A fixed, pleasant colour per label scope, so a scope's labels look alike in Gitea. */
const SCOPE_COLORS: Record<string, string> = {
  kind: '#d73a4a',
  type: '#d73a4a',
  area: '#0075ca',
  priority: '#e99695',
  size: '#5319e7',
  status: '#fbca04',
  needs: '#d876e3',
};
const PALETTE = ['#0e8a16', '#1d76db', '#b60205', '#c2e0c6', '#006b75', '#fbca04', '#5319e7', '#e4e669', '#f9d0c4', '#bfd4f2'];
const UNSCOPED_COLOR = '#c5def5';

/** `scope/name` (the scope is up to the last `/`, as in Gitea's exclusive labels); undefined if unscoped. */
export function labelScope(name: string): string | undefined {
  const i = name.lastIndexOf('/');
  if (i <= 0 || i === name.length - 1) return undefined;
  return name.slice(0, i);
}

export function labelColor(name: string): string {
  const scope = labelScope(name);
  if (scope === undefined) return name.startsWith('needs-') ? (SCOPE_COLORS.needs as string) : UNSCOPED_COLOR;
  const known = SCOPE_COLORS[scope.toLowerCase()];
  if (known) return known;
  let hash = 0;
  for (const ch of scope) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length] as string;
}

/** What the hook must look like; `branch_filter`/`authorization_header` keep an existing hook's values. */
function desiredHook(options: RegisterOptions, secret: string, existing?: GiteaHook): HookOptions {
  return {
    type: 'gitea',
    active: true,
    events: options.events,
    // PATCH resets both to empty when they are left out (editHook): send them, keeping what the operator set.
    branch_filter: existing?.branch_filter || '*',
    authorization_header: existing?.authorization_header ?? '',
    config: { url: options.url, content_type: 'json', secret },
  };
}

/** How an existing hook differs from what the service needs (empty: nothing to do). */
function hookDifferences(hook: GiteaHook, options: RegisterOptions): string[] {
  const changes: string[] = [];
  const want = expandHookEvents(options.events);
  const have = listedHookEvents(hook.events);
  if (!sameEvents(want, have)) {
    const missing = [...want].filter((e) => !have.has(e));
    const extra = [...have].filter((e) => !want.has(e));
    const parts = [...(missing.length ? [`+${missing.join(' +')}`] : []), ...(extra.length ? [`-${extra.join(' -')}`] : [])];
    changes.push(`events ${parts.join(' ')}`);
  }
  if (hook.active !== true) changes.push('active false → true');
  const contentType = hook.config?.content_type;
  if (contentType !== 'json') changes.push(`content_type ${contentType ?? '(none)'} → json`);
  return changes;
}

interface LabelPlan {
  file: string;
  owner: string;
  repo: string;
  missing: { name: string; exclusive: boolean; color: string }[];
  existing: string[];
}

/**
 * Reads the repo's triage config and works out which of its labels are missing. Done before any write,
 * so a config that does not parse changes nothing.
 */
async function planLabels(gitea: GiteaApi, full: string): Promise<LabelPlan> {
  const [owner, repo] = full.split('/') as [string, string]; // checked by parseRepoRef
  const files = await gitea.getFiles(owner, repo, [...CONFIG_FILES]);
  const found = files.find((f) => f !== null) ?? null;
  if (!found) throw new ToolError(`${full} has no ${CONFIG_FILES.join(' or ')} on its default branch: no labels to ensure`);
  const parsed = parseTriageConfig(found.content, found.path);
  if ('problem' in parsed) {
    const p = parsed.problem;
    const where = `${p.file}${p.line !== undefined ? `:${p.line}` : ''}`;
    // The parser's message may already start with the key path.
    const path = p.path !== undefined && !p.message.startsWith(p.path) ? `${p.path}: ` : '';
    throw new ToolError(`${full}: ${where}: ${path}${p.message}`);
  }
  const names = [...new Set(configLabelNames(parsed.config))];
  const [repoLabels, orgLabels] = await Promise.all([gitea.listRepoLabels(owner, repo), gitea.listOrgLabels(owner)]);
  const known = [...repoLabels, ...(orgLabels ?? [])];
  const have = new Set<string>(known.map((l: GiteaLabel) => l.name));
  const sizeLabels = new Set(parsed.config.size?.labels.keys() ?? []);
  return {
    file: found.path,
    owner,
    repo,
    existing: names.filter((n) => have.has(n)),
    missing: names
      .filter((n) => !have.has(n))
      .map((name) => ({ name, exclusive: createExclusive(name, sizeLabels, known), color: labelColor(name) })),
  };
}

/**
 * Whether a label the tool creates is exclusive. Gitea's exclusivity is per label: adding an exclusive
 * label drops the issue's other exclusive labels of the same scope, the name up to the last `/`
 * (models/issues/label.go `Label.ExclusiveScope`, models/issues/issue_label.go
 * `RemoveDuplicateExclusiveIssueLabels`, v1.21.11–v1.25.4). So an exclusive label is only right where
 * one label per scope is meant:
 * - a size label: the config gives a pull request one size, so its scope is exclusive;
 * - any other scoped label: like the labels of its scope that exist already (repo and org), exclusive
 *   only if all of them are; a new scope is not exclusive, so `area/docs` and `area/api` can both stay;
 * - an unscoped label: never (Gitea ignores the flag there).
 */
export function createExclusive(name: string, sizeLabels: ReadonlySet<string>, existing: readonly Pick<GiteaLabel, 'name' | 'exclusive'>[]): boolean {
  const scope = labelScope(name);
  if (scope === undefined) return false;
  if (sizeLabels.has(name)) return true;
  const sameScope = existing.filter((l) => labelScope(l.name) === scope);
  return sameScope.length > 0 && sameScope.every((l) => l.exclusive === true);
}

/**
 * Creates or repairs the service's hook on a repo or an org, idempotently, and optionally the labels the
 * repo's triage config names. With `dryRun`, only reads. `secret` signs a created hook.
 */
export async function registerWebhook(gitea: GiteaApi, options: RegisterOptions, secret: string): Promise<RegisterReport> {
  const { target, dryRun } = options;
  // Every read before any write: a missing permission or a config that does not parse changes nothing.
  const hooks = await listHooksExplained(gitea, target);
  const labelPlan = options.ensureLabels && 'repo' in target ? await planLabels(gitea, target.repo) : undefined;
  const same = hooks.filter((h) => h.config?.url === options.url);
  const [existing, ...duplicates] = same;
  const report: RegisterReport = {
    target: targetText(target),
    dryRun,
    hook: { action: 'unchanged', changes: [], duplicatesRemoved: [], secretKept: false },
    notes: [...urlNotes(options.url), ...eventNotes(options.events)],
  };

  if (!existing) {
    report.hook.action = 'created';
    if (!dryRun) report.hook.id = (await gitea.createHook(target, desiredHook(options, secret))).id;
  } else if (options.rotateSecret || existing.type !== 'gitea') {
    // The secret cannot be read back, and Gitea 1.25's PATCH ignores `config.secret` (editHook applies only
    // url and content_type); a hook's type cannot be changed either: delete it and create it anew.
    report.hook.action = 're-created';
    report.hook.changes = options.rotateSecret ? ['secret replaced'] : [`type ${existing.type} → gitea`];
    report.hook.changes.push(...hookDifferences(existing, options));
    if (!dryRun) {
      await gitea.deleteHook(target, existing.id);
      report.hook.id = (await gitea.createHook(target, desiredHook(options, secret, existing))).id;
    }
  } else {
    report.hook.id = existing.id;
    report.hook.secretKept = true;
    report.hook.changes = hookDifferences(existing, options);
    if (report.hook.changes.length > 0) {
      report.hook.action = 'updated';
      if (!dryRun) {
        const { config, type: _type, ...rest } = desiredHook(options, secret, existing);
        // No `secret` in the PATCH: Gitea would ignore it (1.25), and it must not suggest a rotation happened.
        await gitea.editHook(target, existing.id, { ...rest, config: { url: config.url, content_type: config.content_type } });
      }
    }
  }
  for (const dup of duplicates) {
    report.hook.duplicatesRemoved.push(dup.id);
    if (!dryRun) await gitea.deleteHook(target, dup.id);
  }

  if (labelPlan) {
    const created: { name: string; exclusive: boolean; color: string }[] = [];
    for (const label of labelPlan.missing) {
      if (!dryRun) {
        await gitea.createRepoLabel(labelPlan.owner, labelPlan.repo, {
          ...label,
          description: `created by gitea-triage register-webhook from ${labelPlan.file}`,
        });
      }
      created.push(label);
    }
    report.labels = { file: labelPlan.file, created, existing: labelPlan.existing };
  }
  return report;
}

/** The report as lines for the operator. */
export function formatRegisterReport(report: RegisterReport, options: Pick<RegisterOptions, 'url' | 'events'>): string[] {
  const would = report.dryRun ? 'would be ' : '';
  const lines: string[] = [];
  const prefix = report.dryRun ? 'dry run: nothing written. ' : '';
  const id = report.hook.id !== undefined ? ` #${report.hook.id}` : '';
  const events = options.events.join(', ');
  const { action, changes } = report.hook;
  if (action === 'unchanged') {
    lines.push(`${prefix}${report.target}: hook${id} unchanged → ${options.url} (events: ${events}; active)`);
  } else {
    const detail = changes.length > 0 ? ` (${changes.join('; ')})` : ` (events: ${events}; active)`;
    lines.push(`${prefix}${report.target}: hook${id} ${would}${action} → ${options.url}${detail}`);
  }
  for (const dup of report.hook.duplicatesRemoved) {
    lines.push(`${report.target}: duplicate hook #${dup} to the same URL ${would || ''}deleted (it would deliver every event twice)`);
  }
  if (report.hook.secretKept) {
    lines.push('secret: the existing hook’s secret was left as it is (Gitea can neither show nor change it); --rotate-secret re-creates the hook with WEBHOOK_SECRET');
  } else if (action === 'created' || action === 're-created') {
    lines.push(`secret: the hook ${report.dryRun ? 'would sign' : 'signs'} with the first secret of WEBHOOK_SECRET`);
  }
  if (report.labels) {
    const { file, created, existing } = report.labels;
    if (created.length === 0) {
      lines.push(`labels: all ${existing.length} labels named in ${file} exist`);
    } else {
      const list = created.map((l) => `${l.name}${l.exclusive ? ' (exclusive)' : ''}`).join(', ');
      lines.push(`labels: ${created.length} ${would}created from ${file}: ${list}${existing.length ? `; ${existing.length} already existed` : ''}`);
    }
  }
  for (const note of report.notes) lines.push(`note: ${note}`);
  return lines;
}

/** The whole command: arguments, environment, Gitea, report. Resolves with the exit code. */
export async function registerWebhookMain(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: ToolIO,
): Promise<number> {
  const secrets: string[] = [];
  return runTool(
    REGISTER_TOOL,
    io,
    async () => {
      const options = parseUsage(() => parseRegisterArgs(argv, io));
      if (options === 'help') return 0;
      const config = loadToolConfig(env, [...GITEA_VARIABLES, 'WEBHOOK_SECRET']);
      secrets.push(config.giteaToken, ...config.webhookSecrets);
      const gitea = toolGiteaClient(config, createLogger({ tool: { verbose: options.verbose }, stream: io.stderr, redact: secrets }));
      try {
        const report = await registerWebhook(gitea, options, config.webhookSecrets[0] as string);
        for (const line of formatRegisterReport(report, options)) io.stdout.write(`${line}\n`);
      } finally {
        gitea.close();
      }
      return 0;
    },
    () => secrets,
  );
}
