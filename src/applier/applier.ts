import type { RepoContext } from '../context/context.js';
import type { GiteaApi } from '../gitea/api.js';
import { isGiteaStatus } from '../gitea/errors.js';
import type { GiteaLabel } from '../gitea/types.js';
import type { Logger } from '../log/logger.js';
import type { AllowedCommand, Plan } from '../triage/types.js';
import type { LabelChange, OwnershipStore } from './ownership.js';

export interface ApplyMeta {
  /** The delivery the evaluation ran for (newest of the work item): recorded with every change. */
  delivery: string | null;
  configVersion: string | null;
  /** The bot's login, recorded as the user of rule changes. */
  botLogin?: string | undefined;
  /** The commands the plan carries out: who asked for which label. */
  commands?: readonly AllowedCommand[];
}

export interface ApplyResult {
  /** Labels this call added. */
  added: string[];
  /** Labels this call removed, including those Gitea dropped itself for an exclusive scope. */
  removed: string[];
  /** Label names on the issue afterwards. */
  labels: string[];
  /** Plan entries not carried out, with why (unknown label, second label of a scope, …). */
  skipped: { label: string; reason: string }[];
  /** Labels sent but absent from Gitea's answer (deleted since the context was loaded?). */
  notApplied: string[];
}

/** `scope/name` → `scope` (up to the last `/`), as Gitea scopes exclusive labels (`Label.ExclusiveScope`). */
export function labelScope(name: string): string | undefined {
  const slash = name.lastIndexOf('/');
  return slash > 0 && slash < name.length - 1 ? name.slice(0, slash) : undefined;
}

/**
 * Turns a plan into Gitea calls: the minimal change, by label id, against the labels the issue
 * has now. Applying the same plan to the result changes nothing. Records who owns what.
 */
export class LabelApplier {
  private readonly gitea: GiteaApi;
  private readonly store: OwnershipStore;

  constructor(options: { gitea: GiteaApi; store: OwnershipStore }) {
    this.gitea = options.gitea;
    this.store = options.store;
  }

  /**
   * @param currentLabels the issue's labels as just re-read from Gitea (payloads are snapshots).
   */
  async apply(
    owner: string,
    repo: string,
    number: number,
    plan: Plan,
    context: RepoContext,
    currentLabels: readonly GiteaLabel[],
    meta: ApplyMeta,
    log: Logger,
  ): Promise<ApplyResult> {
    const started = performance.now();
    const full = `${owner}/${repo}`;
    const current = new Map(currentLabels.map((l) => [l.name, l]));
    const byCommand = new Set(plan.addedByCommand);
    const commandUser = commandUsers(meta.commands ?? []);
    const botOwned = this.store.ownership(full, number).botOwned;
    const skipped: ApplyResult['skipped'] = [];
    const skip = (label: string, reason: string) => {
      skipped.push({ label, reason });
      log.warn('label skipped', { repo: full, number, label, reason });
    };

    // --- removals: only labels the issue has now; their id comes from the issue itself ---
    const removals = plan.remove.filter((name) => current.has(name));
    const removing = new Set(removals);

    // --- additions: resolved to ids, at most one per exclusive scope ---
    const additions: { name: string; id: number }[] = [];
    const scopesTaken = new Map<string, string>();
    // Command adds first: a person's explicit choice wins a scope over a rule's.
    const ordered = [...plan.add.filter((n) => byCommand.has(n)), ...plan.add.filter((n) => !byCommand.has(n))];
    for (const name of ordered) {
      if (current.has(name)) continue;
      const label = context.labels.get(name);
      if (!label) {
        // Never send names: Gitea ignores unknown ones, and accepts names at all only since 1.22.
        skip(name, 'no label of that name in the repo or its org');
        continue;
      }
      const scope = label.exclusive ? labelScope(name) : undefined;
      if (scope !== undefined) {
        const taken = scopesTaken.get(scope);
        if (taken !== undefined) {
          // Gitea keeps one label per exclusive scope (of several sent, the alphabetically last).
          skip(name, `exclusive scope ${scope} already gets ${taken}`);
          continue;
        }
        if (!byCommand.has(name)) {
          // Adding it would make Gitea drop the scope's current label: never a person's label for a rule.
          const holder = [...current.values()].find(
            (l) => l.exclusive && labelScope(l.name) === scope && !removing.has(l.name) && !botOwned.has(l.name),
          );
          if (holder) {
            skip(name, `exclusive scope ${scope} holds ${holder.name}, which a person set`);
            continue;
          }
        }
        scopesTaken.set(scope, name);
      }
      additions.push({ name, id: label.id });
    }

    let after = new Map(current);
    const changes: LabelChange[] = [];
    const notApplied: string[] = [];
    const ruleOf = (name: string, action: 'add' | 'remove') =>
      plan.reasons.find((r) => r.label === name && r.action === action);

    if (additions.length > 0) {
      // Written before the POST: if the process dies before the answer is recorded, the next evaluation
      // finds the label on the issue and knows whose it is (see bookkeeping in the evaluator).
      await this.store.intend(full, number, additions.map(({ name }) => {
        const reason = ruleOf(name, 'add');
        return byCommand.has(name)
          ? { label: name, action: 'added' as const, kind: 'command' as const, user: commandUser.get(name) ?? null, rule: 'command' }
          : { label: name, action: 'added' as const, kind: 'rule' as const, user: meta.botLogin ?? null, ...(reason ? { rule: reason.rule, evidence: reason.evidence } : {}) };
      }), { delivery: meta.delivery, configVersion: meta.configVersion });
      // One request for every addition; Gitea answers with the issue's labels afterwards.
      const result = await this.gitea.addIssueLabels(owner, repo, number, additions.map((a) => a.id));
      after = new Map(result.map((l) => [l.name, l]));
      for (const { name } of additions) {
        if (!after.has(name)) {
          notApplied.push(name);
          log.warn('label not applied by Gitea', { repo: full, number, label: name });
          continue;
        }
        if (byCommand.has(name)) {
          changes.push({ label: name, action: 'added', kind: 'command', user: commandUser.get(name) ?? null, rule: 'command' });
        } else {
          const reason = ruleOf(name, 'add');
          changes.push({
            label: name,
            action: 'added',
            kind: 'rule',
            user: meta.botLogin ?? null,
            ...(reason ? { rule: reason.rule, evidence: reason.evidence } : {}),
          });
        }
      }
    }

    // A command asking for a label the rules had added makes it the person's: no rule removes it now.
    for (const name of plan.addedByCommand) {
      if (!current.has(name) || !botOwned.has(name) || additions.some((a) => a.name === name)) continue;
      changes.push({ label: name, action: 'added', kind: 'command', user: commandUser.get(name) ?? null, rule: 'command', evidence: 'already there' });
    }
    // A command removing a label that is not there: nothing to send, but the person wants it off,
    // so it is recorded as their removal (a rule does not add it later).
    for (const name of plan.keptOffByCommand ?? []) {
      if (current.has(name)) continue;
      changes.push({ label: name, action: 'removed', kind: 'command', user: commandUser.get(name) ?? null, rule: 'command', evidence: 'not on the issue, kept off' });
    }

    const removed: string[] = [];
    // Labels Gitea dropped itself when an exclusive label of their scope was added.
    // (Only those: a label missing for another reason was changed by someone else meanwhile, and
    // the next evaluation's bookkeeping will see it.)
    for (const [name, label] of current) {
      if (after.has(name) || removing.has(name) || !label.exclusive) continue;
      const cause = additions.find((a) => labelScope(a.name) === labelScope(name));
      if (!cause) continue;
      removed.push(name);
      const kind = byCommand.has(cause.name) ? 'command' : 'rule';
      changes.push({
        label: name,
        action: 'removed',
        kind,
        user: kind === 'command' ? (commandUser.get(cause.name) ?? null) : (meta.botLogin ?? null),
        rule: kind === 'command' ? 'command' : 'exclusive scope',
        evidence: `replaced by ${cause.name}`,
      });
    }

    for (const name of removals) {
      const reason = ruleOf(name, 'remove');
      const isCommand = reason?.rule === 'command' || commandRemoves(meta.commands ?? []).has(name);
      const change: LabelChange = {
        label: name,
        action: 'removed',
        kind: isCommand ? 'command' : 'rule',
        user: isCommand ? (commandUser.get(name) ?? null) : (meta.botLogin ?? null),
        ...(reason ? { rule: reason.rule, evidence: reason.evidence } : isCommand ? { rule: 'command' } : {}),
      };
      const label = after.get(name);
      if (label) {
        // As for additions: a crash after the DELETE must not make the removal look like a person's.
        await this.store.intend(full, number, [change], { delivery: meta.delivery, configVersion: meta.configVersion });
        try {
          await this.gitea.removeIssueLabel(owner, repo, number, label.id);
        } catch (error) {
          // The label itself was deleted meanwhile (Gitea answers 422 "label does not exist" for an
          // unknown label id, 404 for a vanished issue-label link): it is off the issue either way.
          if (!isGiteaStatus(error, 422) && !isGiteaStatus(error, 404)) throw error;
        }
        after.delete(name);
      }
      removed.push(name);
      changes.push(change);
    }

    this.store.recordApplied(full, number, changes, { delivery: meta.delivery, configVersion: meta.configVersion });
    const added = changes.filter((c) => c.action === 'added' && !current.has(c.label)).map((c) => c.label);
    const labels = [...after.keys()].sort();
    log.info('applied', { repo: full, number, added, removed, durationMs: Math.round(performance.now() - started) });
    return { added, removed, labels, skipped, notApplied };
  }
}

/** Label → the user of the last command that touched it. */
function commandUsers(commands: readonly AllowedCommand[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const c of commands) for (const label of [...c.add, ...c.remove]) users.set(label, c.user);
  return users;
}

function commandRemoves(commands: readonly AllowedCommand[]): Set<string> {
  return new Set(commands.flatMap((c) => c.remove));
}
