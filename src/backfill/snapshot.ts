import type { GiteaIssue } from '../gitea/types.js';
import { RECONCILED_ACTION } from '../reconcile/reconcile.js';
import type { WorkItem } from '../scheduler/types.js';

/** The `event`/`action` of a backfill's synthetic delivery (`backfillItem`). */
export const BACKFILL_EVENT = 'backfill';

/**
 * How long after its listing a sweep's snapshot of an issue is used instead of a read. The last issues
 * of a backlog too large to triage in that time (thousands, one at a time) are read again, and so is a
 * synthetic delivery resumed after a restart.
 */
export const SNAPSHOT_MAX_AGE_MS = 5 * 60_000;

/** What the evaluator knows of the issue's labels (`OwnershipStore.known`). */
export interface KnownLabelSet {
  labels: string[];
  updatedAt: string | null;
}

/**
 * The issue as a sweep listed it, when the evaluation may start from it instead of reading the issue
 * again; `undefined` when the issue must be read.
 *
 * Gitea answers `GET /repos/{o}/{r}/issues` with `convert.ToAPIIssueList`, which is `convert.ToAPIIssue`
 * per issue, labels loaded (services/convert/issue.go, `ToAPIIssueList` and `ToAPIIssue`, checked at
 * v1.21.11, v1.22.2 and v1.25.4): the conversion `GET /repos/{o}/{r}/issues/{index}` answers with
 * (routers/api/v1/repo/issue.go, `ListIssues` and `GetIssue`). The listed object is what a read would
 * have returned at the time of the listing.
 *
 * Used only when the snapshot is the newest state the item knows of (its newest delivery is the
 * backfill's or the reconcile sweep's), recent, and not older than the label set the service last
 * recorded for the issue (an echo of its own write, say): otherwise the issue is read as for a webhook.
 */
export function listedSnapshot(item: WorkItem, known: KnownLabelSet | undefined, now: number): GiteaIssue | undefined {
  const newest = item.newest;
  const fromSweep =
    (newest.event === BACKFILL_EVENT && newest.action === BACKFILL_EVENT) || (newest.event === 'issues' && newest.action === RECONCILED_ACTION);
  if (!fromSweep || item.subject.kind !== 'issue') return undefined;
  if (!(now - newest.receivedAt <= SNAPSHOT_MAX_AGE_MS)) return undefined;
  const issue = newest.payload.issue as Partial<GiteaIssue> | undefined;
  if (typeof issue !== 'object' || issue === null || issue.number !== item.subject.number) return undefined;
  if (typeof issue.updated_at !== 'string' || typeof issue.state !== 'string') return undefined;
  if (issue.labels !== null && !Array.isArray(issue.labels)) return undefined;
  const listed = Date.parse(issue.updated_at);
  if (Number.isNaN(listed)) return undefined;
  if (known?.updatedAt) {
    const recorded = Date.parse(known.updatedAt);
    if (listed < recorded) return undefined;
    // The same second (Gitea's updated_unix): the listing may predate a write of that second.
    if (listed === recorded && !sameNames(known.labels, (issue.labels ?? []).map((l) => l.name))) return undefined;
  }
  return issue as GiteaIssue;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((n) => y.has(n));
}
