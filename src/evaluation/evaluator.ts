import type { LabelApplier } from '../applier/applier.js';
import { listedSnapshot } from '../backfill/snapshot.js';
import { errorText } from '../errors.js';
import type { ContextLoader } from '../context/context.js';
import type { GiteaApi } from '../gitea/api.js';
import { GiteaError } from '../gitea/errors.js';
import type { GiteaIssue } from '../gitea/types.js';
import type { NewDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import { type EvaluationResult, type Evaluator, PermanentError, type WorkItem } from '../scheduler/types.js';
import { repoOf } from '../subject.js';
import { parseCommands } from '../triage/commands.js';
import { commandSource } from '../triage/command-source.js';
import { decide } from '../triage/decide.js';
import type { AllowedCommand, SubjectState, TriageConfig } from '../triage/types.js';
import { learnLabelChanges } from './bookkeeping.js';
import { isDefaultBranchPush, LABEL_ACTIONS, payloadLabels } from './payload.js';
import { PermissionCache } from './permissions.js';
import type { OwnershipStore } from '../store/api.js';
import { fencedOwnership } from '../store/fenced.js';

export interface TriageEvaluatorOptions {
  gitea: GiteaApi;
  context: ContextLoader;
  store: OwnershipStore;
  /** Carries out the decision's plan (built beside the evaluator where the service is composed). */
  applier: LabelApplier;
  /** The bot's login once known (`GET /user`): its own deliveries teach the label set, never count as a person's. */
  botLogin: () => string | undefined;
  /** Decide and log, write nothing to Gitea. */
  dryRun: boolean;
  log: Logger;
  /** How long a commenter's permission is reused (default 60 s). */
  permissionTtlMs?: number;
  now?: () => number;
}

/** A refused `/label` command as the commenter would read it. */
function commandText(c: { add: string[]; remove: string[] }): string {
  return ['/label', ...c.add, ...c.remove.map((r) => `-${r}`)].join(' ');
}

function configNeedsFiles(config: TriageConfig): boolean {
  if (config.size) return true;
  for (const rule of config.labels.values()) if (rule.files && rule.files.length > 0) return true;
  return false;
}

/**
 * The triage of one issue or pull request: context, bookkeeping of who changed which label,
 * commands checked against Gitea permissions, the pure decision, then the applier.
 */
export class TriageEvaluator implements Evaluator {
  private readonly gitea: GiteaApi;
  private readonly context: ContextLoader;
  private readonly store: OwnershipStore;
  private readonly botLogin: () => string | undefined;
  private readonly dryRun: boolean;
  private readonly log: Logger;
  private readonly applier: LabelApplier;
  private readonly permissions: PermissionCache;
  private readonly now: () => number;
  /** Repositories (`owner/name`, lower-cased) whose last context had a usable config: bounded by the repos seen. */
  private readonly triaged = new Set<string>();

  constructor(options: TriageEvaluatorOptions) {
    this.gitea = options.gitea;
    this.context = options.context;
    this.store = options.store;
    this.botLogin = options.botLogin;
    this.dryRun = options.dryRun;
    this.log = options.log;
    this.applier = options.applier;
    this.now = options.now ?? Date.now;
    this.permissions = new PermissionCache(options.gitea, options.permissionTtlMs ?? 60_000, this.now);
  }

  observe(delivery: NewDelivery, payload: Record<string, unknown>): void {
    try {
      if (delivery.event === 'push') {
        // Push payloads list at most 5 commits ([ui] FEED_MAX_COMMIT_NUM): their file lists cannot
        // tell whether the config or a template changed, so any push to the default branch drops the context.
        if (delivery.repo && isDefaultBranchPush(payload)) this.context.invalidate(delivery.repo);
        return;
      }
      const bot = this.botLogin();
      if (
        delivery.action !== null &&
        LABEL_ACTIONS.has(delivery.action) &&
        bot !== undefined &&
        delivery.sender === bot &&
        delivery.repo &&
        delivery.number !== null
      ) {
        // The echo of the bot's own write: never evaluated, but it is the issue's label set now.
        const labels = payloadLabels(payload);
        // Not awaited (observe is synchronous); an older set never replaces a newer one anyway.
        if (labels) {
          this.store
            .setKnown(delivery.repo, delivery.number, delivery.action === 'label_cleared' ? [] : labels, delivery.updatedAt)
            .catch((error: unknown) => this.log.warn('observe failed', { delivery: delivery.id, error: errorText(error) }));
        }
      }
    } catch (error) {
      this.log.warn('observe failed', { delivery: delivery.id, error: errorText(error) });
    }
  }

  prepare(owner: string, repo: string, log: Logger): void {
    // A failed load is dropped from the cache: the first evaluation of the repo loads it again and reports the error.
    this.context.get(owner, repo, log).catch(() => undefined);
  }

  async evaluate(item: WorkItem, log: Logger): Promise<EvaluationResult> {
    const { subject } = item;
    if (subject.kind === 'push') {
      if (isDefaultBranchPush(item.newest.payload)) this.context.invalidate(repoOf(subject));
      return { added: [], removed: [], note: 'push' };
    }
    try {
      return await this.evaluateIssue(item, subject.owner, subject.repo, subject.number, log);
    } catch (error) {
      // Gitea answered and refused (deleted issue, lost access): retrying the same calls cannot help.
      if (error instanceof GiteaError && !error.transient) throw new PermanentError(error.message, { cause: error });
      throw error;
    }
  }

  private async evaluateIssue(item: WorkItem, owner: string, repo: string, number: number, log: Logger): Promise<EvaluationResult> {
    const full = `${owner}/${repo}`;
    // Under the subject's lease, every ownership write carries its fence (docs/architecture.md, "The store").
    const store = item.fence ? fencedOwnership(this.store, item.fence) : this.store;
    // Payloads are snapshots and deliveries arrive out of order: read the issue as it is now, unless a
    // sweep has just listed it (the listing is what the read would return: see listedSnapshot). In a
    // repository known to be triaged the read starts with the context, not after it: a context loaded
    // again (TTL, a push) costs the delivery one round trip instead of three.
    const snapshot = listedSnapshot(item, await store.known(full, number), this.now());
    const early = snapshot === undefined && this.triaged.has(full.toLowerCase()) ? this.gitea.getIssue(owner, repo, number) : undefined;
    early?.catch(() => undefined); // awaited below; dropped if the context now says not to triage
    const context = await this.context.get(owner, repo, log);
    if (context.source === 'none') {
      this.triaged.delete(full.toLowerCase());
      return { added: [], removed: [], note: 'no triage config' };
    }
    if (context.problem || !context.config) {
      const p = context.problem;
      const where = p ? `${p.file}${p.line !== undefined ? `:${p.line}` : ''}` : context.file;
      return { added: [], removed: [], note: `triage config problem (${where}): ${p?.message ?? 'unusable'}` };
    }
    const config = context.config;
    const bot = this.botLogin();
    this.triaged.add(full.toLowerCase());

    const fetched = snapshot ?? (await (early ?? this.gitea.getIssue(owner, repo, number)));
    const issue = { ...fetched, labels: labelsOf(fetched) };
    await learnLabelChanges(store, { repo: full, number, item, labelsNow: issue.labels.map((l) => l.name), updatedAt: issue.updated_at, bot }, log);
    if (issue.state === 'closed') return { added: [], removed: [], note: 'closed' };

    const kind = issue.pull_request ? 'pull' : 'issue';
    const state: SubjectState = {
      kind,
      number,
      title: issue.title ?? '',
      body: issue.body ?? '',
      labels: issue.labels.map((l) => l.name),
    };
    if (kind === 'pull' && configNeedsFiles(config)) {
      const files = await this.gitea.listPullFiles(owner, repo, number);
      // A rename carries `previous_filename` (Gitea's ChangedFile): a `files:` glob matches either name.
      state.files = files.map((f) => ({
        filename: f.filename,
        additions: f.additions,
        deletions: f.deletions,
        ...(f.previous_filename ? { previousFilename: f.previous_filename } : {}),
      }));
    }

    const commands = config.commands.enabled ? await this.allowedCommands({ owner, repo, number, item, config, bot, store }, log) : [];
    const exclusiveLabels = new Set([...context.labels.values()].filter((l) => l.exclusive).map((l) => l.name));
    const plan = decide(state, { config, templates: context.templates, exclusiveLabels }, await store.ownership(full, number), commands);

    if (this.dryRun) {
      log.info('dry-run decision', { repo: full, number, added: plan.add, removed: plan.remove, reasons: plan.reasons });
      return { added: plan.add, removed: plan.remove, note: 'dry run', reasons: plan.reasons };
    }
    const result = await this.applier.apply({
      owner,
      repo,
      number,
      plan,
      labels: context.labels,
      current: issue.labels,
      meta: { delivery: item.newest.id, configVersion: config.version, botLogin: bot },
      log,
      ...(item.fence ? { fence: item.fence } : {}),
    });
    await store.setKnown(full, number, result.labels, issue.updated_at);
    // A label id Gitea did not take was probably deleted since the context was loaded.
    if (result.notApplied.length > 0) this.context.invalidate(full);
    return { added: result.added, removed: result.removed, reasons: plan.reasons };
  }

  /** `/label` commands of the item's new or edited comments, checked against the commenter's permission. */
  private async allowedCommands(
    at: { owner: string; repo: string; number: number; item: WorkItem; config: TriageConfig; bot: string | undefined; store: OwnershipStore },
    log: Logger,
  ): Promise<AllowedCommand[]> {
    const { owner, repo, number, item, config, bot, store } = at;
    const full = `${owner}/${repo}`;
    const allowed: AllowedCommand[] = [];
    for (const delivery of item.deliveries) {
      // A comment's or a review's body (triage/command-source.ts).
      const source = commandSource(delivery);
      const user = source?.user;
      if (!source || !user || user === bot) continue;
      let commands = parseCommands(source.body);
      if (source.previousBody !== undefined) {
        // An edit re-runs only the commands it introduced, not those the comment already had.
        const before = new Set(parseCommands(source.previousBody).map((c) => commandText(c)));
        commands = commands.filter((c) => !before.has(commandText(c)));
      }
      if (commands.length === 0) continue;

      const verdict = await this.permissions.check(owner, repo, user, config.commands.minPermission, log);
      if (verdict.ok) {
        for (const c of commands) allowed.push({ user, add: c.add, remove: c.remove });
        continue;
      }
      for (const c of commands) {
        log.info('command refused', { repo: full, number, user, command: commandText(c), reason: verdict.reason, delivery: delivery.id });
      }
      if (config.commands.reply && !this.dryRun) {
        const commentId = source.commentId;
        const version = source.version ?? delivery.id;
        if (commentId !== undefined && (await store.replied(full, commentId, version))) continue;
        const list = commands.map((c) => `\`${commandText(c)}\``).join(', ');
        try {
          await this.gitea.createComment(owner, repo, number, `@${user} ${list} was not applied: ${verdict.reason}.`);
          if (commentId !== undefined) await store.markReplied(full, commentId, version);
        } catch (error) {
          // A courtesy: a locked issue or a hiccup must not hold up the triage of the issue.
          log.warn('command reply failed', { repo: full, number, user, error: errorText(error) });
        }
      }
    }
    return allowed;
  }
}

function labelsOf(issue: GiteaIssue): GiteaIssue['labels'] {
  return Array.isArray(issue.labels) ? issue.labels : [];
}
