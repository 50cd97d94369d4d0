import { createHmac } from 'node:crypto';

/**
 * Signs a payload the way Gitea does (services/webhook/deliver.go): lowercase hex HMAC-SHA256 of
 * the JSON bytes with the hook's secret. For the replay tool, tests and the benchmark.
 */
export function signPayload(secret: string, json: string | Buffer): string {
  return createHmac('sha256', secret).update(json).digest('hex');
}

/** Both signature headers Gitea sends: `X-Gitea-Signature: <hex>` and `X-Hub-Signature-256: sha256=<hex>`. */
export function signatureHeaders(secret: string, json: string | Buffer): Record<string, string> {
  const hex = signPayload(secret, json);
  return { 'X-Gitea-Signature': hex, 'X-Hub-Signature-256': `sha256=${hex}` };
}

export interface GiteaHeaderInput {
  id: string;
  /** `X-Gitea-Event`, the event family (`issues`). */
  event: string;
  /** `X-Gitea-Event-Type`, the exact type (`issue_label`). */
  type: string;
  /** The JSON signed: for a `form` hook the signature still covers the JSON, not the form body. */
  json: string;
  /** Empty: Gitea sends an empty `X-Gitea-Signature` and bare `sha1=`/`sha256=` prefixes. */
  secret: string;
  /** `X-Gitea-Hook-Installation-Target-Type`: `repository` or `organization`. */
  targetType?: string;
  form?: boolean;
  userAgent?: string;
  /**
   * Forgejo's set instead (services/webhook/shared/payloader.go AddDefaultHeaders, Forgejo v7.0.0 … v8.0.2):
   * `X-Forgejo-Delivery`/`-Event`/`-Event-Type`/`-Signature` first, then the same Gitea, Gogs, Hub and
   * GitHub headers, and no `…-Hook-Installation-Target-Type`.
   */
  forgejo?: boolean;
}

/**
 * The headers Gitea sends with a delivery (services/webhook/deliver.go, addDefaultHeaders): the
 * `X-Gitea-*` set and its `X-Gogs-*` and `X-GitHub-*` copies (that exact casing), HMAC-SHA256 (hex,
 * bare in `X-Gitea-Signature`/`X-Gogs-Signature`, `sha256=` in `X-Hub-Signature-256`) and HMAC-SHA1
 * (`X-Hub-Signature: sha1=…`) over the JSON. For the simulated Gitea and the replay tool.
 */
export function giteaDeliveryHeaders(input: GiteaHeaderInput): Record<string, string> {
  const { id, event, type, json, secret } = input;
  const sha256 = secret ? signPayload(secret, json) : '';
  const sha1 = secret ? createHmac('sha1', secret).update(json).digest('hex') : '';
  const target = input.targetType ?? 'repository';
  // Forgejo sends the same sets plus its own first, without `…-Hook-Installation-Target-Type`.
  const forgejo = input.forgejo === true;
  const named = (prefix: string, signed: boolean): Record<string, string> => ({
    [`X-${prefix}-Delivery`]: id,
    [`X-${prefix}-Event`]: event,
    [`X-${prefix}-Event-Type`]: type,
    ...(signed ? { [`X-${prefix}-Signature`]: sha256 } : {}),
  });
  return {
    'Content-Type': input.form ? 'application/x-www-form-urlencoded' : 'application/json',
    ...(forgejo ? named('Forgejo', true) : {}),
    ...named('Gitea', true),
    ...(forgejo ? {} : { 'X-Gitea-Hook-Installation-Target-Type': target }),
    ...named('Gogs', true),
    'X-Hub-Signature': `sha1=${sha1}`,
    'X-Hub-Signature-256': `sha256=${sha256}`,
    ...named('GitHub', false),
    ...(forgejo ? {} : { 'X-GitHub-Hook-Installation-Target-Type': target }),
    'User-Agent': input.userAgent ?? 'Go-http-client/1.1',
  };
}
