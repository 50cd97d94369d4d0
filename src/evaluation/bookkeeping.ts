import type { LabelChange, OwnershipStore } from '../applier/ownership.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryInput, WorkItem } from '../scheduler/types.js';
import { LABEL_ACTIONS, payloadLabels } from './payload.js';

export interface BookkeepingInput {
  /** `owner/repo`. */
  repo: string;
  number: number;
  item: WorkItem;
  /** Label names on the issue now (just re-read from Gitea), and its `updated_at`. */
  labelsNow: readonly string[];
  updatedAt: string | null | undefined;
  bot: string | undefined;
}

/**
 * Learns who changed which label since the last evaluation, and records it in the ownership store.
 * A person's `label_updated` carries the full label set (no diff): diff it against the last
 * known set, keeping only what is still true now (a stale snapshot must not blame a person for the
 * bot's later write). Then any label the service or a command owned that is gone now, and that the
 * service did not remove, was removed by a person (the sender of a label delivery of this item that
 * lacks it, else unknown).
 */
export function learnLabelChanges(store: OwnershipStore, input: BookkeepingInput, log: Logger): void {
  const { repo, number } = input;
  const now = new Set(input.labelsNow);
  settleInterruptedWrites(store, repo, number, now);
  const owned = store.owned(repo, number);
  const ruleOwned = new Set(owned.filter((o) => o.kind === 'rule').map((o) => o.label));
  const { changes, seen, personLabelDeliveries } = diffPersonDeliveries(store, input, now, ruleOwned, log);

  for (const o of owned) {
    if (now.has(o.label) || seen.has(o.label)) continue;
    const by = personLabelDeliveries.findLast((d) => !d.labels.includes(o.label));
    changes.push({ label: o.label, action: 'removed', kind: by ? 'person' : 'unknown', user: by?.delivery.sender ?? null });
  }

  if (changes.length > 0) {
    store.record(repo, number, changes, { delivery: input.item.newest.id });
    for (const c of changes) {
      log.info(c.action === 'added' ? 'label added by a person' : 'label removed by a person', {
        repo,
        number,
        label: c.label,
        user: c.user ?? 'unknown',
      });
    }
  }
  store.setKnown(repo, number, [...now], input.updatedAt ?? null);
}

/**
 * Writes sent just before a crash, their answer never recorded: an addition on the issue now (a
 * removal off it) was applied by Gitea, for the bot or the command's author, not by a person.
 */
function settleInterruptedWrites(store: OwnershipStore, repo: string, number: number, now: ReadonlySet<string>): void {
  const interrupted = store.pending(repo, number);
  for (const { change, meta } of interrupted) {
    if (now.has(change.label) === (change.action === 'added')) store.record(repo, number, [change], meta);
  }
  if (interrupted.length > 0) store.clearPending(repo, number);
}

/** The changes people made, from the full label sets of their `label_updated` deliveries in this item. */
function diffPersonDeliveries(
  store: OwnershipStore,
  input: BookkeepingInput,
  now: ReadonlySet<string>,
  ruleOwned: ReadonlySet<string>,
  log: Logger,
): { changes: LabelChange[]; seen: Set<string>; personLabelDeliveries: { delivery: DeliveryInput; labels: string[] }[] } {
  const { repo, number } = input;
  const changes: LabelChange[] = [];
  const seen = new Set<string>();
  const personLabelDeliveries: { delivery: DeliveryInput; labels: string[] }[] = [];
  for (const delivery of input.item.deliveries) {
    if (delivery.action === null || !LABEL_ACTIONS.has(delivery.action)) continue;
    if (!delivery.sender || delivery.sender === input.bot) continue;
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
      store.setKnown(repo, number, [], delivery.updatedAt);
      continue;
    }
    personLabelDeliveries.push({ delivery, labels });
    const known = store.known(repo, number);
    if (known && known.updatedAt && delivery.updatedAt && Date.parse(delivery.updatedAt) < Date.parse(known.updatedAt)) {
      log.debug('label set older than the known one: not diffed', { delivery: delivery.id, repo, number });
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
    store.setKnown(repo, number, labels, delivery.updatedAt);
  }
  return { changes, seen, personLabelDeliveries };
}
