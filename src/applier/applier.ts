import type { GiteaApi } from '../gitea/api.js';
import { isGiteaStatus } from '../gitea/errors.js';
import type { GiteaLabel } from '../gitea/types.js';
import type { Logger } from '../log/logger.js';
import type { Plan, PlannedChange } from '../triage/types.js';
import type { ChangeMeta, LabelChange } from './ownership.js';
import type { Fence, OwnershipStore } from '../store/api.js';

export interface ApplyMeta {
  /** The delivery the evaluation ran for (newest of the work item): recorded with every change. */
  delivery: string | null;
  configVersion: string | null;
  /** The bot's login, recorded as the user of rule changes. */
  botLogin?: string | undefined;
}

export interface ApplyRequest {
  owner: string;
  repo: string;
  number: number;
  /** The decision (`decide`): what to add and remove, and whose each change is. */
  plan: Plan;
  /** The repo's and its org's labels by name (the context): a plan names labels, Gitea takes ids. */
  labels: ReadonlyMap<string, { id: number }>;
  /**
   * The issue's labels as just re-read from Gitea (payloads are snapshots); when absent the applier
   * reads them (`GET /repos/{owner}/{repo}/issues/{index}/labels`).
   */
  current?: readonly GiteaLabel[];
  meta: ApplyMeta;
  log: Logger;
  /**
   * The subject's lease this plan was decided under: every ownership write, the intent before each
   * label request first, is refused once the lease is lost, so a stalled holder sends nothing.
   */
  fence?: Fence;
}

export interface ApplyResult {
  /** Labels this call added. */
  added: string[];
  /** Labels this call removed, including those Gitea dropped itself for an exclusive scope. */
  removed: string[];
  /** Label names on the issue afterwards. */
  labels: string[];
  /** Plan entries not carried out, with why (no label of that name in the repo or its org). */
  skipped: { label: string; reason: string }[];
  /** Labels sent but absent from Gitea's answer (deleted since the context was loaded?). */
  notApplied: string[];
}

/** One application in progress: the issue's labels before and after, and what was done. */
interface Run {
  req: ApplyRequest;
  full: string;
  current: ReadonlyMap<string, GiteaLabel>;
  after: Map<string, GiteaLabel>;
  /** What is recorded in the ownership store at the end, in order. */
  recorded: LabelChange[];
  meta: ChangeMeta;
}

/**
 * Carries out a plan made by `decide`: the minimal change, by label id, against the labels the issue
 * has now, and records each change as the plan says whose it is. It decides nothing: exclusive
 * scopes and label ownership are the decision's (src/triage/decide.ts). Applying the same plan to
 * the result changes nothing.
 */
export class LabelApplier {
  private readonly gitea: GiteaApi;
  private readonly store: OwnershipStore;

  constructor(options: { gitea: GiteaApi; store: OwnershipStore }) {
    this.gitea = options.gitea;
    this.store = options.store;
  }

  async apply(req: ApplyRequest): Promise<ApplyResult> {
    const started = performance.now();
    const { owner, repo, number, plan, meta, log } = req;
    const full = `${owner}/${repo}`;
    const currentLabels = req.current ?? (await this.gitea.getIssueLabels(owner, repo, number));
    const current = new Map(currentLabels.map((l) => [l.name, l]));
    const run: Run = { req, full, current, after: new Map(current), recorded: [], meta: { delivery: meta.delivery, configVersion: meta.configVersion } };
    const skipped: ApplyResult['skipped'] = [];

    // Additions the issue lacks, resolved to ids. Never send names: Gitea ignores unknown ones, and
    // accepts names at all only since 1.22 (routers/api/v1/repo/issue_label.go, `prepareForReplaceOrAdd`).
    const additions: { change: PlannedChange; id: number }[] = [];
    for (const change of plan.changes) {
      if (change.action !== 'add' || change.recordOnly || current.has(change.label)) continue;
      const label = req.labels.get(change.label);
      if (label) {
        additions.push({ change, id: label.id });
        continue;
      }
      const reason = 'no label of that name in the repo or its org';
      skipped.push({ label: change.label, reason });
      log.warn('label skipped', { repo: full, number, label: change.label, reason });
    }
    const notApplied = await this.writeAdditions(run, additions);
    for (const change of plan.changes) if (change.recordOnly) run.recorded.push(this.labelChange(run, change));
    const removed = await this.writeRemovals(run);

    await this.store.recordApplied(full, number, run.recorded, run.meta, req.fence);
    const added = run.recorded.filter((c) => c.action === 'added' && !current.has(c.label)).map((c) => c.label);
    const labels = [...run.after.keys()].sort();
    log.info('applied', { repo: full, number, added, removed, durationMs: Math.round(performance.now() - started) });
    return { added, removed, labels, skipped, notApplied };
  }

  /** One request for every addition; Gitea answers with the issue's labels afterwards. Returns those it did not take. */
  private async writeAdditions(run: Run, additions: readonly { change: PlannedChange; id: number }[]): Promise<string[]> {
    if (additions.length === 0) return [];
    const { owner, repo, number, log } = run.req;
    const changes = additions.map(({ change }) => this.labelChange(run, change));
    // Written before the POST: if the process dies before the answer is recorded, the next evaluation
    // finds the label on the issue and knows whose it is (src/evaluation/bookkeeping.ts).
    await this.store.intend(run.full, number, changes, run.meta, run.req.fence);
    const result = await this.gitea.addIssueLabels(owner, repo, number, additions.map((a) => a.id));
    run.after = new Map(result.map((l) => [l.name, l]));
    const notApplied: string[] = [];
    for (const change of changes) {
      if (run.after.has(change.label)) {
        run.recorded.push(change);
        continue;
      }
      notApplied.push(change.label);
      log.warn('label not applied by Gitea', { repo: run.full, number, label: change.label });
    }
    return notApplied;
  }

  /**
   * The plan's removals of labels the issue had. One Gitea already dropped, when an exclusive label of
   * its scope was added (models/issues/issue_label.go, `RemoveDuplicateExclusiveIssueLabels`), needs
   * no request; it is recorded all the same. Returns the removed labels.
   */
  private async writeRemovals(run: Run): Promise<string[]> {
    const { owner, repo, number, plan } = run.req;
    const removed: string[] = [];
    for (const planned of plan.changes) {
      if (planned.action !== 'remove' || planned.recordOnly || !run.current.has(planned.label)) continue;
      const change = this.labelChange(run, planned);
      const label = run.after.get(planned.label);
      if (label) {
        // As for additions: a crash after the DELETE must not make the removal look like a person's.
        await this.store.intend(run.full, number, [change], run.meta, run.req.fence);
        try {
          await this.gitea.removeIssueLabel(owner, repo, number, label.id);
        } catch (error) {
          // The label itself was deleted meanwhile (Gitea answers 422 "label does not exist" for an
          // unknown label id, 404 for a vanished issue-label link): it is off the issue either way.
          if (!isGiteaStatus(error, 422) && !isGiteaStatus(error, 404)) throw error;
        }
        run.after.delete(planned.label);
      }
      removed.push(planned.label);
      run.recorded.push(change);
    }
    return removed;
  }

  /** The ownership record of a planned change: a rule's is the bot's, a command's the commenter's. */
  private labelChange(run: Run, c: PlannedChange): LabelChange {
    return {
      label: c.label,
      action: c.action === 'add' ? 'added' : 'removed',
      kind: c.by,
      user: c.by === 'command' ? (c.user ?? null) : (run.req.meta.botLogin ?? null),
      rule: c.rule,
      ...(c.evidence !== undefined ? { evidence: c.evidence } : {}),
    };
  }
}
