import type { LabelChange } from '../applier/ownership.js';
import type { OwnershipStore } from '../store/api.js';
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
 * bot's later write). A `label_cleared` lists what the person removed. Then any label the service or
 * a command owned, or that the last known set had, that is gone now and that the service did not
 * remove, was removed by a person (the sender of a label delivery of this item that lacks it, else
 * unknown — made theirs when their delivery comes later: the issue sidebar sends one `label_updated`
 * per label, out of order).
 */
export async function learnLabelChanges(store: OwnershipStore, input: BookkeepingInput, log: Logger): Promise<void> {
  const { repo, number } = input;
  const now = new Set(input.labelsNow);
  const interrupted = await settleInterruptedWrites(store, repo, number, now);
  const knownAtStart = await store.known(repo, number);
  const owned = await store.owned(repo, number);
  const ruleOwned = new Set(owned.filter((o) => o.kind === 'rule').map((o) => o.label));
  const { changes, seen, personLabelDeliveries } = await diffPersonDeliveries(store, input, now, ruleOwned, knownAtStart?.updatedAt, log);
  changes.push(...goneUnexplained(input.item, { now, seen, owned, knownAtStart, interrupted, personLabelDeliveries }));

  if (changes.length > 0) {
    await store.record(repo, number, changes, { delivery: input.item.newest.id });
    for (const c of changes) {
      log.info(c.action === 'added' ? 'label added by a person' : 'label removed by a person', {
        repo,
        number,
        label: c.label,
        user: c.user ?? 'unknown',
      });
    }
  }
  await store.setKnown(repo, number, [...now], input.updatedAt ?? null);
}

/**
 * Writes sent just before a crash, their answer never recorded: an addition on the issue now (a
 * removal off it) was applied by Gitea, for the bot or the command's author, not by a person.
 */
async function settleInterruptedWrites(
  store: OwnershipStore,
  repo: string,
  number: number,
  now: ReadonlySet<string>,
): Promise<{ change: LabelChange }[]> {
  const interrupted = await store.pending(repo, number);
  for (const { change, meta } of interrupted) {
    if (now.has(change.label) === (change.action === 'added')) await store.record(repo, number, [change], meta);
  }
  if (interrupted.length > 0) await store.clearPending(repo, number);
  return interrupted;
}

/**
 * Labels gone now that this item's diffs do not explain: an owned one, or one the last known set had
 * (its delivery may come later: one `label_updated` per label, out of order). Removed by the sender of a
 * label delivery of this item that lacks it, else by an unknown hand. Only a known set recorded before
 * this item's last delivery came in says what the issue had then (one recorded later already took these
 * deliveries in, e.g. `replay --local` observing the bot's echo first).
 */
function goneUnexplained(
  item: WorkItem,
  seenNow: {
    now: ReadonlySet<string>;
    seen: ReadonlySet<string>;
    owned: readonly { label: string }[];
    knownAtStart: { labels: string[]; recordedAt: number } | undefined;
    interrupted: readonly { change: LabelChange }[];
    personLabelDeliveries: readonly { delivery: DeliveryInput; labels: string[] }[];
  },
): LabelChange[] {
  const { now, seen, owned, knownAtStart, interrupted, personLabelDeliveries } = seenNow;
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
async function attributeUnknownRemovals(
  store: OwnershipStore,
  at: { repo: string; number: number },
  delivery: DeliveryInput,
  labels: readonly string[],
  now: ReadonlySet<string>,
  readAt: string | null | undefined,
): Promise<void> {
  if (!delivery.sender || !readAt || !delivery.updatedAt || Date.parse(delivery.updatedAt) > Date.parse(readAt)) return;
  const explained = (await store.unknownRemovals(at.repo, at.number)).filter((l) => !labels.includes(l) && !now.has(l));
  await store.attributeRemovals(at.repo, at.number, explained, delivery.sender, delivery.id);
}

/** The changes people made, from the full label sets of their `label_updated` deliveries in this item. */
async function diffPersonDeliveries(
  store: OwnershipStore,
  input: BookkeepingInput,
  now: ReadonlySet<string>,
  ruleOwned: ReadonlySet<string>,
  readAt: string | null | undefined,
  log: Logger,
): Promise<{ changes: LabelChange[]; seen: Set<string>; personLabelDeliveries: { delivery: DeliveryInput; labels: string[] }[] }> {
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
      await store.setKnown(repo, number, [], delivery.updatedAt);
      continue;
    }
    personLabelDeliveries.push({ delivery, labels });
    await attributeUnknownRemovals(store, { repo, number }, delivery, labels, now, readAt);
    const known = await store.known(repo, number);
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
    await store.setKnown(repo, number, labels, delivery.updatedAt);
  }
  return { changes, seen, personLabelDeliveries };
}
