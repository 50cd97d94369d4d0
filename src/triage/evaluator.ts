import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { LabelApplier } from '../applier/applier.js';
import { type LabelChange, OwnershipStore } from '../applier/ownership.js';
import type { Config } from '../config/config.js';
import { ContextLoader, type RepoContext } from '../context/context.js';
import type { GiteaApi } from '../gitea/api.js';
import { GiteaError } from '../gitea/errors.js';
import type { GiteaIssue, GiteaPermission } from '../gitea/types.js';
import type { NewDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import { type DeliveryInput, type EvaluationResult, type Evaluator, PermanentError, type WorkItem } from '../scheduler/types.js';
import { repoOf } from '../subject.js';
import { parseCommands } from './commands.js';
import { commandSource } from './command-source.js';
import { parseTriageConfig } from './config.js';
import { decide } from './decide.js';
import type { AllowedCommand, SubjectState, TriageConfig } from './types.js';

export interface TriageEvaluatorOptions {
  gitea: GiteaApi;
  context: ContextLoader;
  store: OwnershipStore;
  /** The bot's login once known (`GET /user`): its own deliveries teach the label set, never count as a person's. */
  botLogin: () => string | undefined;
  /** Decide and log, write nothing to Gitea. */
  dryRun: boolean;
  log: Logger;
  /** How long a commenter's permission is reused (default 60 s). */
  permissionTtlMs?: number;
  now?: () => number;
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

const LABEL_ACTIONS = new Set(['label_updated', 'label_cleared']);
const RANK: Record<GiteaPermission, number> = { none: 0, read: 1, write: 2, admin: 3, owner: 4 };
const MIN_RANK = { read: 1, write: 2, admin: 3 } as const;

/** True for a push to the repository's default branch (the only branch the context is read from). */
export function isDefaultBranchPush(payload: Obj): boolean {
  const repository = payload.repository;
  if (!isObject(repository)) return false;
  const branch = str(repository.default_branch);
  return branch !== undefined && payload.ref === `refs/heads/${branch}`;
}

/** Label names of an issue or pull request payload (`label_updated` carries the full set, no diff). */
export function payloadLabels(payload: Obj): string[] | undefined {
  const subject = isObject(payload.pull_request) ? payload.pull_request : isObject(payload.issue) ? payload.issue : undefined;
  if (!subject) return undefined;
  if (subject.labels === null) return []; // Gitea sends null for "no labels" in some shapes
  if (!Array.isArray(subject.labels)) return undefined;
  return subject.labels.flatMap((l) => (isObject(l) && typeof l.name === 'string' ? [l.name] : []));
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
  private readonly permissionTtlMs: number;
  private readonly now: () => number;
  private readonly permissions = new Map<string, { permission: GiteaPermission; at: number }>();

  constructor(options: TriageEvaluatorOptions) {
    this.gitea = options.gitea;
    this.context = options.context;
    this.store = options.store;
    this.botLogin = options.botLogin;
    this.dryRun = options.dryRun;
    this.log = options.log;
    this.permissionTtlMs = options.permissionTtlMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.applier = new LabelApplier({ gitea: options.gitea, store: options.store });
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
        if (labels) this.store.setKnown(delivery.repo, delivery.number, delivery.action === 'label_cleared' ? [] : labels, delivery.updatedAt);
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
    const context = await this.context.get(owner, repo, log);
    if (context.source === 'none') return { added: [], removed: [], note: 'no triage config' };
    if (context.problem || !context.config) {
      const p = context.problem;
      const where = p ? `${p.file}${p.line !== undefined ? `:${p.line}` : ''}` : context.file;
      return { added: [], removed: [], note: `triage config problem (${where}): ${p?.message ?? 'unusable'}` };
    }
    const config = context.config;
    const bot = this.botLogin();

    // Payloads are snapshots and deliveries arrive out of order: read the issue as it is now.
    const fetched = await this.gitea.getIssue(owner, repo, number);
    const issue = { ...fetched, labels: labelsOf(fetched) };
    this.bookkeeping(full, number, item, issue, bot, log);
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

    const commands = config.commands.enabled ? await this.allowedCommands(owner, repo, number, item, config, bot, log) : [];
    const exclusiveLabels = new Set([...context.labels.values()].filter((l) => l.exclusive).map((l) => l.name));
    const plan = decide(state, { config, templates: context.templates, exclusiveLabels }, this.store.ownership(full, number), commands);

    if (this.dryRun) {
      log.info('dry-run decision', { repo: full, number, added: plan.add, removed: plan.remove, reasons: plan.reasons });
      return { added: plan.add, removed: plan.remove, note: 'dry run', reasons: plan.reasons };
    }
    const result = await this.applier.apply(owner, repo, number, plan, context, issue.labels, {
      delivery: item.newest.id,
      configVersion: config.version,
      botLogin: bot,
      commands,
    }, log);
    this.store.setKnown(full, number, result.labels, issue.updated_at);
    // A label id Gitea did not take was probably deleted since the context was loaded.
    if (result.notApplied.length > 0) this.context.invalidate(full);
    return { added: result.added, removed: result.removed, reasons: plan.reasons };
  }

  /**
   * Learns who changed which label since the last evaluation. A person's `label_updated` carries the
   * issue's full label set (no diff): diff it against the last known set, keeping only what is still
   * true now (a stale snapshot must not blame a person for the bot's later write). A `label_cleared`
   * lists what the person removed. Then any label the service or a command owned, or that the last
   * known set had, that is gone now and that the service did not remove, was removed by a person (the
   * sender of a label delivery of this item that lacks it, else unknown — made theirs when their
   * delivery comes later: the issue sidebar sends one `label_updated` per label, out of order).
   */
  private bookkeeping(full: string, number: number, item: WorkItem, issue: GiteaIssue, bot: string | undefined, log: Logger): void {
    const now = new Set(issue.labels.map((l) => l.name));
    // Writes sent just before a crash, their answer never recorded: an addition on the issue now (a
    // removal off it) was applied by Gitea, for the bot or the command's author, not by a person.
    const interrupted = this.store.pending(full, number);
    for (const { change, meta } of interrupted) {
      if (now.has(change.label) === (change.action === 'added')) this.store.record(full, number, [change], meta);
    }
    if (interrupted.length > 0) this.store.clearPending(full, number);
    const knownAtStart = this.store.known(full, number);
    const owned = this.store.owned(full, number);
    const ruleOwned = new Set(owned.filter((o) => o.kind === 'rule').map((o) => o.label));
    const changes: LabelChange[] = [];
    const seen = new Set<string>();
    const personLabelDeliveries: { delivery: DeliveryInput; labels: string[] }[] = [];

    for (const delivery of item.deliveries) {
      if (delivery.action === null || !LABEL_ACTIONS.has(delivery.action)) continue;
      if (!delivery.sender || delivery.sender === bot) continue;
      const labels = payloadLabels(delivery.payload);
      if (!labels) continue;
      if (delivery.action === 'label_cleared') {
        // Lists the labels from before the clear (models/issues/issue_label.go clearIssueLabels): the person removed each.
        for (const name of labels) {
          if (now.has(name) || seen.has(name)) continue;
          seen.add(name);
          changes.push({ label: name, action: 'removed', kind: 'person', user: delivery.sender });
        }
        personLabelDeliveries.push({ delivery, labels: [] });
        this.store.setKnown(full, number, [], delivery.updatedAt);
        continue;
      }
      personLabelDeliveries.push({ delivery, labels });
      this.attributeUnknownRemovals(full, number, delivery, labels, now, knownAtStart?.updatedAt);
      const known = this.store.known(full, number);
      if (known && known.updatedAt && delivery.updatedAt && Date.parse(delivery.updatedAt) < Date.parse(known.updatedAt)) {
        log.debug('label set older than the known one: not diffed', { delivery: delivery.id, repo: full, number });
        continue;
      }
      if (known) {
        const before = new Set(known.labels);
        const after = new Set(labels);
        for (const name of after) {
          if (before.has(name) || !now.has(name) || ruleOwned.has(name) || seen.has(name)) continue;
          seen.add(name);
          changes.push({ label: name, action: 'added', kind: 'person', user: delivery.sender });
        }
        for (const name of before) {
          if (after.has(name) || now.has(name) || seen.has(name)) continue;
          seen.add(name);
          changes.push({ label: name, action: 'removed', kind: 'person', user: delivery.sender });
        }
      }
      this.store.setKnown(full, number, labels, delivery.updatedAt);
    }

    changes.push(...this.goneUnexplained(item, { now, seen, owned, knownAtStart, interrupted, personLabelDeliveries }));

    if (changes.length > 0) {
      this.store.record(full, number, changes, { delivery: item.newest.id });
      for (const c of changes) {
        log.info(c.action === 'added' ? 'label added by a person' : 'label removed by a person', {
          repo: full,
          number,
          label: c.label,
          user: c.user ?? 'unknown',
        });
      }
    }
    this.store.setKnown(full, number, [...now], issue.updated_at);
  }

  /**
   * Labels gone now that this item's diffs do not explain: an owned one, or one the last known set had
   * (its delivery may come later: one `label_updated` per label, out of order). Removed by the sender of a
   * label delivery of this item that lacks it, else by an unknown hand. Only a known set recorded before
   * this item's last delivery came in says what the issue had then (one recorded later already took these
   * deliveries in, e.g. `replay --local` observing the bot's echo first).
   */
  private goneUnexplained(
    item: WorkItem,
    facts: {
      now: Set<string>;
      seen: Set<string>;
      owned: { label: string }[];
      knownAtStart: { labels: string[]; recordedAt: number } | undefined;
      interrupted: { change: LabelChange }[];
      personLabelDeliveries: { delivery: DeliveryInput; labels: string[] }[];
    },
  ): LabelChange[] {
    const { now, seen, owned, knownAtStart, interrupted, personLabelDeliveries } = facts;
    const writes = new Set(interrupted.map((i) => i.change.label));
    const lastIn = Math.max(...item.deliveries.map((d) => d.receivedAt));
    const known = knownAtStart && knownAtStart.recordedAt <= lastIn ? knownAtStart.labels : [];
    const out: LabelChange[] = [];
    for (const label of new Set([...owned.map((o) => o.label), ...known])) {
      if (now.has(label) || seen.has(label) || writes.has(label)) continue;
      const by = personLabelDeliveries.findLast((d) => !d.labels.includes(label));
      out.push({ label, action: 'removed', kind: by ? 'person' : 'unknown', user: by?.delivery.sender ?? null });
    }
    return out;
  }

  /**
   * A removal recorded as `unknown` (the issue was read without the label before the person's delivery
   * came) belongs to the sender of a person's label set that lacks it and is no newer than that read.
   */
  private attributeUnknownRemovals(full: string, number: number, delivery: DeliveryInput, labels: string[], now: Set<string>, readAt: string | null | undefined): void {
    if (!delivery.sender || !readAt || !delivery.updatedAt || Date.parse(delivery.updatedAt) > Date.parse(readAt)) return;
    const explained = this.store.unknownRemovals(full, number).filter((l) => !labels.includes(l) && !now.has(l));
    this.store.attributeRemovals(full, number, explained, delivery.sender, delivery.id);
  }

  /** `/label` commands of the item's new or edited comments, checked against the commenter's permission. */
  private async allowedCommands(
    owner: string,
    repo: string,
    number: number,
    item: WorkItem,
    config: TriageConfig,
    bot: string | undefined,
    log: Logger,
  ): Promise<AllowedCommand[]> {
    const full = `${owner}/${repo}`;
    const allowed: AllowedCommand[] = [];
    for (const delivery of item.deliveries) {
      // A comment's or a review's body (./command-source.ts).
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

      const verdict = await this.permission(owner, repo, user, config.commands.minPermission, log);
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
        if (commentId !== undefined && this.store.replied(full, commentId, version)) continue;
        const list = commands.map((c) => `\`${commandText(c)}\``).join(', ');
        try {
          await this.gitea.createComment(owner, repo, number, `@${user} ${list} was not applied: ${verdict.reason}.`);
          if (commentId !== undefined) this.store.markReplied(full, commentId, version);
        } catch (error) {
          // A courtesy: a locked issue or a hiccup must not hold up the triage of the issue.
          log.warn('command reply failed', { repo: full, number, user, error: errorText(error) });
        }
      }
    }
    return allowed;
  }

  /** Drops expired permissions (the cache is per repo and user: bounded by who comments). */
  private sweepPermissions(): void {
    const now = this.now();
    for (const [key, entry] of this.permissions) if (now - entry.at >= this.permissionTtlMs) this.permissions.delete(key);
  }

  private async permission(
    owner: string,
    repo: string,
    user: string,
    min: 'read' | 'write' | 'admin',
    log: Logger,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    const key = `${owner}/${repo}|${user}`.toLowerCase();
    const cached = this.permissions.get(key);
    let permission: GiteaPermission;
    if (cached && this.now() - cached.at < this.permissionTtlMs) {
      permission = cached.permission;
    } else {
      try {
        permission = await this.gitea.getPermission(owner, repo, user);
      } catch (error) {
        if (error instanceof GiteaError && error.status === 403) {
          // Gitea answers the permission endpoint only to a repo admin (DESIGN, "Commands").
          log.warn('commands need the bot to be a repo admin', { repo: `${owner}/${repo}`, user, error: error.message });
          return { ok: false, reason: "the bot cannot check permissions here (it needs admin on the repository)" };
        }
        if (error instanceof GiteaError && error.status === 404) {
          permission = 'none';
        } else {
          throw error;
        }
      }
      if (this.permissions.size >= 10_000) this.sweepPermissions();
      this.permissions.set(key, { permission, at: this.now() });
    }
    if ((RANK[permission] ?? 0) >= MIN_RANK[min]) return { ok: true };
    return { ok: false, reason: `it needs ${min} permission on this repository (${user} has ${permission})` };
  }
}

function labelsOf(issue: GiteaIssue): GiteaIssue['labels'] {
  return Array.isArray(issue.labels) ? issue.labels : [];
}

function errorText(error: unknown): string {
  // Not `instanceof Error`: errors from Node's own modules can come from another realm (e.g. under jest).
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') {
    return (error as { message: string }).message;
  }
  return String(error);
}

export interface TriageParts {
  /** The journal: its better-sqlite3 database also holds the ownership tables. */
  journal: { db: Database.Database };
  gitea: GiteaApi;
  log: Logger;
  config: Config;
  /** The bot's login when the caller knows it already; otherwise `GET /user` is asked (once). */
  botLogin?: () => string | undefined;
}

/**
 * Builds the triage evaluator from the service's parts: the context cache (`CONTEXT_TTL_MS`, and
 * `TRIAGE_CONFIG` read and checked here, so a bad default stops the start), the ownership store in
 * the journal's database, and the bot's identity.
 * @throws Error naming `TRIAGE_CONFIG` when its file cannot be read or does not parse.
 */
export function createTriageEvaluator(parts: TriageParts): TriageEvaluator {
  const { journal, gitea, log, config } = parts;
  let defaultConfig: { text: string; file: string } | undefined;
  if (config.triageConfigPath !== undefined) {
    const file = config.triageConfigPath;
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new Error(`TRIAGE_CONFIG: cannot read ${file}: ${errorText(error)}`);
    }
    const parsed = parseTriageConfig(text, file);
    if ('problem' in parsed) {
      const p = parsed.problem;
      throw new Error(`TRIAGE_CONFIG: ${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}`);
    }
    defaultConfig = { text, file };
  }

  const context = new ContextLoader({
    gitea,
    ttlMs: config.contextTtlMs,
    log,
    ...(defaultConfig ? { defaultConfig } : {}),
  });
  const store = new OwnershipStore(journal.db);
  return new TriageEvaluator({
    gitea,
    context,
    store,
    botLogin: parts.botLogin ?? cachedBotLogin(gitea, log),
    dryRun: config.dryRun,
    log,
  });
}

/** The bot's login from `GET /user`, asked at once and again (in the background) while unknown. */
function cachedBotLogin(gitea: GiteaApi, log: Logger): () => string | undefined {
  let login: string | undefined;
  let asking = false;
  const ask = () => {
    if (asking) return;
    asking = true;
    gitea.getCurrentUser().then(
      (user) => {
        login = user.login;
        asking = false;
      },
      (error: unknown) => {
        asking = false;
        log.debug('bot identity not known yet', { error: errorText(error) });
      },
    );
  };
  ask();
  return () => {
    if (login === undefined) ask();
    return login;
  };
}
