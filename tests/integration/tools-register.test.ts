import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { HookTarget } from '../../src/gitea/api.js';
import { GiteaClient } from '../../src/gitea/client.js';
import type { GiteaHook } from '../../src/gitea/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { SimGitea } from '../../src/simgitea/index.js';
import { captureIO } from '../helpers/capture-io.js';
import { SERVICE_EVENTS } from '../../src/tools/hook-events.js';
import {
  formatRegisterReport,
  labelColor,
  parseRegisterArgs,
  registerWebhook,
  registerWebhookMain,
  type RegisterOptions,
} from '../../src/tools/register-webhook.js';
import { spawnTs } from '../helpers/process.js';

/**
 * `register-webhook` against the simulated Gitea over real HTTP: the hook it leaves behind, what a
 * second run does, repairs, secret rotation, dry runs, labels from the triage config, and failures.
 * Hooks are checked the way an operator would: `GET …/hooks`, and a real delivery to a receiver.
 */

const SECRET = 'current-secret-1234';
const TRIAGE_YML = [
  'labels:',
  '  kind/bug:',
  "    title: ['\\bbug\\b', 'crash']",
  '  kind/feature:',
  "    title: ['feature']",
  '  area/docs:',
  "    files: ['docs/**']",
  '  needs-info:',
  '    missing_sections: template',
  'size:',
  '  labels:',
  '    size/S: 0',
  '    size/M: 100',
  '',
].join('\n');

/** The event types a hook must deliver for the service (Gitea's expansion of `issues`, `pull_request`). */
const EXPECTED_TYPES = [
  'issues',
  'issue_assign',
  'issue_label',
  'issue_milestone',
  'issue_comment',
  'pull_request',
  'pull_request_assign',
  'pull_request_label',
  'pull_request_milestone',
  'pull_request_comment',
  'pull_request_review',
  'pull_request_review_request',
  'pull_request_sync',
  'push',
].sort();

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

let sim: SimGitea;
let gitea: GiteaClient;
let receiver: http.Server;
let receiverUrl: string;
const received: Received[] = [];

beforeAll(async () => {
  sim = await SimGitea.start();
  sim.addOrg('acme');
  sim.addOrg('orgco');
  for (const name of ['widgets', 'gadgets', 'rotor', 'dry', 'labels', 'broken', 'cli']) sim.addRepo('acme', name);
  sim.setFile('acme', 'labels', '.gitea/triage.yml', TRIAGE_YML);
  sim.setFile('acme', 'dry', '.gitea/triage.yml', TRIAGE_YML);
  sim.setFile('acme', 'broken', '.gitea/triage.yml', "labels:\n  kind/bug:\n    title: ['(unclosed']\n");
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhook`;
  gitea = new GiteaClient({ baseUrl: sim.url, token: sim.token, maxSockets: 4, keepAlive: true, timeoutMs: 5000, retries: 0, log: silentLogger() });
});

afterAll(async () => {
  gitea.close();
  await sim.close();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

function options(target: HookTarget, extra: Partial<RegisterOptions> = {}): RegisterOptions {
  return {
    target,
    url: receiverUrl,
    events: [...SERVICE_EVENTS],
    ensureLabels: false,
    rotateSecret: false,
    dryRun: false,
    verbose: false,
    ...extra,
  };
}

function env(): Record<string, string> {
  return { GITEA_URL: sim.url, GITEA_TOKEN: sim.token, WEBHOOK_SECRET: `${SECRET},older-secret` };
}

/** Routes written since the last `resetStats` (anything but GET). */
function writes(): string[] {
  return Object.keys(sim.stats().byRoute).filter((route) => !route.startsWith('GET '));
}

/** Deliveries of one repo's event that reached the receiver, with whether `secret` signed them. */
async function deliveriesFor(repo: string, secret: string): Promise<{ type: string; signedBy: boolean }[]> {
  await sim.awaitDeliveries();
  return received
    .filter((r) => (JSON.parse(r.body) as { repository?: { full_name?: string } }).repository?.full_name === repo)
    .map((r) => ({
      type: String(r.headers['x-gitea-event-type']),
      signedBy: r.headers['x-gitea-signature'] === createHmac('sha256', secret).update(r.body).digest('hex'),
    }));
}

function only(hooks: GiteaHook[]): GiteaHook {
  expect(hooks).toHaveLength(1);
  return hooks[0] as GiteaHook;
}

describe('register-webhook: the hook', () => {
  it('creates one active json hook with the service’s events, and a second run changes nothing', async () => {
    const target = { repo: 'acme/widgets' };
    const first = await registerWebhook(gitea, options(target), SECRET);
    expect(first.hook.action).toBe('created');

    sim.resetStats();
    const second = await registerWebhook(gitea, options(target), SECRET);
    expect(second.hook).toMatchObject({ action: 'unchanged', id: first.hook.id, secretKept: true });
    expect(writes()).toEqual([]);

    const hook = only(await gitea.listHooks(target));
    expect(hook).toMatchObject({ id: first.hook.id, type: 'gitea', active: true, config: { url: receiverUrl, content_type: 'json' } });
    expect([...hook.events].sort()).toEqual(EXPECTED_TYPES);

    // What Gitea delivers through it: the issue, its label change and its comment, signed with the secret.
    const n = sim.openIssue('acme', 'widgets', { title: 'It crashes', user: 'alice' });
    sim.addLabel('acme', 'widgets', { name: 'kind/bug' });
    sim.setLabelsAsUser('acme', 'widgets', n, 'alice', ['kind/bug']);
    sim.comment('acme', 'widgets', n, 'alice', 'still crashing');
    const got = await deliveriesFor('acme/widgets', SECRET);
    expect(got.map((d) => d.type)).toEqual(['issues', 'issue_label', 'issue_comment']);
    expect(got.every((d) => d.signedBy)).toBe(true);

    expect(formatRegisterReport(second, options(target))).toEqual([
      `repo acme/widgets: hook #${first.hook.id} unchanged → ${receiverUrl} (events: issues, issue_comment, pull_request, push; active)`,
      'secret: the existing hook’s secret was left as it is (Gitea can neither show nor change it); --rotate-secret re-creates the hook with WEBHOOK_SECRET',
      'note: the URL is a loopback address: Gitea delivers to it only if [webhook] ALLOWED_HOST_LIST includes "loopback" (default "external")',
    ]);
  });

  it('repairs a hook with wrong events, inactive and form-encoded, keeping its secret, branch filter and auth header', async () => {
    const target = { repo: 'acme/gadgets' };
    const old = await gitea.createHook(target, {
      type: 'gitea',
      active: false,
      events: ['push'],
      branch_filter: 'main',
      authorization_header: 'Bearer proxy-token',
      config: { url: receiverUrl, content_type: 'form', secret: 'old-secret' },
    });

    const report = await registerWebhook(gitea, options(target), SECRET);
    expect(report.hook.action).toBe('updated');
    expect(report.hook.id).toBe(old.id);
    expect(report.hook.changes).toEqual([
      expect.stringMatching(/^events \+issues .*\+pull_request_sync$/),
      'active false → true',
      'content_type form → json',
    ]);

    const hook = only(await gitea.listHooks(target));
    expect(hook).toMatchObject({ id: old.id, active: true, branch_filter: 'main', authorization_header: 'Bearer proxy-token' });
    expect(hook.config.content_type).toBe('json');
    expect([...hook.events].sort()).toEqual(EXPECTED_TYPES);

    // The secret was not sent: deliveries are still signed with the old one.
    sim.openIssue('acme', 'gadgets', { title: 'A question', user: 'alice' });
    expect(await deliveriesFor('acme/gadgets', 'old-secret')).toEqual([{ type: 'issues', signedBy: true }]);
  });

  it('--rotate-secret deletes and re-creates the hook, signed with the current secret', async () => {
    const target = { repo: 'acme/rotor' };
    const old = await gitea.createHook(target, { type: 'gitea', active: true, events: [...SERVICE_EVENTS], config: { url: receiverUrl, content_type: 'json', secret: 'old-secret' } });

    const report = await registerWebhook(gitea, options(target, { rotateSecret: true }), SECRET);
    expect(report.hook.action).toBe('re-created');
    expect(report.hook.changes).toEqual(['secret replaced']);
    const hook = only(await gitea.listHooks(target));
    expect(hook.id).toBe(report.hook.id);
    expect(hook.id).not.toBe(old.id);
    expect(hook).toMatchObject({ active: true, config: { url: receiverUrl, content_type: 'json' } });

    sim.openIssue('acme', 'rotor', { title: 'x', user: 'alice' });
    expect(await deliveriesFor('acme/rotor', SECRET)).toEqual([{ type: 'issues', signedBy: true }]);
  });

  it('removes a duplicate hook to the same URL (it would deliver every event twice)', async () => {
    const target = { org: 'orgco' };
    const a = await gitea.createHook(target, { type: 'gitea', active: true, events: [...SERVICE_EVENTS], config: { url: receiverUrl, content_type: 'json', secret: SECRET } });
    await gitea.createHook(target, { type: 'gitea', active: true, events: ['push'], config: { url: receiverUrl, content_type: 'json', secret: SECRET } });
    const other = await gitea.createHook(target, { type: 'gitea', active: true, events: ['push'], config: { url: 'http://elsewhere.example/hook', content_type: 'json' } });

    const report = await registerWebhook(gitea, options(target), SECRET);
    expect(report).toMatchObject({ target: 'org orgco', hook: { action: 'unchanged', id: a.id } });
    expect(report.hook.duplicatesRemoved).toHaveLength(1);
    const hooks = await gitea.listHooks(target);
    expect(hooks.map((h) => h.id).sort()).toEqual([a.id, other.id].sort());
  });

  it('--dry-run reads but writes nothing, and says what it would do', async () => {
    const target = { repo: 'acme/dry' };
    sim.resetStats();
    const report = await registerWebhook(gitea, options(target, { dryRun: true, ensureLabels: true }), SECRET);
    expect(writes()).toEqual([]);
    expect(await gitea.listHooks(target)).toEqual([]);
    expect(await gitea.listRepoLabels('acme', 'dry')).toEqual([]);
    const lines = formatRegisterReport(report, options(target));
    expect(lines[0]).toBe(`dry run: nothing written. repo acme/dry: hook would be created → ${receiverUrl} (events: issues, issue_comment, pull_request, push; active)`);
    expect(lines[2]).toBe(
      'labels: 6 would be created from .gitea/triage.yml: kind/bug, kind/feature, area/docs, needs-info, size/S (exclusive), size/M (exclusive)',
    );

    // And on a hook that needs repairing.
    await gitea.createHook(target, { type: 'gitea', active: false, events: ['push'], config: { url: receiverUrl, content_type: 'json' } });
    sim.resetStats();
    const repair = await registerWebhook(gitea, options(target, { dryRun: true }), SECRET);
    expect(repair.hook.action).toBe('updated');
    expect(writes()).toEqual([]);
    expect(only(await gitea.listHooks(target))).toMatchObject({ active: false, events: ['push'] });
  });
});

describe('register-webhook: --ensure-labels', () => {
  it('creates exactly the labels the config names that neither the repo nor the org has; size labels exclusive, others like their scope', async () => {
    sim.addLabel('acme', 'labels', { name: 'kind/bug', color: '#ee0701', exclusive: true });
    sim.addOrgLabel('acme', { name: 'needs-info', color: '#cccccc' });
    const target = { repo: 'acme/labels' };

    const report = await registerWebhook(gitea, options(target, { ensureLabels: true }), SECRET);
    expect(report.labels?.created.map((l) => l.name).sort()).toEqual(['area/docs', 'kind/feature', 'size/M', 'size/S']);
    expect(report.labels?.existing.sort()).toEqual(['kind/bug', 'needs-info']);

    const labels = await gitea.listRepoLabels('acme', 'labels');
    const byName = new Map(labels.map((l) => [l.name, l]));
    expect([...byName.keys()].sort()).toEqual(['area/docs', 'kind/bug', 'kind/feature', 'size/M', 'size/S']);
    for (const name of ['area/docs', 'kind/feature', 'size/M', 'size/S']) {
      expect(byName.get(name)).toMatchObject({ color: labelColor(name).slice(1) });
    }
    // size/* exclusive (the config gives one size); kind/feature like the existing kind/bug; area/ is a new scope.
    expect(labels.filter((l) => l.exclusive).map((l) => l.name).sort()).toEqual(['kind/bug', 'kind/feature', 'size/M', 'size/S']);
    // One colour per scope.
    expect(byName.get('size/S')?.color).toBe(byName.get('size/M')?.color);
    expect(byName.get('kind/bug')?.color).toBe('ee0701'); // existing labels are left alone

    sim.resetStats();
    const again = await registerWebhook(gitea, options(target, { ensureLabels: true }), SECRET);
    expect(again.labels?.created).toEqual([]);
    expect(writes()).toEqual([]);
    expect(formatRegisterReport(again, options(target))).toContain('labels: all 6 labels named in .gitea/triage.yml exist');
  });

  it('labels it creates in one scope can all stay on an issue, unless their scope is exclusive (Gitea drops the others)', async () => {
    sim.addRepo('acme', 'scopes');
    sim.setFile(
      'acme',
      'scopes',
      '.gitea/triage.yml',
      [
        'labels:',
        "  area/docs: { title: ['docs'] }",
        "  area/api: { title: ['api'] }",
        "  priority/high: { title: ['urgent'] }",
        "  status/triaged: { title: ['x'] }",
        "  question: { title: ['question'] }",
        'size:',
        '  labels: { size/S: 0, size/L: 500 }',
        '',
      ].join('\n'),
    );
    // Existing scopes: the org's priority/ labels are exclusive; status/ is mixed, so not exclusive.
    sim.addOrgLabel('acme', { name: 'priority/low', color: '#e99695', exclusive: true });
    sim.addLabel('acme', 'scopes', { name: 'status/new', color: '#fbca04', exclusive: true });
    sim.addLabel('acme', 'scopes', { name: 'status/blocked', color: '#fbca04', exclusive: false });
    const report = await registerWebhook(gitea, options({ repo: 'acme/scopes' }, { ensureLabels: true }), SECRET);
    expect(Object.fromEntries(report.labels!.created.map((l) => [l.name, l.exclusive]))).toEqual({
      'area/docs': false,
      'area/api': false,
      'priority/high': true,
      'status/triaged': false,
      question: false,
      'size/S': true,
      'size/L': true,
    });

    // What Gitea does with them on an issue: both area/ labels stay; one size/ label at a time.
    const labels = new Map((await gitea.listRepoLabels('acme', 'scopes')).map((l) => [l.name, l.id]));
    const number = sim.addIssue('acme', 'scopes', { title: 'docs for the api', user: 'alice' });
    await gitea.addIssueLabels('acme', 'scopes', number, [labels.get('area/docs')!, labels.get('size/S')!]);
    await gitea.addIssueLabels('acme', 'scopes', number, [labels.get('area/api')!, labels.get('size/L')!]);
    expect(sim.issueLabels('acme', 'scopes', number)).toEqual(['area/api', 'area/docs', 'size/L']);
  });

  it('stops on a config problem with the file, line and reason, before writing anything', async () => {
    const io = captureIO();
    sim.resetStats();
    const code = await registerWebhookMain(['--repo', 'acme/broken', '--url', receiverUrl, '--ensure-labels'], env(), io);
    expect(code).toBe(1);
    // File, line, key path (once) and the parser's reason, naming the bad pattern.
    expect(io.err()).toMatch(/^register-webhook: acme\/broken: \.gitea\/triage\.yml:3: labels\.kind\/bug\.title\[0\]: (?!labels).+\n$/);
    expect(io.err()).toContain('(unclosed');
    expect(io.out()).toBe('');
    expect(writes()).toEqual([]);
  });

  it('stops when the repo has no triage config', async () => {
    const io = captureIO();
    expect(await registerWebhookMain(['--repo', 'acme/cli', '--url', receiverUrl, '--ensure-labels'], env(), io)).toBe(1);
    expect(io.err()).toBe(
      'register-webhook: acme/cli has no .gitea/triage.yml or .gitea/triage.yaml on its default branch: no labels to ensure\n',
    );
  });
});

describe('register-webhook: arguments and failures', () => {
  const cases: [string[], string][] = [
    [['--url', 'http://x/webhook'], 'give --repo owner/repo or --org NAME'],
    [['--repo', 'widgets', '--url', 'http://x/webhook'], '--repo: expected owner/repo, got "widgets"'],
    [['--repo', 'a/b/c', '--url', 'http://x/webhook'], '--repo: expected owner/repo, got "a/b/c"'],
    [['--repo', 'acme/..', '--url', 'http://x/webhook'], '--repo: expected owner/repo, got "acme/.."'],
    [['--org', 'a/b', '--url', 'http://x/webhook'], '--org: expected an organisation name, got "a/b"'],
    [['--repo', 'a/b', '--org', 'a', '--url', 'http://x/webhook'], "option '--repo <owner/repo>' cannot be used with option '--org <name>'"],
    [['--org', 'acme'], "required option '--url <url>' not specified"],
    [['--org', 'acme', '--url', 'ftp://x'], '--url must be an http(s) URL, got "ftp://x"'],
    [['--org', 'acme', '--url', 'http://x/webhook', '--ensure-labels'], '--ensure-labels needs --repo (labels are read from one repo’s triage config)'],
    [['--org', 'acme', '--url', 'http://x/webhook', '--events', 'issues,bogus'], 'unknown event bogus (Gitea knows: '],
  ];

  it('refuses bad arguments with one line', () => {
    for (const [argv, message] of cases) {
      let error: unknown;
      try {
        parseRegisterArgs(argv, captureIO());
      } catch (e) {
        error = e;
      }
      expect({ argv, message: (error as Error | undefined)?.message?.slice(0, message.length) }).toEqual({ argv, message });
    }
  });

  it('prints each bad argument as one line `register-webhook: <reason>` and exits 2', async () => {
    for (const [argv, message] of cases) {
      const io = captureIO();
      expect(await registerWebhookMain(argv, env(), io)).toBe(2);
      expect(io.err().startsWith(`register-webhook: ${message}`)).toBe(true);
      expect(io.err().trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('names a missing variable (exit 2), and a Gitea refusal by method, path and status (exit 1), never the token', async () => {
    let io = captureIO();
    expect(await registerWebhookMain(['--org', 'acme', '--url', receiverUrl], { GITEA_URL: sim.url, GITEA_TOKEN: sim.token }, io)).toBe(2);
    expect(io.err()).toMatch(/^register-webhook: WEBHOOK_SECRET: required: .+\n$/);

    io = captureIO();
    expect(await registerWebhookMain(['--repo', 'acme/nowhere', '--url', receiverUrl], env(), io)).toBe(1);
    expect(io.err()).toMatch(/^register-webhook: GET \/repos\/acme\/nowhere\/hooks → 404\b.*\n$/);
    expect(io.err()).not.toContain(sim.token);

    io = captureIO();
    expect(await registerWebhookMain(['--org', 'acme', '--url', receiverUrl], { ...env(), GITEA_TOKEN: 'wrong-token' }, io)).toBe(1);
    expect(io.err()).toMatch(/^register-webhook: GET \/orgs\/acme\/hooks → 401\b.*\n$/);
    expect(io.err()).not.toContain('wrong-token');
  });

  it('--verbose shows each Gitea request on stderr (never the token); without it, stderr stays empty', async () => {
    let io = captureIO();
    expect(await registerWebhookMain(['--repo', 'acme/gadgets', '--url', receiverUrl, '--verbose'], env(), io)).toBe(0);
    expect(io.err()).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} debug gitea request  method=GET path=\/repos\/acme\/gadgets\/hooks status=200 /m);
    expect(io.err()).not.toContain(sim.token);
    io = captureIO();
    expect(await registerWebhookMain(['--repo', 'acme/gadgets', '--url', receiverUrl], env(), io)).toBe(0);
    expect(io.err()).toBe('');
  });

  it('explains a 403 on hooks: the permission and the token scope they need', async () => {
    sim.setBotIsAdmin(false);
    try {
      const io = captureIO();
      expect(await registerWebhookMain(['--org', 'acme', '--url', receiverUrl], env(), io)).toBe(1);
      expect(io.err()).toBe(
        'register-webhook: GET /orgs/acme/hooks → 403: Must be an organization owner (hooks need an owner of the org and a token with the write:organization scope)\n',
      );
    } finally {
      sim.setBotIsAdmin(true);
    }
  });

  it('notes when custom --events leave out what the service triages on', async () => {
    const report = await registerWebhook(gitea, options({ repo: 'acme/cli' }, { events: ['issues', 'push'], dryRun: true }), SECRET);
    expect(report.notes).toContain(
      'the hook will not deliver pull_request, pull_request_label, pull_request_comment, pull_request_review, pull_request_sync: the service needs them to triage everything',
    );
  });

  it('runs as a script: exit code and one stderr line on bad arguments; the report on stdout on success', async () => {
    const bad = spawnTs('scripts/register-webhook.ts', env(), ['--url', receiverUrl]);
    expect(await bad.exited).toEqual({ code: 2, signal: null });
    expect(bad.stderr()).toBe('register-webhook: give --repo owner/repo or --org NAME\n');

    const good = spawnTs('scripts/register-webhook.ts', env(), ['--repo', 'acme/cli', '--url', receiverUrl]);
    expect(await good.exited).toEqual({ code: 0, signal: null });
    expect(good.stderr()).toBe('');
    expect(good.lines[0]?.raw).toMatch(/^repo acme\/cli: hook #\d+ created → http:\/\/127\.0\.0\.1:\d+\/webhook \(events: issues, issue_comment, pull_request, push; active\)$/);
    expect(only(await gitea.listHooks({ repo: 'acme/cli' }))).toMatchObject({ active: true });
  });
});
