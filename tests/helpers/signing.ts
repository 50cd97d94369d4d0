import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { signPayload } from '../../src/receiver/sign.js';

/** The secret the fixtures in tests/fixtures/payloads/ are signed with. */
export const FIXTURE_SECRET = 'example-webhook-secret';

export const FIXTURES = [
  'issues-opened',
  'issues-edited',
  'issues-label_updated',
  'issue_comment-created',
  'pull_request-opened',
  'pull_request-synchronized',
  'push',
] as const;
export type FixtureName = (typeof FIXTURES)[number];

const dir = new URL('../fixtures/payloads/', import.meta.url);

/** A fixture file: `{headers, body}` as Gitea sent it (header names in Gitea's casing). */
export function loadFixture(name: string): { headers: Record<string, string>; body: Record<string, unknown> } {
  return JSON.parse(fs.readFileSync(new URL(`${name}.json`, dir), 'utf8')) as {
    headers: Record<string, string>;
    body: Record<string, unknown>;
  };
}

/**
 * Gitea's bytes for a payload: Go's json with 2-space indent. Go escapes `<`, `>`, `&` (and U+2028/9)
 * as `\u003c`…; JSON.stringify does not, so re-add those escapes to get byte-identical output.
 */
export function giteaJson(body: unknown): string {
  return JSON.stringify(body, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's url.QueryEscape, as used for a `form` hook's `payload=` body. */
export function goQueryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

export interface SignedDelivery {
  headers: Record<string, string>;
  body: Buffer;
  /** The JSON that was signed. */
  json: string;
  id: string;
}

export interface DeliveryOptions {
  event: string;
  /** `X-Gitea-Event-Type`; defaults to `event`. */
  eventType?: string;
  /** A fresh UUID unless given. */
  id?: string;
  secret?: string;
  contentType?: 'json' | 'form';
  /** Which signature headers to send (default both). */
  signatures?: 'both' | 'gitea' | 'hub' | 'none';
}

/**
 * The whole header set Gitea sends for one delivery (services/webhook/deliver.go, addDefaultHeaders),
 * with the signature computed over `json`, and the body (`json`, or `payload=<escaped json>` for a form hook).
 */
export function signDelivery(json: string, options: DeliveryOptions): SignedDelivery {
  const id = options.id ?? randomUUID();
  const secret = options.secret ?? FIXTURE_SECRET;
  const eventType = options.eventType ?? options.event;
  const hex = signPayload(secret, json);
  const form = options.contentType === 'form';
  const body = Buffer.from(form ? `payload=${goQueryEscape(json)}` : json, 'utf8');
  const which = options.signatures ?? 'both';
  const headers: Record<string, string> = {
    'Content-Type': form ? 'application/x-www-form-urlencoded' : 'application/json',
    'X-Gitea-Delivery': id,
    'X-Gitea-Event': options.event,
    'X-Gitea-Event-Type': eventType,
    ...(which === 'both' || which === 'gitea' ? { 'X-Gitea-Signature': hex } : {}),
    'X-Gitea-Hook-Installation-Target-Type': 'repository',
    'X-Gogs-Delivery': id,
    'X-Gogs-Event': options.event,
    'X-Gogs-Event-Type': eventType,
    ...(which === 'both' || which === 'gitea' ? { 'X-Gogs-Signature': hex } : {}),
    ...(which === 'both' || which === 'hub' ? { 'X-Hub-Signature-256': `sha256=${hex}` } : {}),
    'X-GitHub-Delivery': id,
    'X-GitHub-Event': options.event,
    'X-GitHub-Event-Type': eventType,
    'X-GitHub-Hook-Installation-Target-Type': 'repository',
    'User-Agent': 'Go-http-client/1.1',
    'Content-Length': String(body.length),
  };
  return { headers, body, json, id };
}

/**
 * A fixture as Gitea would deliver it, under a fresh delivery id unless `id` is given; `mutate` edits a
 * deep copy of the body (the result is re-signed). Unchanged, the signature is the fixture's own.
 */
export function fixtureDelivery(
  name: string,
  options: Partial<DeliveryOptions> & { mutate?: (body: Record<string, any>) => void } = {},
): SignedDelivery {
  const fixture = loadFixture(name);
  const body = structuredClone(fixture.body) as Record<string, any>;
  options.mutate?.(body);
  return signDelivery(giteaJson(body), {
    event: fixture.headers['X-Gitea-Event']!,
    eventType: fixture.headers['X-Gitea-Event-Type'],
    ...options,
  });
}

/** Lower-cased header names, as a Node server sees them (for calling `receiveDelivery` directly). */
export function lowerCased(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
