/**
 * How Gitea turns a hook's `events` option into the event types it delivers, and how it lists them
 * back — so `register-webhook` can tell a correct hook from one that needs repairing.
 *
 * Gitea 1.25 `routers/api/v1/utils/hook.go` (`addHook`, `editHook`): `issues` switches on every issue
 * type (`issuesHook`: issues, issue_assign, issue_label, issue_milestone, issue_comment) and
 * `pull_request` every pull-request type (`pullHook`: …_assign, …_label, …_milestone, …_comment,
 * …_review, …_review_request, …_sync); `issues_only` / `pull_request_only` just the bare type. An empty
 * list means `["push"]`. `GET …/hooks` answers the expanded types (`Webhook.EventsArray`).
 */

/** What the service triages (docs/architecture.md, "Receiving a webhook"): issues and their labels and comments,
 * pull requests (opened, edited, synchronized, labelled, commented), and pushes (context refresh). */
export const SERVICE_EVENTS = ['issues', 'issue_comment', 'pull_request', 'push'] as const;

const ISSUE_TYPES = ['issue_assign', 'issue_label', 'issue_milestone', 'issue_comment'];
const PULL_TYPES = [
  'pull_request_assign',
  'pull_request_label',
  'pull_request_milestone',
  'pull_request_comment',
  'pull_request_review',
  'pull_request_review_request',
  'pull_request_sync',
];
const PLAIN_TYPES = ['create', 'delete', 'fork', 'push', 'wiki', 'repository', 'release', 'package', 'status', 'workflow_job', 'workflow_run'];

/** Every name Gitea's `events` option understands. */
export const KNOWN_EVENTS: readonly string[] = [
  ...PLAIN_TYPES,
  'issues',
  'issues_only',
  ...ISSUE_TYPES,
  'pull_request',
  'pull_request_only',
  ...PULL_TYPES,
];

/** The event types a hook created with `events` delivers (Gitea's expansion). */
export function expandHookEvents(events: readonly string[]): Set<string> {
  const chosen = new Set((events.length === 0 ? ['push'] : events).map((e) => e.toLowerCase()));
  const out = new Set<string>();
  for (const e of PLAIN_TYPES) if (chosen.has(e)) out.add(e);
  if (chosen.has('issues') || chosen.has('issues_only')) out.add('issues');
  for (const e of ISSUE_TYPES) if (chosen.has('issues') || chosen.has(e)) out.add(e);
  if (chosen.has('pull_request') || chosen.has('pull_request_only')) out.add('pull_request');
  for (const e of PULL_TYPES) if (chosen.has('pull_request') || chosen.has(e)) out.add(e);
  return out;
}

/**
 * A hook's `events` as `GET …/hooks` lists them, made comparable with {@link expandHookEvents}: Gitea
 * before 1.23 lists the review switch as its three delivery types (`pull_request_review_approved`,
 * `…_rejected`, `…_comment`), 1.23+ as `pull_request_review`.
 */
export function listedHookEvents(events: readonly string[] | null | undefined): Set<string> {
  const out = new Set<string>();
  for (const raw of events ?? []) {
    const e = raw.toLowerCase();
    out.add(/^pull_request_review_(approved|rejected|comment)$/.test(e) ? 'pull_request_review' : e);
  }
  return out;
}

export function sameEvents(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((e) => b.has(e));
}
