import { issueSubject, pushSubject } from '../subject.js';

/**
 * What the receiver learns from one verified payload, before it is journaled.
 * Pure: no I/O, no clock; `receive.ts` turns it into a `NewDelivery`.
 */
export interface Classification {
  /** Subject key (`owner/repo#n`, `owner/repo@ref`); null when the event names none (e.g. `repository`). */
  subject: string | null;
  /** `owner/repo`. */
  repo: string;
  number: number | null;
  action: string | null;
  sender: string | null;
  /** Normalised to `Date#toISOString()` so that string order is time order (Gitea writes the server's offset). */
  updatedAt: string | null;
  /** True when the service evaluates this event; false: recorded only, with `reason`. */
  triaged: boolean;
  reason?: string;
}

export type ClassifyResult = { ok: true; value: Classification } | { ok: false; reason: string };

/**
 * Actions the service evaluates, per `X-Gitea-Event` family. Gitea names them in
 * `modules/structs/hook.go` (HookIssueAction). `label_updated`/`label_cleared` by a person
 * are triaged: it is how the service learns who removed what (docs/architecture.md, "Receiving a webhook").
 */
const TRIAGED: Record<string, ReadonlySet<string>> = {
  issues: new Set(['opened', 'edited', 'reopened', 'label_updated', 'label_cleared']),
  // A comment on a pull request arrives as X-Gitea-Event `issue_comment` too (X-Gitea-Event-Type
  // `pull_request_comment`, payload `is_pull: true`): HookEventType.Event() in modules/webhook/type.go
  // maps both HookEventIssueComment and HookEventPullRequestComment to "issue_comment".
  issue_comment: new Set(['created', 'edited']),
  pull_request: new Set(['opened', 'edited', 'reopened', 'synchronized', 'label_updated', 'label_cleared']),
  // Reviews (services/webhook/notifier.go PullRequestReview): a pull request payload with action
  // `reviewed` and a `review` object, under its own X-Gitea-Event (modules/webhook/type.go Event()):
  // `pull_request_comment` here is a review, not a comment (those are `issue_comment`).
  pull_request_approved: new Set(['reviewed']),
  pull_request_rejected: new Set(['reviewed']),
  pull_request_comment: new Set(['reviewed']),
};

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const positiveInt = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);

/** Gitea's times carry the server's UTC offset (`…+01:00`); comparable strings need one form. */
function isoTime(v: unknown): string | null {
  if (typeof v !== 'string' || v === '') return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** `owner` and `name` of the payload's repository; owner/name themselves never contain `/`. */
function repoNames(repository: Obj): { owner: string; name: string } | null {
  const owner = isObject(repository.owner) ? str(repository.owner.login) ?? str(repository.owner.username) : null;
  const name = str(repository.name);
  if (owner && name && !owner.includes('/') && !name.includes('/')) return { owner, name };
  const full = str(repository.full_name);
  const parts = full?.split('/');
  if (parts && parts.length === 2 && parts[0] && parts[1]) return { owner: parts[0], name: parts[1] };
  return null;
}

/**
 * Classifies a verified payload by its event family (`X-Gitea-Event`, already resolved from aliases).
 * Returns `ok: false` with a one-line reason when the body is not the payload its event describes:
 * the receiver answers that with 400.
 */
export function classify(event: string, payload: unknown): ClassifyResult {
  if (!isObject(payload)) return { ok: false, reason: 'payload is not a JSON object' };
  if (!isObject(payload.repository)) return { ok: false, reason: 'payload has no repository' };
  const names = repoNames(payload.repository);
  if (!names) return { ok: false, reason: 'payload repository has no owner login and name' };
  const repo = `${names.owner}/${names.name}`;
  const action = str(payload.action);
  const sender = isObject(payload.sender) ? str(payload.sender.login) : null;
  const base = { repo, action, sender };

  switch (event) {
    case 'issues':
    case 'issue_comment': {
      const issue = payload.issue;
      if (!isObject(issue)) return { ok: false, reason: `${event} payload has no issue` };
      const number = positiveInt(issue.number);
      if (number === null) return { ok: false, reason: `${event} payload has no issue number` };
      if (!action) return { ok: false, reason: `${event} payload has no action` };
      let updatedAt = isoTime(issue.updated_at);
      if (event === 'issue_comment') {
        if (!isObject(payload.comment)) return { ok: false, reason: 'issue_comment payload has no comment' };
        // The comment's own time orders two edits of one comment; the issue's is the fallback.
        updatedAt = isoTime(payload.comment.updated_at) ?? updatedAt;
      }
      return {
        ok: true,
        value: { ...base, subject: issueSubject(names.owner, names.name, number).key, number, updatedAt, ...triage(event, action) },
      };
    }
    case 'pull_request':
    case 'pull_request_approved':
    case 'pull_request_rejected':
    case 'pull_request_comment': {
      const pr = payload.pull_request;
      if (!isObject(pr)) return { ok: false, reason: `${event} payload has no pull_request` };
      const number = positiveInt(pr.number) ?? positiveInt(payload.number);
      if (number === null) return { ok: false, reason: `${event} payload has no pull request number` };
      if (!action) return { ok: false, reason: `${event} payload has no action` };
      return {
        ok: true,
        value: {
          ...base,
          subject: issueSubject(names.owner, names.name, number).key,
          number,
          updatedAt: isoTime(pr.updated_at),
          ...triage(event, action),
        },
      };
    }
    case 'push': {
      const ref = str(payload.ref);
      if (!ref || /\s/.test(ref)) return { ok: false, reason: 'push payload has no ref' };
      const head = isObject(payload.head_commit) ? payload.head_commit : null;
      return {
        ok: true,
        value: {
          ...base,
          subject: pushSubject(names.owner, names.name, ref).key,
          number: null,
          updatedAt: isoTime(head?.timestamp),
          triaged: true,
        },
      };
    }
    default: {
      // Recorded, never evaluated. Subject when the payload names an issue or PR, for `explain`.
      const issueLike = isObject(payload.pull_request) ? payload.pull_request : isObject(payload.issue) ? payload.issue : null;
      const number = issueLike ? positiveInt(issueLike.number) : null;
      return {
        ok: true,
        value: {
          ...base,
          subject: number !== null ? issueSubject(names.owner, names.name, number).key : null,
          number,
          updatedAt: isoTime(issueLike?.updated_at),
          triaged: false,
          reason: `event ${event} is not triaged`,
        },
      };
    }
  }
}

function triage(event: string, action: string): { triaged: boolean; reason?: string } {
  if (TRIAGED[event]?.has(action)) return { triaged: true };
  return { triaged: false, reason: `action ${event}/${action} is not triaged` };
}
