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
