import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { giteaDeliveryHeaders } from '../../src/receiver/sign.js';

/** The secret the benchmark's deliveries are signed with (the receiver under test is given the same). */
export const BENCH_SECRET = 'bench-webhook-secret';

/** A delivery file of `payloads/`: `{headers, body}` as Gitea sent it. */
export function loadPayload(name: string): { headers: Record<string, string>; body: Record<string, unknown> } {
  const url = new URL(`./payloads/${name}.json`, import.meta.url);
  return JSON.parse(fs.readFileSync(url, 'utf8')) as { headers: Record<string, string>; body: Record<string, unknown> };
}

/**
 * Gitea's bytes for a payload: Go's json with 2-space indent, which escapes `<`, `>`, `&` (and
 * U+2028/9) as `\u003c`…, where JSON.stringify does not.
 */
function giteaJson(body: unknown): string {
  return JSON.stringify(body, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One payload of `payloads/` as Gitea would deliver it, under a fresh delivery id, signed with
 * {@link BENCH_SECRET}; `mutate` edits a deep copy of the body first. No `Content-Length`: the load
 * generator sets it.
 */
export function benchDelivery(name: string, mutate?: (body: Record<string, any>) => void): { headers: Record<string, string>; body: Buffer } {
  const payload = loadPayload(name);
  const body = structuredClone(payload.body) as Record<string, any>;
  mutate?.(body);
  const json = giteaJson(body);
  const event = payload.headers['X-Gitea-Event']!;
  const type = payload.headers['X-Gitea-Event-Type'] ?? event;
  return { headers: giteaDeliveryHeaders({ id: randomUUID(), event, type, json, secret: BENCH_SECRET }), body: Buffer.from(json, 'utf8') };
}
