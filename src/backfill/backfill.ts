import PQueue from 'p-queue';
import type { GiteaApi } from '../gitea/api.js';
import type { GiteaIssue } from '../gitea/types.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryInput, Evaluator, WorkItem } from '../scheduler/types.js';
import { issueSubject } from '../subject.js';
import { BACKFILL_EVENT } from './snapshot.js';

/** One triaged issue or pull request of a backfill. */
export interface BackfillRow {
  subject: string;
  kind: 'issue' | 'pull';
  title: string;
  added: string[];
  removed: string[];
  note?: string;
  error?: string;
}

export interface BackfillSummary {
  rows: BackfillRow[];
  evaluated: number;
  changed: number;
  unchanged: number;
  failed: number;
  durationMs: number;
}

export interface BackfillOptions {
  gitea: GiteaApi;
  /** The service's evaluator (`createTriageEvaluator`): the same decision and applier as for webhooks. */
  evaluator: Evaluator;
  /** `owner/name` of each repository to sweep. */
  repos: string[];
  concurrency: number;
  log: Logger;
  /** Only issues updated at or after this time (ISO 8601): the reconcile sweep. */
  since?: string;
  /** Called after each issue, for progress bars. */
  onProgress?(done: number, total: number, row: BackfillRow): void;
}

/**
 * Triage every open issue and pull request of some repositories: the old linear loop, done concurrently
 * through the service's own evaluator. Each issue becomes a work item with one synthetic delivery
 * (`event: backfill`), so the evaluator decides and applies exactly as for a webhook, starting from the
 * listed issue instead of a read of each (pull requests still read their files). One failure is a row
 * with its error, never the end of the sweep.
 */
export async function runBackfill(options: BackfillOptions): Promise<BackfillSummary> {
  const started = Date.now();
  const queue = new PQueue({ concurrency: options.concurrency });
  const rows: BackfillRow[] = [];
  const lists = await Promise.all(
    options.repos.map(async (full) => {
      const [owner, repo] = splitRepo(full);
      // The repo's context loads while its issues are listed (one round trip less before the first evaluation).
      options.evaluator.prepare?.(owner, repo, options.log);
      const issues = await options.gitea.listIssues(owner, repo, { state: 'open', ...(options.since ? { since: options.since } : {}) });
      const listedAt = Date.now();
      return issues.map((issue) => ({ owner, repo, issue, listedAt }));
    }),
  );
  const work = lists.flat();
  let done = 0;
  for (const { owner, repo, issue, listedAt } of work) {
    void queue.add(async () => {
      const item = backfillItem(owner, repo, issue, listedAt);
      const row: BackfillRow = {
        subject: item.subject.key,
        kind: issue.pull_request ? 'pull' : 'issue',
        title: issue.title,
        added: [],
        removed: [],
      };
      const log = options.log.child({ delivery: item.newest.id, repo: `${owner}/${repo}`, number: issue.number });
      try {
        const result = await options.evaluator.evaluate(item, log);
        row.added = result.added;
        row.removed = result.removed;
        if (result.note !== undefined) row.note = result.note;
      } catch (error) {
        row.error = error instanceof Error ? error.message : String(error);
        log.warn('backfill evaluation failed', { error: row.error });
      }
      rows.push(row);
      options.onProgress?.(++done, work.length, row);
    });
  }
  await queue.onIdle();
  rows.sort((a, b) => a.subject.localeCompare(b.subject, 'en', { numeric: true }));
  const failed = rows.filter((r) => r.error !== undefined).length;
  const changed = rows.filter((r) => r.error === undefined && r.added.length + r.removed.length > 0).length;
  return { rows, evaluated: rows.length - failed, changed, unchanged: rows.length - failed - changed, failed, durationMs: Date.now() - started };
}

/**
 * A work item for one listed issue, as if a delivery had just arrived for it. The listed issue is the
 * evaluation's starting state (`listedSnapshot`): `listedAt` (epoch ms, default now) is when it was listed.
 */
export function backfillItem(typedOwner: string, typedRepo: string, issue: GiteaIssue, listedAt = Date.now()): WorkItem {
  const [owner, repo] = canonicalNames(typedOwner, typedRepo, issue);
  const subject = issueSubject(owner, repo, issue.number);
  const payload = { action: 'backfill', number: issue.number, issue, repository: { owner: { login: owner }, name: repo, full_name: `${owner}/${repo}` } };
  const delivery: DeliveryInput = {
    id: `backfill-${owner}-${repo}-${issue.number}-${Date.now().toString(36)}`,
    event: BACKFILL_EVENT,
    eventType: BACKFILL_EVENT,
    action: BACKFILL_EVENT,
    subject: subject.key,
    repo: `${owner}/${repo}`,
    number: issue.number,
    updatedAt: issue.updated_at,
    sender: null,
    headers: {},
    body: '',
    state: 'pending',
    seq: 0,
    receivedAt: listedAt,
    attempts: 0,
    lastError: null,
    payload,
  };
  return { subject, batch: 'backfill', attempt: 1, deliveries: [delivery], newest: delivery };
}

/**
 * The repository's names as Gitea spells them, from the listed issue's `repository` (Gitea sets it
 * from the repository row: services/convert/issue.go `toIssue`, `RepositoryMeta{Owner: issue.Repo.OwnerName,
 * Name: issue.Repo.Name}`, v1.22.2 to v1.25.4), not as the operator typed them (Gitea finds
 * `--repo ACME/widgets` case-insensitively). The subject key is then the one a webhook for the same
 * issue carries (src/receiver/classify.ts), so the backfill and the service take the same lease.
 */
function canonicalNames(owner: string, repo: string, issue: GiteaIssue): [string, string] {
  const meta = (issue as { repository?: { owner?: unknown; name?: unknown } }).repository;
  const sameRepo = (a: unknown, b: string): a is string => typeof a === 'string' && a !== '' && !a.includes('/') && a.toLowerCase() === b.toLowerCase();
  if (meta && sameRepo(meta.owner, owner) && sameRepo(meta.name, repo)) return [meta.owner, meta.name];
  return [owner, repo];
}

export function splitRepo(full: string): [string, string] {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(full);
  if (!m) throw new Error(`not a repository: ${JSON.stringify(full)} (expected owner/name)`);
  return [m[1]!, m[2]!];
}
