import type { KnownLabels, LabelEvent, OwnedLabel } from '../applier/ownership.js';
import type { Store } from '../store/api.js';
import type { DeliveryState } from '../journal/types.js';
import { parseSubject } from '../subject.js';
import { ToolError } from './cli.js';
import { RECONCILE_ID_PREFIX } from '../reconcile/reconcile.js';

/** One delivery of the issue, as the journal recorded it. */
export interface StoryDelivery {
  id: string;
  /** Epoch ms. */
  receivedAt: number;
  event: string;
  eventType: string;
  action: string | null;
  sender: string | null;
  state: DeliveryState;
  /** Why it was not evaluated (`ignored`): sent by the bot, an action the service does not triage… */
  reason: string | null;
  /** The last evaluation error (a retry in progress, or why it was dead-lettered). */
  error: string | null;
  attempts: number;
}

/** Everything the store knows about one issue or pull request. */
export interface IssueStory {
  subject: string;
  deliveries: StoryDelivery[];
  /** Label additions and removals, oldest first: by a rule (with evidence), a command, a person, or unknown. */
  labelEvents: LabelEvent[];
  /** Labels the service (a rule) or a command added and that are still on the issue as far as it knows. */
  owned: OwnedLabel[];
  /** Labels a person removed: no rule re-adds them. */
  removedByPerson: { label: string; user: string | null }[];
  /** The issue's labels as last seen. */
  known?: KnownLabels;
  /** What is not recorded anywhere durable, said plainly. */
  notRecorded: string[];
}

/**
 * The story of `owner/repo#n` from the store alone (no Gitea): the journal's deliveries and the
 * ownership records (label event log, owned labels, person removals, known set).
 */
export async function issueStory(stored: Pick<Store, 'deliveries' | 'ownership' | 'location'>, subjectKey: string): Promise<IssueStory> {
  const subject = parseSubject(subjectKey);
  if (!subject || subject.kind !== 'issue') throw new ToolError(`expected owner/repo#number, got ${JSON.stringify(subjectKey)}`);
  const repo = `${subject.owner}/${subject.repo}`;
  const store = stored.ownership;
  const [rows, labelEvents, ownership, owned, known] = await Promise.all([
    stored.deliveries.query({ subject: subject.key }),
    store.events(repo, subject.number),
    store.ownership(repo, subject.number),
    store.owned(repo, subject.number),
    store.known(repo, subject.number),
  ]);
  const removed = ownership.humanRemoved;
  const story: IssueStory = {
    subject: subject.key,
    deliveries: rows.map((r) => ({
      id: r.id,
      receivedAt: r.receivedAt,
      event: r.event,
      eventType: r.eventType,
      action: r.action,
      sender: r.sender,
      state: r.state,
      reason: r.reason ?? null,
      error: r.lastError,
      attempts: r.attempts,
    })),
    labelEvents,
    owned,
    removedByPerson: [...removed].sort().map((label) => ({
      label,
      user: labelEvents.findLast((e) => e.label === label && e.action === 'removed')?.user ?? null,
    })),
    notRecorded: [
      `refused /label commands: only logged (msg "command refused", with the user and the reason); see npm run logs -- --issue ${subject.key}`,
      'evaluations that changed nothing (no config, a config problem, a closed issue): only logged (msg "evaluated", with its note)',
    ],
  };
  if (known) story.known = known;
  if (story.deliveries.length === 0 && labelEvents.length === 0 && !known) {
    throw new ToolError(`nothing recorded for ${subject.key} in ${stored.location}`);
  }
  return story;
}

/** The story as text for a person: deliveries, label changes with who and why, the state now. */
export function renderStory(story: IssueStory): string {
  const out: string[] = [];
  out.push(`${story.subject}: ${plural(story.deliveries.length, 'delivery', 'deliveries')}, ${plural(story.labelEvents.length, 'label change')}`);

  out.push('', 'Deliveries');
  if (story.deliveries.length === 0) out.push('  (none in the journal: older ones may have been pruned, see JOURNAL_RETENTION_HOURS)');
  const what = (d: StoryDelivery) => `${d.event}${d.action ? `/${d.action}` : ''}`;
  const w1 = Math.max(0, ...story.deliveries.map((d) => what(d).length));
  const w2 = Math.max(0, ...story.deliveries.map((d) => (d.sender ?? '-').length));
  for (const d of story.deliveries) {
    let state: string = d.state;
    if (d.state === 'done') state = 'evaluated';
    if (d.state === 'ignored') state = `ignored (${d.reason ?? 'not triaged'})`;
    if (d.state === 'failed') state = `failed after ${plural(d.attempts, 'attempt')}: ${d.error ?? 'unknown error'}`;
    if (d.state === 'pending') state = d.error ? `pending, retrying (last error: ${d.error})` : 'pending';
    out.push(`  ${time(d.receivedAt)}  ${what(d).padEnd(w1)}  by ${(d.sender ?? (d.id.startsWith(RECONCILE_ID_PREFIX) ? 'reconcile' : '-')).padEnd(w2)}  ${state}  [${d.id}]`);
  }

  out.push('', 'Label changes');
  if (story.labelEvents.length === 0) out.push('  (none recorded)');
  const w3 = Math.max(0, ...story.labelEvents.map((e) => e.label.length));
  for (const e of story.labelEvents) {
    const sign = e.action === 'added' ? '+' : '-';
    out.push(`  ${time(e.at)}  ${sign} ${e.label.padEnd(w3)}  ${who(e)}${e.delivery ? `  [${e.delivery}]` : ''}`);
  }

  out.push('', 'Now');
  out.push(`  labels last seen: ${story.known ? list(story.known.labels) : '(unknown)'}`);
  out.push(
    `  added by the service or a command: ${
      story.owned.length === 0
        ? '(none)'
        : story.owned.map((o) => (o.kind === 'rule' ? `${o.label} (rule ${o.rule ?? '?'}${o.configVersion ? `, config ${o.configVersion}` : ''})` : `${o.label} (command by ${o.user ?? '?'})`)).join(', ')
    }`,
  );
  out.push(
    `  removed by a person, never re-added by a rule: ${
      story.removedByPerson.length === 0 ? '(none)' : story.removedByPerson.map((r) => `${r.label} (${r.user ?? 'unknown'})`).join(', ')
    }`,
  );

  out.push('', 'Not recorded in the store');
  for (const n of story.notRecorded) out.push(`  ${n}`);
  return out.join('\n');
}

function who(e: LabelEvent): string {
  switch (e.kind) {
    case 'rule':
      return `by rule ${e.rule ?? '?'}${e.evidence ? ` (evidence: ${e.evidence})` : ''}${e.configVersion ? `, config ${e.configVersion}` : ''}`;
    case 'command':
      return `by /label command of ${e.user ?? 'unknown'}`;
    case 'person':
      return `by ${e.user ?? 'unknown'} (a person, in Gitea)`;
    default:
      return 'by someone unknown (seen by comparing label sets)';
  }
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function list(labels: readonly string[]): string {
  return labels.length === 0 ? '(no labels)' : labels.join(', ');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
