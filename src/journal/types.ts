/** Lifecycle of a journaled delivery: pending until evaluated (done), dead-lettered (failed), or never evaluated (ignored). */
export type DeliveryState = 'pending' | 'done' | 'failed' | 'ignored';

/** What the receiver hands to the journal for one verified delivery. */
export interface NewDelivery {
  /** `X-Gitea-Delivery` (a UUID); the primary key: a second delivery with the same id is a duplicate. */
  id: string;
  /** `X-Gitea-Event`: issues, issue_comment, pull_request, push, … */
  event: string;
  /** `X-Gitea-Event-Type`: issue_label, pull_request_sync, … (falls back to `event`). */
  eventType: string;
  /** `action` of the payload (opened, edited, label_updated, …); null for pushes. */
  action: string | null;
  /** Subject key (`owner/repo#n`, `owner/repo@ref`); null when the payload names none. */
  subject: string | null;
  /** `owner/repo`. */
  repo: string | null;
  number: number | null;
  /** The payload's `updated_at` (issue, PR or comment) as an ISO string: "newest state" is by this, not arrival. */
  updatedAt: string | null;
  /** `sender.login`. */
  sender: string | null;
  /**
   * The request headers as received (lower-cased names), for replay to re-send, minus those the
   * receiver drops (`storedHeaders` in src/receiver/receive.ts): `authorization` and `cookie`
   * (credentials; rows end up in exports). A form delivery's are stored as JSON's
   * (`content-type: application/json`, no `content-length`), like its decoded body.
   */
  headers: Record<string, string>;
  /** The JSON payload exactly as signed (for a form hook: the decoded `payload` field). */
  body: string;
  /** `pending` for deliveries to evaluate; `ignored` for recorded-only ones (bot's own, unsupported actions). */
  state: 'pending' | 'ignored';
  /** Why an ignored delivery was not evaluated. */
  reason?: string;
}

/** A journal row. */
export interface StoredDelivery extends Omit<NewDelivery, 'state'> {
  /** Insertion order, monotonic. */
  seq: number;
  /** Epoch ms when the journal committed it. */
  receivedAt: number;
  state: DeliveryState;
  attempts: number;
  lastError: string | null;
}
