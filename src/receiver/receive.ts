import { verify } from '@octokit/webhooks-methods';
import type { JournalApi } from '../journal/api.js';
import type { NewDelivery } from '../journal/types.js';
import { errorText } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ReceiverMetrics } from '../metrics/metrics.js';
import { classify } from './classify.js';

export interface ReceivedRequest {
  /** Node's `IncomingMessage.headers`: lower-cased names. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body, exactly as received. */
  body: Buffer;
}

export interface ReceiverDeps {
  /** Accepted secrets (rotation: any may match). */
  secrets: string[];
  maxBodyBytes: number;
  /** Where deliveries are journaled: the store's deliveries (or a tool's journal). */
  journal: Pick<JournalApi, 'append'>;
  /**
   * Runs with the append (after every check; for duplicates too), and the answer waits for both:
   * its failure answers 503 even when the append committed, so that a redelivery (Gitea's, or the
   * load balancer's retry) runs it again and then answers `200 duplicate`. The service bumps a repo's
   * context generation on a push to its default branch here; started in the same tick as the
   * append, on SQLite both join one group commit (one transaction, one fsync).
   */
  beforeJournal?(delivery: NewDelivery, payload: Record<string, unknown>): Promise<void>;
  /** The bot's login once known (`GET /user`); its own events are recorded, never evaluated. */
  botLogin(): string | undefined;
  shuttingDown(): boolean;
  /** Called once per newly journaled delivery (pending or ignored), after its commit; never for duplicates. */
  onJournaled(delivery: NewDelivery, payload: Record<string, unknown>): void;
  log: Logger;
  metrics?: ReceiverMetrics;
}

export interface ReceiveResult {
  status: number;
  body: Record<string, unknown>;
  /** The journaled delivery (accepted or ignored answers). */
  delivery?: NewDelivery;
}

/**
 * Gitea sends its headers under several prefixes (services/webhook/deliver.go, addDefaultHeaders);
 * Forgejo adds `X-Forgejo-*`. Read Gitea's first, then the aliases.
 */
const PREFIXES = ['x-gitea-', 'x-forgejo-', 'x-gogs-', 'x-github-'];

const FORM = 'application/x-www-form-urlencoded';

/**
 * Handles one `POST /webhook`, independent of Express (the replay tool calls it too).
 * Checks run in the documented order (docs/architecture.md, "Receiving a webhook") — shutdown
 * (503), size (413), signature (401), headers (400), payload (400) — so a request that fails
 * authentication learns nothing else. Answers 202 only after the journal committed the delivery.
 */
export async function receiveDelivery(request: ReceivedRequest, deps: ReceiverDeps): Promise<ReceiveResult> {
  const { headers, body } = request;
  const reject = (status: number, reason: string, fields: Record<string, unknown> = {}): ReceiveResult => {
    deps.log.warn('webhook rejected', { status, reason, ...fields });
    deps.metrics?.rejected(status);
    deps.metrics?.delivery(typeof fields.event === 'string' ? fields.event : 'unknown', 'rejected');
    return { status, body: { error: reason } };
  };

  if (deps.shuttingDown()) return reject(503, 'shutting down');
  if (body.length > deps.maxBodyBytes) return reject(413, `body larger than ${deps.maxBodyBytes} bytes`);

  // Signature first: over the raw JSON bytes (Gitea indents and escapes <>&, a re-serialisation
  // never matches); a `form` hook signs the JSON inside `payload=`, not the form body.
  const form = header(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase() === FORM;
  const json = form ? (new URLSearchParams(body.toString('utf8')).get('payload') ?? '') : body.toString('utf8');
  const signatures = signaturesOf(headers);
  if (signatures.length === 0) return reject(401, 'missing signature');
  if (!(await verified(json, signatures, deps.secrets))) return reject(401, 'signature does not match');

  const event = aliased(headers, 'event');
  const id = aliased(headers, 'delivery');
  if (!event) return reject(400, 'missing X-Gitea-Event header');
  if (!id) return reject(400, 'missing X-Gitea-Delivery header', { event });
  if (id.length > 200) return reject(400, 'X-Gitea-Delivery header too long', { event });
  const eventType = aliased(headers, 'event-type') ?? event;

  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch {
    return reject(400, 'body is not valid JSON', { delivery: id, event });
  }
  const classified = classify(event, payload);
  if (!classified.ok) return reject(400, classified.reason, { delivery: id, event });
  const c = classified.value;
  const fields = { delivery: id, event, action: c.action ?? undefined, repo: c.repo, number: c.number ?? undefined };
  const log = deps.log.child(fields);
  // winston formats (and stringifies) a line before its transport drops it by level: skip the work.
  if (log.isDebugEnabled()) log.debug('received', { eventType, sender: c.sender ?? undefined, bytes: body.length });

  const bot = deps.botLogin();
  const fromBot = bot !== undefined && c.sender !== null && c.sender.toLowerCase() === bot.toLowerCase();
  const reason = fromBot ? 'sent by the bot' : c.triaged ? undefined : c.reason;
  const delivery: NewDelivery = {
    id,
    event,
    eventType,
    action: c.action,
    subject: c.subject,
    repo: c.repo,
    number: c.number,
    updatedAt: c.updatedAt,
    sender: c.sender,
    headers: storedHeaders(headers, form),
    body: json,
    state: reason === undefined ? 'pending' : 'ignored',
    ...(reason !== undefined ? { reason } : {}),
  };

  const appended = await journal(delivery, payload as Record<string, unknown>, deps, log);
  if (appended === 'unavailable') {
    deps.metrics?.rejected(503);
    deps.metrics?.delivery(event, 'rejected');
    return { status: 503, body: { error: 'journal unavailable' } };
  }
  if (appended === 'duplicate') {
    log.info('duplicate delivery');
    deps.metrics?.delivery(event, 'duplicate');
    return { status: 200, body: { status: 'duplicate' } };
  }

  log.info('journaled', { state: delivery.state, subject: delivery.subject ?? undefined, ...(reason ? { reason } : {}) });
  try {
    deps.onJournaled(delivery, payload as Record<string, unknown>);
  } catch (error) {
    // The delivery is durable: a failing hook must not turn a committed delivery into an error answer.
    // A pending one is picked up by the scheduler's resume at the next start at the latest.
    log.error('after-journal hook failed', { error: errorText(error) });
  }
  if (delivery.state === 'ignored') {
    deps.metrics?.delivery(event, 'ignored');
    return { status: 202, body: { status: 'ignored' }, delivery };
  }
  deps.metrics?.delivery(event, 'accepted');
  return { status: 202, body: { status: 'accepted', delivery: id }, delivery };
}

/**
 * Appends the delivery, with the receiver's side write (`beforeJournal`: a push's context generation)
 * started beside it. Both settle before the answer (no rejection left unhandled); either failing is
 * `unavailable`, answered 503: never a 202 without the commit.
 */
async function journal(
  delivery: NewDelivery,
  payload: Record<string, unknown>,
  deps: ReceiverDeps,
  log: Logger,
): Promise<'accepted' | 'duplicate' | 'unavailable'> {
  try {
    const alongside = deps.beforeJournal?.(delivery, payload);
    const append = deps.journal.append(delivery);
    const [side, row] = await Promise.allSettled([alongside, append]);
    if (row.status === 'rejected') throw row.reason;
    if (side.status === 'rejected') throw side.reason;
    return row.value;
  } catch (error) {
    log.error('journal unavailable', { error: errorText(error) });
    return 'unavailable';
  }
}

function header(headers: ReceivedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined ? undefined : s.trim();
}

/** `X-Gitea-<name>`, else the Forgejo, Gogs and GitHub aliases; empty values count as missing. */
function aliased(headers: ReceivedRequest['headers'], name: string): string | undefined {
  for (const prefix of PREFIXES) {
    const v = header(headers, prefix + name);
    if (v) return v;
  }
  return undefined;
}

/**
 * Candidate signatures as `sha256=<hex>`: `X-Gitea-Signature` (and its Forgejo/Gogs copies) is bare
 * hex, `X-Hub-Signature-256` has the prefix. A hook without a secret sends `""` and `sha256=`: missing.
 */
function signaturesOf(headers: ReceivedRequest['headers']): string[] {
  const found = new Set<string>();
  for (const name of ['x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature']) {
    const v = header(headers, name);
    if (v) found.add(`sha256=${v.toLowerCase()}`);
  }
  const hub = header(headers, 'x-hub-signature-256');
  if (hub && /^sha256=./i.test(hub)) found.add(`sha256=${hub.slice(7).toLowerCase()}`);
  return [...found];
}

async function verified(json: string, signatures: string[], secrets: string[]): Promise<boolean> {
  if (json.length === 0) return false; // verify() throws on an empty payload
  for (const secret of secrets) {
    for (const signature of signatures) {
      if (await verify(secret, json, signature)) return true;
    }
  }
  return false;
}

/**
 * The headers as received, for replay. A form delivery is stored with its decoded JSON body, so
 * its stored headers say JSON: re-sent as they are, they verify (the signature covers that JSON).
 * `Authorization` (a hook's optional authorization header, a credential) is not stored: the
 * receiver does not use it, and journal rows end up in exports.
 */
function storedHeaders(headers: ReceivedRequest['headers'], form: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.toLowerCase() === 'authorization' || name.toLowerCase() === 'cookie') continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  if (form) {
    out['content-type'] = 'application/json';
    delete out['content-length'];
  }
  return out;
}
