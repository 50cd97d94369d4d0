import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { giteaDeliveryHeaders } from '../receiver/sign.js';

/**
 * Webhook deliveries as Gitea 1.25 sends them (services/webhook/deliver.go): the payload is Go's
 * `json.MarshalIndent(payload, "", "  ")` — which escapes `<`, `>`, `&` (and U+2028/U+2029) as `\u003c`… —
 * signed with HMAC-SHA256 (hex, no prefix, in `X-Gitea-Signature`/`X-Gogs-Signature`; `sha256=` prefixed in
 * `X-Hub-Signature-256`) and HMAC-SHA1 (`X-Hub-Signature: sha1=…`), over the JSON bytes even for `form` hooks.
 * The `X-GitHub-*` names keep that exact casing.
 */
export interface Delivery {
  headers: Record<string, string>;
  body: string;
}

export interface DeliveryOptions {
  secret?: string;
  /** Defaults to a random UUID (one per hook task, like Gitea). */
  id?: string;
  contentType?: 'json' | 'form';
  /** `X-Gitea-Hook-Installation-Target-Type`: `repository` for repo hooks, `organization` for org hooks. */
  targetType?: string;
  /** Forgejo's header set (`X-Forgejo-*` too, no target type). */
  forgejo?: boolean;
}

/** Go's `encoding/json` output for a value: 2-space indent, HTML-sensitive characters escaped. */
export function goJson(payload: unknown): string {
  return JSON.stringify(payload, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's `url.QueryEscape` (space → `+`, everything but `[A-Za-z0-9-_.~]` percent-encoded). */
export function goQueryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

export function makeDelivery(event: string, type: string, payload: unknown, options: DeliveryOptions = {}): Delivery {
  const json = goJson(payload);
  const id = options.id ?? randomUUID();
  const secret = options.secret ?? '';
  const form = options.contentType === 'form';
  const body = form ? `payload=${goQueryEscape(json)}` : json;
  return {
    headers: {
      ...giteaDeliveryHeaders({ id, event, type, json, secret, form, ...(options.targetType ? { targetType: options.targetType } : {}), ...(options.forgejo ? { forgejo: true } : {}) }),
      'Content-Length': String(Buffer.byteLength(body, 'utf8')),
      'Accept-Encoding': 'gzip',
    },
    body,
  };
}

/** `X-Gitea-Event` for an event type (modules/webhook/type.go `HookEventType.Event()`). */
export function eventFamily(type: string): string {
  if (type === 'issues' || type.startsWith('issue_')) {
    return type === 'issue_comment' ? 'issue_comment' : 'issues';
  }
  if (type === 'pull_request_comment') return 'issue_comment';
  // Reviews: X-Gitea-Event `pull_request_approved` / `_rejected` / `_comment` (the last is a review, not a comment).
  if (type === 'pull_request_review_approved') return 'pull_request_approved';
  if (type === 'pull_request_review_rejected') return 'pull_request_rejected';
  if (type === 'pull_request_review_comment') return 'pull_request_comment';
  if (type === 'pull_request' || type.startsWith('pull_request_')) return 'pull_request';
  return type;
}

/**
 * models/webhook/webhook.go `Webhook.HasEvent`: the three review delivery types are switched on by the
 * hook's one `pull_request_review` event (v1.25.4).
 */
export function hookHasEvent(events: ReadonlySet<string>, type: string): boolean {
  return events.has(/^pull_request_review_(approved|rejected|comment)$/.test(type) ? 'pull_request_review' : type);
}

/** What a hook's `events` option turns into (routers/api/v1/utils/hook.go `issuesHook`/`pullHook`). */
export function expandHookEvents(events: string[]): Set<string> {
  const chosen = new Set(events.map((e) => e.toLowerCase()));
  const out = new Set<string>();
  const has = (e: string): boolean => chosen.has(e);
  for (const e of ['create', 'delete', 'fork', 'push']) if (has(e)) out.add(e);
  // "issues" turns on every issue event type, "issues_only" just the `issues` one.
  if (has('issues') || has('issues_only')) out.add('issues');
  for (const e of ['issue_assign', 'issue_label', 'issue_milestone', 'issue_comment']) if (has('issues') || has(e)) out.add(e);
  if (has('pull_request') || has('pull_request_only')) out.add('pull_request');
  for (const e of [
    'pull_request_assign',
    'pull_request_label',
    'pull_request_milestone',
    'pull_request_comment',
    'pull_request_review',
    'pull_request_review_request',
    'pull_request_sync',
  ]) {
    if (has('pull_request') || has(e)) out.add(e);
  }
  for (const e of ['wiki', 'repository', 'release', 'package', 'status', 'workflow_run', 'workflow_job']) if (has(e)) out.add(e);
  return out;
}

/** Sends one delivery; resolves with the status or the error, never rejects. Gitea waits 5 s (DELIVER_TIMEOUT). */
export function sendDelivery(
  url: string,
  delivery: Delivery,
  agents: { http: http.Agent; https: https.Agent },
  extraHeaders: Record<string, string> = {},
  timeoutMs = 5000,
  method: 'POST' | 'GET' = 'POST',
): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve({ error: `invalid URL ${url}` });
      return;
    }
    let headers: Record<string, string> = { ...delivery.headers, ...extraHeaders };
    if (method === 'GET') {
      // services/webhook/deliver.go newDefaultRequest: a GET hook sends the JSON as `?payload=`, no body, no Content-Type.
      const json = headers['Content-Type'] === 'application/x-www-form-urlencoded' ? new URLSearchParams(delivery.body).get('payload') ?? '' : delivery.body;
      target.searchParams.set('payload', json);
      const { 'Content-Type': _type, 'Content-Length': _length, ...rest } = headers;
      headers = rest;
    }
    const secure = target.protocol === 'https:';
    const request = (secure ? https : http).request(
      target,
      { method, headers, agent: secure ? agents.https : agents.http },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode }));
        res.on('error', (err) => resolve({ status: res.statusCode, error: err.message }));
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on('error', (err) => resolve({ error: err.message }));
    request.end(method === 'GET' ? undefined : delivery.body);
  });
}
