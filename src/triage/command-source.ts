/**
 * Where `/label` commands come from: a comment (created or edited) or a review's body. Pure: reads a
 * delivery's payload, nothing else.
 */
export interface CommandSource {
  /** The text the commands are read from. */
  body: string;
  /** An edited comment's text before the edit: only the commands the edit introduced run. */
  previousBody?: string;
  /** Who wrote it. */
  user?: string;
  /** The comment's id and version, to answer a refused command once; reviews have no id in the payload. */
  commentId?: number;
  version?: string;
}

/**
 * Review deliveries' `X-Gitea-Event` values (modules/webhook/type.go `HookEventType.Event()`; the payload
 * from services/webhook/notifier.go `PullRequestReview`: action `reviewed`, `review.content` the body).
 */
export const REVIEW_EVENTS: ReadonlySet<string> = new Set(['pull_request_approved', 'pull_request_rejected', 'pull_request_comment']);

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export function commandSource(delivery: { event: string; action: string | null; sender: string | null; payload: Obj }): CommandSource | undefined {
  const { payload } = delivery;
  if (REVIEW_EVENTS.has(delivery.event) && delivery.action === 'reviewed') {
    const review = payload.review;
    if (!isObject(review) || typeof review.content !== 'string') return undefined;
    const user = delivery.sender ?? (isObject(payload.sender) ? str(payload.sender.login) : undefined);
    return { body: review.content, ...(user ? { user } : {}) };
  }
  if (delivery.event !== 'issue_comment' || (delivery.action !== 'created' && delivery.action !== 'edited')) return undefined;
  const comment = payload.comment;
  if (!isObject(comment) || typeof comment.body !== 'string') return undefined;
  const user = (isObject(comment.user) ? str(comment.user.login) : undefined) ?? delivery.sender ?? undefined;
  const changes = payload.changes;
  const from = delivery.action === 'edited' && isObject(changes) && isObject(changes.body) ? changes.body.from : undefined;
  const version = str(comment.updated_at);
  return {
    body: comment.body,
    ...(typeof from === 'string' ? { previousBody: from } : {}),
    ...(user ? { user } : {}),
    ...(typeof comment.id === 'number' ? { commentId: comment.id } : {}),
    ...(version ? { version } : {}),
  };
}
