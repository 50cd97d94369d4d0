import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Journal } from '../../../src/journal/journal.js';
import { silentLogger } from '../../../src/log/logger.js';
import { receiveDelivery, type ReceiverDeps } from '../../../src/receiver/receive.js';
import { startService, type TestService } from '../../helpers/service.js';
import { FUZZ_SECRET, fuzzRequest, httpBytes, looksLikePayload, rawRequest, validlySigned } from '../../helpers/reliability/fuzz.js';

// Bad input never gets past the receiver: whatever arrives — random methods, paths, headers, content
// types, bytes, truncated or deeply nested JSON, huge headers, valid signatures over garbage — the
// answer is a 4xx (2xx only for a validly signed payload), never a 5xx, and nothing is journaled
// without a valid signature. Seeds are fixed so that a failure replays; fast-check prints the case.

const BULK_RUNS = 2500;
const HTTP_RUNS = 500;

/** Every error answer is `{"error": "<one line>"}`: no stack trace, no path of ours. */
function expectCleanError(body: Record<string, unknown>): void {
  expect(Object.keys(body)).toEqual(['error']);
  const text = String(body.error);
  expect(text).not.toMatch(/\n|\s+at\s+\S+\s+\(|node_modules|\/src\//);
}

describe('receiveDelivery under random input (real journal)', () => {
  let dir: string;
  let journal: Journal;
  let deps: ReceiverDeps;
  const rows = () => (journal.db.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
    journal = Journal.open({ dataDir: dir, sync: 'normal', log: silentLogger() });
    deps = {
      secrets: ['an-older-secret-0000', FUZZ_SECRET],
      maxBodyBytes: 1 << 20,
      journal,
      botLogin: () => 'triage-bot',
      shuttingDown: () => false,
      onJournaled: () => undefined,
      log: silentLogger(),
    };
  });
  afterAll(async () => {
    await journal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`answers ${BULK_RUNS} random requests with 2xx/4xx only, journaling only validly signed payloads`, async () => {
    const tally = new Map<number, number>();
    let signedAccepted = 0;
    await fc.assert(
      fc.asyncProperty(fuzzRequest, async (req) => {
        const before = rows();
        const r = await receiveDelivery({ headers: req.headers, body: req.body }, deps);
        const after = rows();
        tally.set(r.status, (tally.get(r.status) ?? 0) + 1);

        expect(r.status).toBeGreaterThanOrEqual(200);
        expect(r.status).toBeLessThan(500);
        if (r.status >= 400) expectCleanError(r.body);
        if (!validlySigned(req)) {
          // Authentication first: an unsigned request learns nothing else and leaves no trace.
          expect([401, 413]).toContain(r.status);
          expect(after).toBe(before);
        }
        if (r.status < 300) {
          expect(validlySigned(req)).toBe(true);
          expect(looksLikePayload(req.signed)).toBe(true);
        }
        // One row per 202, none otherwise (a repeated delivery id is a 200 duplicate).
        expect(after - before).toBe(r.status === 202 ? 1 : 0);
        if (r.status === 202) signedAccepted++;
      }),
      { numRuns: BULK_RUNS, seed: 20260301, endOnFailure: true },
    );
    // The generator must reach every branch, or the property proves little.
    expect(tally.get(401)).toBeGreaterThan(100);
    expect(tally.get(400)).toBeGreaterThan(100);
    expect(signedAccepted).toBeGreaterThan(50);
    expect(rows()).toBe(signedAccepted);
  });
});

describe('the Express app under random HTTP requests', () => {
  let ts: TestService;
  let port: number;

  beforeAll(async () => {
    ts = await startService({ env: { WEBHOOK_SECRET: FUZZ_SECRET, LOG_LEVEL: 'warn', MAX_BODY_BYTES: String(256 * 1024) } });
    port = Number(new URL(ts.url).port);
  });
  afterAll(async () => {
    await ts?.close();
  });

  const method = fc.oneof(
    fc.constantFrom('POST', 'POST', 'POST', 'GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'post', 'BREW'),
    fc.stringMatching(/^[A-Z]{1,12}$/),
  );
  const target = fc.oneof(
    fc.constantFrom('/webhook', '/webhook', '/webhook', '/webhook/', '/WEBHOOK', '/webhook?x=1&x=2', '/healthz', '/readyz', '/metrics', '/', '*'),
    fc.constantFrom('/%', '/%zz', '/..%2f..%2fetc%2fpasswd', '//webhook', '/webhook%00', 'http://evil.example/webhook', '/\u00ff'),
    fc.webPath(),
  );
  // One request in ten carries a header of 8 to 100 KB (Node's limit is 16 KB for the whole head).
  const huge = fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.record({ name: fc.constantFrom('x-huge', 'x-gitea-event', 'cookie'), size: fc.integer({ min: 8_000, max: 100_000 }) }) },
  );

  it(`answers ${HTTP_RUNS} random HTTP requests without a 5xx, journaling only validly signed payloads`, async () => {
    const tally = new Map<number, number>();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.constant<[string, string]>(['POST', '/webhook']), fc.tuple(method, target)), fuzzRequest, huge, async ([m, t], req, big) => {
        const headers = Object.entries(req.headers);
        if (big) headers.push([big.name, 'a'.repeat(big.size)]);
        const answer = await rawRequest(port, httpBytes(m, t, headers, req.body));
        tally.set(answer.status, (tally.get(answer.status) ?? 0) + 1);
        // 0: Node dropped the connection without an answer (e.g. CONNECT with no handler): not a 5xx either.
        expect(answer.status === 0 || (answer.status >= 200 && answer.status < 500)).toBe(true);
        if (answer.status >= 200 && answer.status < 300 && m === 'POST') {
          expect(validlySigned(req)).toBe(true);
          expect(looksLikePayload(req.signed)).toBe(true);
        }
        if (answer.status >= 400 && /content-type: application\/json/i.test(answer.head) && answer.body) {
          expectCleanError(JSON.parse(answer.body) as Record<string, unknown>);
        }
        if (answer.status === 202) accepted++;
      }),
      { numRuns: HTTP_RUNS, seed: 4242, endOnFailure: true },
    );
    expect(tally.get(0) ?? 0).toBeLessThan(HTTP_RUNS / 10);
    expect(tally.get(431)).toBeGreaterThan(0); // the huge headers did reach Node's limit
    // Still serving, and the journal holds exactly the accepted deliveries.
    expect((await ts.get('/healthz')).status).toBe(200);
    const n = (ts.service.journal.db.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n;
    expect(n).toBe(accepted);
    expect(accepted).toBeGreaterThan(5);
  });
});
