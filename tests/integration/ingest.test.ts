import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { fixtureDelivery, FIXTURE_SECRET, signDelivery, type SignedDelivery } from '../helpers/signing.js';
import { metricValue, RecordingEvaluator, request, startService, type TestService } from '../helpers/service.js';

// docs/architecture.md, "Receiving a webhook": one test per row of the answer table, over real HTTP,
// against the real service (journal in a temp dir, stub Gitea for the bot identity).

const SECOND_SECRET = 'rotated-secret-2026';
let t: TestService;
const evaluator = new RecordingEvaluator();

beforeAll(async () => {
  t = await startService({ evaluator, env: { WEBHOOK_SECRET: `${FIXTURE_SECRET},${SECOND_SECRET}`, MAX_BODY_BYTES: '20000' } });
});
afterAll(async () => {
  await t?.close();
});

const withoutHeaders = (d: SignedDelivery, ...names: string[]): SignedDelivery => {
  const headers = { ...d.headers };
  for (const name of names) delete headers[name];
  return { ...d, headers };
};

describe('POST /webhook: the answer table', () => {
  it('accepts a signed delivery of a supported event with 202 once the journal has it', async () => {
    const d = fixtureDelivery('issues-opened', { id: 'a1000000-0000-4000-8000-000000000001' });
    const answer = await t.post(d);
    expect(answer.status).toBe(202);
    expect(answer.json).toEqual({ status: 'accepted', delivery: d.id });
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const row = t.service.journal.get(d.id);
    expect(row).toMatchObject({
      id: d.id,
      event: 'issues',
      eventType: 'issues',
      action: 'opened',
      subject: 'acme/widgets#42',
      repo: 'acme/widgets',
      number: 42,
      sender: 'alice',
      updatedAt: '2026-03-02T10:15:04.000Z',
    });
    expect(row?.body).toBe(d.body.toString('utf8'));
    expect(row?.headers['x-gitea-event-type']).toBe('issues');
    expect(t.logs.find({ msg: 'journaled', delivery: d.id })[0]).toMatchObject({ event: 'issues', action: 'opened', repo: 'acme/widgets', number: 42 });
  });

  it('answers the same delivery id again with 200 duplicate', async () => {
    const d = fixtureDelivery('issues-edited', { id: 'a1000000-0000-4000-8000-000000000002' });
    expect((await t.post(d)).status).toBe(202);
    const again = await t.post(d);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ status: 'duplicate' });
  });

  it('answers an action the service does not triage with 202 ignored, and records it', async () => {
    const d = fixtureDelivery('issues-opened', { mutate: (b) => (b.action = 'closed') });
    const answer = await t.post(d);
    expect(answer.status).toBe(202);
    expect(answer.json).toEqual({ status: 'ignored' });
    expect(t.service.journal.get(d.id)).toMatchObject({ state: 'ignored', reason: 'action issues/closed is not triaged' });
  });

  it('answers an event family the service does not triage with 202 ignored', async () => {
    const d = signDelivery(JSON.stringify({ action: 'published', release: { id: 1 }, repository: { full_name: 'acme/widgets' } }), {
      event: 'release',
    });
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 202, json: { status: 'ignored' } });
    expect(t.service.journal.get(d.id)).toMatchObject({ state: 'ignored', reason: 'event release is not triaged' });
  });

  it("records the bot's own event as ignored, never evaluated", async () => {
    const d = fixtureDelivery('issues-label_updated', { mutate: (b) => (b.sender.login = 'triage-bot') });
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 202, json: { status: 'ignored' } });
    expect(t.service.journal.get(d.id)).toMatchObject({ state: 'ignored', reason: 'sent by the bot' });
    // observed (the evaluator learns the label set from it) …
    expect(evaluator.observed.map((o) => o.id)).toContain(d.id);
    await t.service.onIdle();
    // … never evaluated
    expect(evaluator.deliveryIds).not.toContain(d.id);
  });

  it('accepts a label change by a person (how the service learns who removed what)', async () => {
    const d = fixtureDelivery('issues-label_updated', { id: 'a1000000-0000-4000-8000-000000000003' });
    expect(await t.post(d)).toMatchObject({ status: 202, json: { status: 'accepted', delivery: d.id } });
  });

  it('refuses a missing signature with 401 and records nothing', async () => {
    const d = withoutHeaders(fixtureDelivery('issues-opened', { id: 'b1000000-0000-4000-8000-000000000001' }), 'X-Gitea-Signature', 'X-Gogs-Signature', 'X-Hub-Signature-256');
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 401, json: { error: 'missing signature' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
  });

  it('refuses a wrong signature with 401 and records nothing', async () => {
    const d = fixtureDelivery('issues-opened', { id: 'b1000000-0000-4000-8000-000000000002', secret: 'not-the-secret' });
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 401, json: { error: 'signature does not match' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
    expect(t.logs.text).not.toContain(d.headers['X-Gitea-Signature']);
  });

  it('refuses a body changed after signing (signature over the raw bytes)', async () => {
    const d = fixtureDelivery('issues-opened', { id: 'b1000000-0000-4000-8000-000000000003' });
    const tampered = Buffer.from(d.body.toString('utf8').replace('"alice"', '"mallory"'));
    const answer = await t.post({ headers: { ...d.headers, 'Content-Length': String(tampered.length) }, body: tampered });
    expect(answer.status).toBe(401);
  });

  it('answers 401 before anything else: a bad signature with missing headers learns nothing more', async () => {
    const d = withoutHeaders(fixtureDelivery('issues-opened', { secret: 'wrong' }), 'X-Gitea-Event', 'X-Gogs-Event', 'X-GitHub-Event', 'X-Gitea-Delivery', 'X-Gogs-Delivery', 'X-GitHub-Delivery');
    expect(await t.post(d)).toMatchObject({ status: 401, json: { error: 'signature does not match' } });
    const garbage = signDelivery('not json at all', { event: 'issues', secret: 'wrong' });
    expect((await t.post(garbage)).status).toBe(401);
  });

  it('refuses a missing X-Gitea-Event with 400', async () => {
    const d = withoutHeaders(fixtureDelivery('issues-opened', { id: 'c1000000-0000-4000-8000-000000000001' }), 'X-Gitea-Event', 'X-Gogs-Event', 'X-GitHub-Event');
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'missing X-Gitea-Event header' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
  });

  it('refuses a missing X-Gitea-Delivery with 400', async () => {
    const d = withoutHeaders(fixtureDelivery('issues-opened'), 'X-Gitea-Delivery', 'X-Gogs-Delivery', 'X-GitHub-Delivery');
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'missing X-Gitea-Delivery header' } });
  });

  it('refuses a signed body that is not JSON with 400', async () => {
    const d = signDelivery('{"action": "opened", ', { event: 'issues' });
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'body is not valid JSON' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
  });

  it('refuses a signed JSON array with 400', async () => {
    const d = signDelivery('[{"action":"opened"}]', { event: 'issues' });
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'payload is not a JSON object' } });
  });

  it('refuses a signed payload without repository with 400', async () => {
    const d = fixtureDelivery('issues-opened', { mutate: (b) => delete b.repository });
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'payload has no repository' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
  });

  it('refuses a payload that is not the shape its event describes with 400', async () => {
    const d = fixtureDelivery('push', { eventType: 'issues', event: 'issues' });
    expect(await t.post(d)).toMatchObject({ status: 400, json: { error: 'issues payload has no issue' } });
  });

  it('refuses a body larger than MAX_BODY_BYTES with 413 (declared length)', async () => {
    const d = fixtureDelivery('issues-opened', { mutate: (b) => (b.issue.body = 'x'.repeat(30_000)) });
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 413, json: { error: 'body larger than 20000 bytes' } });
    expect(t.service.journal.get(d.id)).toBeUndefined();
  });

  it('refuses a chunked body that grows over MAX_BODY_BYTES with 413', async () => {
    const d = fixtureDelivery('issues-opened', { mutate: (b) => (b.issue.body = 'y'.repeat(30_000)) });
    const headers = { ...d.headers, 'Transfer-Encoding': 'chunked' } as Record<string, string>;
    delete headers['Content-Length'];
    const answer = await t.post({ headers, body: d.body });
    expect(answer).toMatchObject({ status: 413, json: { error: 'body larger than 20000 bytes' } });
  });
});

describe('POST /webhook: what Gitea really sends', () => {
  it('verifies the raw bytes: a body with <, > and & escaped by Go (a re-serialisation would not match)', async () => {
    const raw = fs.readFileSync(new URL('../fixtures/escaped/issues-opened-html.json', import.meta.url));
    const headers = JSON.parse(fs.readFileSync(new URL('../fixtures/escaped/issues-opened-html.headers.json', import.meta.url), 'utf8')) as Record<string, string>;
    expect(raw.toString('utf8')).toContain('\\u003cb\\u003e');
    const answer = await t.post({ headers, body: raw });
    expect(answer).toMatchObject({ status: 202, json: { status: 'accepted' } });
    const row = t.service.journal.get(headers['X-Gitea-Delivery']!);
    expect(row?.body).toBe(raw.toString('utf8'));
    expect(JSON.parse(row!.body).issue.title).toBe('Editor crashes on <b>bold</b> & <i>italic</i> titles');
  });

  it.each(['gitea', 'hub'] as const)('accepts the %s signature header alone', async (which) => {
    const d = fixtureDelivery('issue_comment-created', { signatures: which });
    expect(await t.post(d)).toMatchObject({ status: 202, json: { status: 'accepted', delivery: d.id } });
  });

  it('accepts a delivery signed with the second configured secret (rotation)', async () => {
    const d = fixtureDelivery('pull_request-opened', { secret: SECOND_SECRET });
    expect(await t.post(d)).toMatchObject({ status: 202, json: { status: 'accepted' } });
  });

  it('accepts a form delivery: payload=<urlencoded JSON>, signed over the JSON', async () => {
    const d = fixtureDelivery('pull_request-synchronized', { contentType: 'form', id: 'd1000000-0000-4000-8000-000000000001' });
    expect(d.body.toString('utf8')).toMatch(/^payload=%7B%0A\+\+%22action/);
    const answer = await t.post(d);
    expect(answer).toMatchObject({ status: 202, json: { status: 'accepted', delivery: d.id } });
    const row = t.service.journal.get(d.id);
    expect(row).toMatchObject({ event: 'pull_request', eventType: 'pull_request_sync', action: 'synchronized', subject: 'acme/widgets#43' });
    expect(row?.body).toBe(d.json);
    // stored so that a replay of (headers, body) verifies as JSON
    expect(row?.headers['content-type']).toBe('application/json');
  });

  it('refuses a form delivery whose signature covers the form body instead of the JSON', async () => {
    const d = fixtureDelivery('issues-opened', { contentType: 'form' });
    const wrong = signDelivery(d.body.toString('utf8'), { event: 'issues' });
    const answer = await t.post({ headers: { ...wrong.headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body: d.body });
    expect(answer.status).toBe(401);
  });

  it('reads the Forgejo header aliases', async () => {
    const d = fixtureDelivery('issues-edited', { id: 'e1000000-0000-4000-8000-000000000001' });
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-Forgejo-Event': 'issues',
      'X-Forgejo-Event-Type': 'issues',
      'X-Forgejo-Delivery': d.id,
      'X-Forgejo-Signature': d.headers['X-Gitea-Signature']!,
    };
    expect(await t.post({ headers, body: d.body })).toMatchObject({ status: 202, json: { status: 'accepted', delivery: d.id } });
    expect(t.service.journal.get(d.id)).toMatchObject({ event: 'issues', action: 'edited' });
  });

  it('reads the GitHub header aliases (X-GitHub-* and X-Hub-Signature-256 only)', async () => {
    const d = fixtureDelivery('push', { id: 'e1000000-0000-4000-8000-000000000002' });
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-GitHub-Event': 'push',
      'X-GitHub-Delivery': d.id,
      'X-Hub-Signature-256': d.headers['X-Hub-Signature-256']!,
    };
    expect(await t.post({ headers, body: d.body })).toMatchObject({ status: 202, json: { status: 'accepted', delivery: d.id } });
    expect(t.service.journal.get(d.id)).toMatchObject({ event: 'push', eventType: 'push', subject: 'acme/widgets@refs/heads/main' });
  });

  it('prefers X-Gitea-Event over the aliases', async () => {
    const d = fixtureDelivery('issues-opened');
    const answer = await t.post({ headers: { ...d.headers, 'X-GitHub-Event': 'push', 'X-Gogs-Event': 'push' }, body: d.body });
    expect(answer.status).toBe(202);
    expect(t.service.journal.get(d.id)?.event).toBe('issues');
  });

  it('accepts a comment on a pull request (X-Gitea-Event issue_comment, type pull_request_comment)', async () => {
    const d = fixtureDelivery('issue_comment-created', {
      eventType: 'pull_request_comment',
      mutate: (b) => {
        b.is_pull = true;
        b.issue.number = 43;
      },
    });
    expect(await t.post(d)).toMatchObject({ status: 202, json: { status: 'accepted' } });
    // journaled before the answer (pending, or already evaluated: the window may have closed meanwhile)
    expect(t.service.journal.get(d.id)).toMatchObject({ eventType: 'pull_request_comment', subject: 'acme/widgets#43' });
    await t.service.onIdle();
    expect(t.service.journal.get(d.id)?.state).toBe('done');
  });
});

describe('the HTTP surface', () => {
  it('GET /healthz answers 200 ok', async () => {
    expect(await t.get('/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
  });

  it('GET /readyz answers 200 once the journal is open and the bot is known', async () => {
    expect(await t.get('/readyz')).toMatchObject({ status: 200, json: { status: 'ready' } });
  });

  it('GET /metrics exposes the delivery counters and process metrics', async () => {
    const answer = await t.get('/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.text).toMatch(/^gitea_triage_deliveries_total\{event="issues",outcome="accepted"\} [1-9]/m);
    expect(answer.text).toMatch(/^gitea_triage_webhook_rejections_total\{status="401"\} [1-9]/m);
    expect(answer.text).toMatch(/^gitea_triage_journal_pending \d+/m);
    expect(answer.text).toMatch(/^gitea_triage_process_cpu_user_seconds_total /m);
    expect(await metricValue(t.service, 'gitea_triage_deliveries_total', { event: 'issues', outcome: 'duplicate' })).toBe(1);
  });

  it('answers an unknown route with 404 JSON', async () => {
    expect(await t.get('/nope')).toMatchObject({ status: 404, json: { error: 'no route for GET /nope' } });
  });

  it('answers a wrong method with 405 JSON and Allow', async () => {
    const answer = await t.get('/webhook');
    expect(answer).toMatchObject({ status: 405, json: { error: 'method GET not allowed on /webhook' } });
    expect(answer.headers.allow).toBe('POST');
    expect((await request(t.url + '/healthz', { method: 'DELETE' })).status).toBe(405);
  });

  it('sends no X-Powered-By and no stack traces', async () => {
    const answer = await request(t.url + '/webhook', { method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'br-unknown' }, body: '{}' });
    expect(answer.headers['x-powered-by']).toBeUndefined();
    expect(answer.status).toBe(415);
    expect(Object.keys(answer.json)).toEqual(['error']);
    expect(answer.text).not.toMatch(/at .*\.(js|ts):\d+/);
  });

  it('logs no secret, token or signature', () => {
    expect(t.logs.text).not.toContain(FIXTURE_SECRET);
    expect(t.logs.text).not.toContain(SECOND_SECRET);
    expect(t.logs.text).not.toContain(t.config.giteaToken);
  });
});
