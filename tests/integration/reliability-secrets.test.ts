import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { signDelivery } from '../helpers/signing.js';
import type { HttpAnswer } from '../helpers/service.js';
import {
  deliveryFor,
  expectedLabels,
  labelsNow,
  ORG,
  postAll,
  REPO,
  SECRET,
  seedItems,
  seedRepo,
  settle,
  startWorld,
  TOKEN,
  type Item,
  type World,
} from '../helpers/reliability/world.js';

// Secrets and reach. A whole scenario at LOG_LEVEL debug — good deliveries, a wrong signature, a body
// that is not JSON, a Gitea 401 whose message echoes the Authorization header, 500s, a failing
// evaluation — with the logger configured as src/main.ts configures it: no log line, no HTTP answer
// and no byte of the journal holds the token or the webhook secret. And every address inside the
// payloads points at a second local server that must never be asked anything: the service only
// ever talks to GITEA_URL.

const OLD_SECRET = 'rotated-out-3d81f0c2';

/** Every 8-character piece of a secret: a cut or partly masked secret is still a leak. */
function fragments(secret: string, size = 8): string[] {
  const out: string[] = [];
  for (let i = 0; i + size <= secret.length; i++) out.push(secret.slice(i, i + size));
  return out;
}

const SECRETS = [TOKEN, SECRET, OLD_SECRET];
const FORBIDDEN = [
  ...SECRETS.flatMap((s) => fragments(s)),
  ...SECRETS.map((s) => Buffer.from(s).toString('base64').slice(0, 16)),
];

function leaks(text: string): string[] {
  return FORBIDDEN.filter((f) => text.includes(f));
}

interface Trap {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/** A server that records anything asked of it. */
async function startTrap(): Promise<Trap> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let w: World | undefined;
let trap: Trap | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
  await trap?.close();
  trap = undefined;
});

/** Files of the journal (database, WAL) as text: nothing secret is stored either. */
function journalBytes(dataDir: string): string {
  return fs
    .readdirSync(dataDir)
    .filter((f) => f.startsWith('journal.db'))
    .map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1'))
    .join('\n');
}

describe('secrets and reach', () => {
  // Twice: with the logger's mask as src/main.ts sets it (what an operator sees), and without it (the
  // code itself never hands a secret to the logger; the mask is a safety net, not the mechanism).
  it.each([
    ['with the redact list of src/main.ts', undefined],
    ['with no redact list at all', [] as string[]],
  ])('never logs, answers or stores the token or a secret, and never requests an address from a payload (%s)', async (_how, redact) => {
    trap = await startTrap();
    let items: Item[] = [];
    w = await startWorld({
      env: { LOG_LEVEL: 'debug', WEBHOOK_SECRET: `${OLD_SECRET},${SECRET}`, GITEA_RETRIES: '1', EVAL_MAX_ATTEMPTS: '2' },
      client: { retryBaseMs: 5, retryMaxMs: 20 },
      gate: true,
      echo: true,
      ...(redact ? { redact } : {}),
      seed: (sim) => {
        seedRepo(sim);
        items = seedItems(sim, 6);
      },
    });
    const [rejected, flaky, ...rest] = items as [Item, Item, ...Item[]];
    // Gitea (or a proxy before it) refuses one issue with 401 and a message that repeats the credentials.
    w.gate!.rules.push({
      match: new RegExp(`^GET /api/v1/repos/${ORG}/${REPO}/issues/${rejected.number}$`),
      status: 401,
      body: (req) => ({ message: `invalid credentials: ${String(req.headers.authorization)}` }),
    });
    // Another one fails twice with 500 before it works.
    let failures = 2;
    w.gate!.rules.push({
      match: new RegExp(`^GET /api/v1/repos/${ORG}/${REPO}/issues/${flaky.number}$`),
      status: () => (failures-- > 0 ? 500 : undefined),
    });

    const answers: HttpAnswer[] = [];
    const good = items.map((item, k) => deliveryFor(item, 'opened', k, { urlsTo: trap!.url }));
    answers.push(...(await postAll(good, w.post)));
    // A wrong signature, a missing one, and a validly signed body that is not JSON.
    answers.push(await w.post(deliveryFor(rest[0]!, 'edited', 50, { secret: 'a-guessed-secret', urlsTo: trap.url })));
    const unsigned = deliveryFor(rest[0]!, 'edited', 51, { urlsTo: trap.url });
    delete unsigned.headers['X-Gitea-Signature'];
    delete unsigned.headers['X-Gogs-Signature'];
    delete unsigned.headers['X-Hub-Signature-256'];
    answers.push(await w.post(unsigned));
    answers.push(await w.post(signDelivery('{"repository": {', { event: 'issues', secret: SECRET })));
    await settle(w, 20_000);
    answers.push(await w.get('/readyz'), await w.get('/metrics'), await w.get('/healthz'));

    // The scenario did what it says.
    expect(answers.slice(0, items.length).map((a) => a.status)).toEqual(items.map(() => 202));
    expect(answers.slice(items.length, items.length + 3).map((a) => a.status)).toEqual([401, 401, 400]);
    expect(w.service.journal.get(good[0]!.id)?.state).toBe('failed'); // the 401: a permanent error
    expect(w.logs.find({ msg: 'failed', delivery: good[0]!.id })).toHaveLength(1);
    expect(w.logs.find({ msg: 'gitea request failed; retrying', status: 500 }).length).toBeGreaterThan(0);
    const others = items.filter((i) => i !== rejected);
    expect(labelsNow(w.sim, others)).toEqual(expectedLabels(others));
    expect(w.logs.find({ level: 'debug', msg: 'gitea request' }).length).toBeGreaterThan(10);

    // No secret anywhere an operator or a client can see.
    expect(leaks(w.logs.text)).toEqual([]);
    for (const a of answers) expect(leaks(a.text)).toEqual([]);
    expect(leaks(journalBytes(w.dataDir))).toEqual([]);

    // Only GITEA_URL was ever asked, and only its API.
    expect(trap.requests).toEqual([]);
    expect(w.gate!.requests.filter((r) => !/^[A-Z]+ \/api\/v1\//.test(r))).toEqual([]);
  }, 40_000);

  it('does not leak part of the token when a Gitea error message echoing it is shortened', async () => {
    let items: Item[] = [];
    w = await startWorld({
      env: { LOG_LEVEL: 'debug', GITEA_RETRIES: '0', EVAL_MAX_ATTEMPTS: '1' },
      gate: true,
      seed: (sim) => {
        seedRepo(sim);
        items = seedItems(sim, 1);
      },
    });
    // The client keeps 200 characters of Gitea's message: put the token across that cut.
    w.gate!.rules.push({
      match: new RegExp(`^GET /api/v1/repos/${ORG}/${REPO}/issues/${items[0]!.number}$`),
      status: 403,
      body: (req) => ({ message: `${'x'.repeat(180)} ${String(req.headers.authorization)} is not allowed here` }),
    });
    const d = deliveryFor(items[0]!, 'opened', 1);
    expect((await w.post(d)).status).toBe(202);
    await settle(w);
    expect(w.service.journal.get(d.id)?.state).toBe('failed');
    expect(leaks(w.logs.text)).toEqual([]);
    expect(leaks(journalBytes(w.dataDir))).toEqual([]);
  }, 20_000);
});
