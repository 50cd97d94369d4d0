import net from 'node:net';
import fc from 'fast-check';
import { signPayload } from '../../../src/receiver/sign.js';
import { FIXTURES, giteaJson, goQueryEscape, loadFixture } from '../signing.js';

/**
 * Arbitraries for hostile webhook requests, shared by the receiver fuzz tests: random and real
 * event names, header sets, content types, bodies (bytes, random JSON, truncated and deeply nested
 * JSON, real Gitea payloads with random damage), and signatures that are missing, random, made with
 * another secret, or valid over whatever the body is.
 */
export type SignatureKind = 'none' | 'random' | 'other-secret' | 'valid' | 'valid-hub-only' | 'valid-uppercase' | 'empty';

export interface FuzzRequest {
  headers: Record<string, string>;
  body: Buffer;
  /** The bytes the signature covers (the body, or the form's `payload` field). */
  signed: string;
  signature: SignatureKind;
  form: boolean;
}

const EVENTS = ['issues', 'issue_comment', 'pull_request', 'push', 'repository', 'release', 'create', '', ' ', 'ISSUES', 'issues\u0000'];
const CONTENT_TYPES = [
  'application/json',
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/json; charset=latin1',
  '',
  'garbage/;;;=',
];

/** Header values Node's client and server accept (no CR/LF/NUL): printable ASCII and Latin-1. */
const headerValue = fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e\x80-\xff]/g, '').trim());
const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,24}$/);

/** A real payload, sometimes damaged: a key deleted or set to a random JSON value, at the top or one level down. */
const payload = fc
  .record({
    fixture: fc.constantFrom(...FIXTURES),
    damage: fc.option(
      fc.record({ depth: fc.constantFrom(0, 1), pick: fc.nat(), value: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }) }),
      { nil: undefined },
    ),
  })
  .map(({ fixture, damage }) => {
    const { headers, body } = loadFixture(fixture);
    const copy = structuredClone(body) as Record<string, unknown>;
    if (damage) {
      let target: Record<string, unknown> = copy;
      if (damage.depth === 1) {
        const objects = Object.values(copy).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v));
        if (objects.length > 0) target = objects[damage.pick % objects.length]!;
      }
      const keys = Object.keys(target);
      const key = keys[damage.pick % Math.max(1, keys.length)];
      if (key !== undefined) {
        if (damage.value === undefined) delete target[key];
        else target[key] = damage.value;
      }
    }
    return { event: headers['X-Gitea-Event'] ?? 'issues', json: giteaJson(copy) };
  });

const deepJson = fc.record({ depth: fc.integer({ min: 1000, max: 200_000 }), open: fc.constantFrom('[', '{"a":') }).map(({ depth, open }) => {
  const close = open === '[' ? ']' : '}';
  // A valid payload whose issue body nests `depth` levels: parsing must neither stack-overflow nor 5xx.
  const inner = `${open.repeat(depth)}1${close.repeat(depth)}`;
  return `{"action":"opened","repository":{"name":"widgets","owner":{"login":"acme"}},"issue":{"number":7,"extra":${inner}},"sender":{"login":"alice"}}`;
});

/** JSON text (as the signature covers it) in many shapes; `event` when the shape belongs to one. */
const bodyText: fc.Arbitrary<{ text: string; event?: string }> = fc.oneof(
  { weight: 4, arbitrary: payload.map((p) => ({ text: p.json, event: p.event })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ text: JSON.stringify(v) ?? 'null' })) },
  { weight: 2, arbitrary: payload.chain((p) => fc.nat({ max: p.json.length }).map((cut) => ({ text: p.json.slice(0, cut), event: p.event }))) },
  { weight: 1, arbitrary: deepJson.map((text) => ({ text, event: 'issues' })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 400 }).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '{}', '[]', 'null', '{"repository":null}', '{"repository":{}}').map((text) => ({ text })) },
);

/** Anything goes: each part drawn on its own. */
const anyRequest = fc
  .record({
    body: bodyText,
    event: fc.oneof(fc.constantFrom(...EVENTS), headerValue),
    useRealEvent: fc.boolean(),
    delivery: fc.oneof(fc.uuid(), headerValue, fc.constant('x'.repeat(300)), fc.constant('')),
    contentType: fc.oneof(fc.constantFrom(...CONTENT_TYPES), headerValue),
    signature: fc.constantFrom<SignatureKind>('none', 'random', 'other-secret', 'valid', 'valid', 'valid', 'valid-hub-only', 'valid-uppercase', 'empty'),
    extra: fc.dictionary(headerName, headerValue, { maxKeys: 6 }),
    aliases: fc.constantFrom('gitea', 'forgejo', 'gogs', 'github', 'none'),
    randomBytes: fc.option(fc.uint8Array({ maxLength: 300 }), { freq: 6, nil: undefined }),
  })
  .map((r) => {
    const form = r.contentType.split(';')[0]?.trim().toLowerCase() === 'application/x-www-form-urlencoded';
    let signed = r.body.text;
    let body = Buffer.from(form ? `payload=${goQueryEscape(signed)}` : signed, 'utf8');
    if (r.randomBytes) {
      // Bytes that are neither JSON nor UTF-8; "valid" then signs what a receiver decodes from them.
      body = Buffer.from(r.randomBytes);
      signed = form ? (new URLSearchParams(body.toString('utf8')).get('payload') ?? '') : body.toString('utf8');
    }
    const headers: Record<string, string> = { ...r.extra };
    const event = r.useRealEvent && r.body.event ? r.body.event : r.event;
    const prefix = r.aliases === 'none' ? undefined : `x-${r.aliases}-`;
    if (prefix) {
      headers[`${prefix}event`] = event;
      headers[`${prefix}delivery`] = r.delivery;
    }
    headers['content-type'] = r.contentType;
    const hex = signPayload(FUZZ_SECRET, signed);
    switch (r.signature) {
      case 'random':
        headers['x-gitea-signature'] = signPayload('guess', String(Math.random()));
        break;
      case 'other-secret':
        headers['x-hub-signature-256'] = `sha256=${signPayload('not-the-secret', signed)}`;
        break;
      case 'valid':
        headers['x-gitea-signature'] = hex;
        break;
      case 'valid-hub-only':
        headers['x-hub-signature-256'] = `sha256=${hex}`;
        break;
      case 'valid-uppercase':
        headers['x-gitea-signature'] = hex.toUpperCase();
        break;
      case 'empty':
        headers['x-gitea-signature'] = '';
        headers['x-hub-signature-256'] = 'sha256=';
        break;
      case 'none':
        break;
    }
    return { headers, body, signed, signature: r.signature, form };
  });

/** Close to what Gitea sends: a real (maybe damaged) payload, its event, a fresh id, a valid signature, extra headers. */
const nearlyValid = fc
  .record({ p: payload, id: fc.uuid(), form: fc.boolean(), extra: fc.dictionary(headerName, headerValue, { maxKeys: 4 }) })
  .map(({ p, id, form, extra }): FuzzRequest => {
    const body = Buffer.from(form ? `payload=${goQueryEscape(p.json)}` : p.json, 'utf8');
    const headers: Record<string, string> = {
      ...extra,
      'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
      'x-gitea-event': p.event,
      'x-gitea-delivery': id,
      'x-gitea-signature': signPayload(FUZZ_SECRET, p.json),
    };
    return { headers, body, signed: p.json, signature: 'valid', form };
  });

export const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.oneof({ weight: 3, arbitrary: anyRequest }, { weight: 1, arbitrary: nearlyValid });

export const FUZZ_SECRET = 'fuzz-webhook-secret-91b3';

/** Whether the request carries a signature that matches its bytes under {@link FUZZ_SECRET}. */
export function validlySigned(r: FuzzRequest): boolean {
  return r.signature.startsWith('valid') && r.signed.length > 0;
}

/** The signed text is a JSON object with a `repository` object: the least a payload is. */
export function looksLikePayload(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { repository?: unknown }).repository === 'object' && (v as { repository?: unknown }).repository !== null;
  } catch {
    return false;
  }
}

export interface RawAnswer {
  /** 0 when the server closed the connection without a status line. */
  status: number;
  head: string;
  body: string;
}

/**
 * Sends raw bytes over a fresh TCP connection and reads until the server closes it (requests carry
 * `Connection: close`), so that anything, including what Node's HTTP client refuses to send, can be tried.
 */
export function rawRequest(port: number, bytes: Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the answer: the answer is what counts
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, head: split >= 0 ? text.slice(0, split) : text, body: split >= 0 ? text.slice(split + 4) : '' });
    });
    socket.end(bytes);
  });
}

/** An HTTP/1.1 request as bytes; header lines are written as given (no validation). */
export function httpBytes(method: string, target: string, headers: [string, string][], body: Buffer): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([k, v]) => `${k}: ${v}`), `Content-Length: ${body.length}`, 'Connection: close'];
  return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}
