import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { FIXTURE_SECRET, fixtureDelivery } from '../helpers/signing.js';
import { freePort, listening, spawnTs, type Spawned } from '../helpers/process.js';
import { request, tempDataDir } from '../helpers/service.js';
import { SimGitea } from '../../src/simgitea/index.js';
import { waitFor } from '../helpers/wait.js';

// The service as a process: crash safety (kill -9), graceful stop (SIGTERM), and start-up checks
// of the real entry point (src/main.ts).

const CHILD = 'tests/helpers/child-service.ts';
const MAIN = 'src/main.ts';

let gitea: SimGitea;
const dirs: string[] = [];
const children: Spawned[] = [];

beforeAll(async () => {
  gitea = await SimGitea.start({ botLogin: 'triage-bot' });
});
afterAll(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  await Promise.all(children.map((c) => c.exited));
  await gitea?.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

const baseEnv = (dataDir: string, extra: Record<string, string> = {}) => ({
  GITEA_URL: gitea.url,
  GITEA_TOKEN: gitea.token,
  WEBHOOK_SECRET: FIXTURE_SECRET,
  PORT: '0',
  HOST: '127.0.0.1',
  DATA_DIR: dataDir,
  GITEA_RETRIES: '0',
  LOG_LEVEL: 'info',
  ...extra,
});

async function startChild(env: Record<string, string>, args: string[] = []): Promise<{ proc: Spawned; url: string }> {
  const proc = spawnTs(CHILD, env, args);
  children.push(proc);
  const ready = await proc.line({ msg: 'child ready' });
  return { proc, url: String(ready.url) };
}

function processedIds(dataDir: string, file = 'processed.log'): string[] {
  const p = path.join(dataDir, file);
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8').split('\n').filter(Boolean) : [];
}

/** Every id appears exactly once. */
function expectExactlyOnce(seen: string[], expected: string[]): void {
  const counts = new Map<string, number>();
  for (const id of seen) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect([...counts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  expect([...counts.keys()].sort()).toEqual([...expected].sort());
}

/** Deliveries on a few subjects: edits of issue 42, comments, a PR sync, a push. */
function someDeliveries(n: number) {
  const names = ['issues-edited', 'issue_comment-created', 'pull_request-synchronized', 'push', 'issues-opened'];
  return Array.from({ length: n }, (_, i) =>
    fixtureDelivery(names[i % names.length]!, {
      mutate: (b) => {
        if (b.issue && !b.comment) b.issue.number = 100 + (i % 7);
      },
    }),
  );
}

describe('crash safety', () => {
  it('processes every delivery answered 202 exactly once after kill -9 and a restart', async () => {
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    // A long window: nothing is evaluated before the kill, so every 202 is only in the journal.
    const first = await startChild(baseEnv(dataDir, { BATCH_WINDOW_MS: '600000' }));
    const deliveries = someDeliveries(24);
    const answers = await Promise.all(deliveries.map((d) => request(first.url + '/webhook', { method: 'POST', headers: d.headers, body: d.body })));
    expect(answers.map((a) => a.status)).toEqual(deliveries.map(() => 202));
    first.proc.child.kill('SIGKILL');
    expect(await first.proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(processedIds(dataDir)).toEqual([]);

    const second = await startChild(baseEnv(dataDir, { BATCH_WINDOW_MS: '20' }));
    const ids = deliveries.map((d) => d.id);
    await waitFor(() => new Set(processedIds(dataDir)).size === ids.length, { what: 'the journaled deliveries to be processed' });
    // New deliveries after the restart are processed too, the old ones not again.
    const more = someDeliveries(5);
    for (const d of more) expect((await request(second.url + '/webhook', { method: 'POST', headers: d.headers, body: d.body })).status).toBe(202);
    await waitFor(() => new Set(processedIds(dataDir)).size === ids.length + more.length, { what: 'the new deliveries' });
    second.proc.child.kill('SIGTERM');
    expect((await second.proc.exited).code).toBe(0);
    expectExactlyOnce(processedIds(dataDir), [...ids, ...more.map((d) => d.id)]);
  });
});

describe('graceful stop', () => {
  it('exits 0 on SIGTERM with work pending, and the pending work runs after a restart', async () => {
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    // One evaluation at a time, each taking 30 s, and 300 ms to drain: work is left over.
    const env = baseEnv(dataDir, { BATCH_WINDOW_MS: '20', CONCURRENCY: '1', SHUTDOWN_TIMEOUT_MS: '300' });
    const first = await startChild(env, ['--eval-delay-ms', '30000']);
    const deliveries = someDeliveries(4);
    for (const d of deliveries) expect((await request(first.url + '/webhook', { method: 'POST', headers: d.headers, body: d.body })).status).toBe(202);
    await waitFor(() => processedIds(dataDir, 'started.log').length > 0, { what: 'an evaluation to start' });
    first.proc.child.kill('SIGTERM');
    expect(await first.proc.exited).toEqual({ code: 0, signal: null });
    // It did not wait for the 30 s evaluation: that evaluation never finished, nor did any other.
    expect(processedIds(dataDir)).toEqual([]);
    expect(first.proc.lines.some((l) => l.msg === 'stopped')).toBe(true);

    const second = await startChild(baseEnv(dataDir, { BATCH_WINDOW_MS: '20' }));
    await waitFor(() => new Set(processedIds(dataDir)).size === deliveries.length, { what: 'the pending deliveries after restart' });
    second.proc.child.kill('SIGTERM');
    expect((await second.proc.exited).code).toBe(0);
    expectExactlyOnce(processedIds(dataDir), deliveries.map((d) => d.id));
  });

  it('runs src/main.ts: listens, labels an issue Gitea reports with the triage evaluator, stops on SIGTERM with exit 0', async () => {
    const dataDir = tempDataDir();
    dirs.push(dataDir);
    // A Gitea of its own: the other tests' fixture deliveries name issues this one does not have.
    const sim = await SimGitea.start({ botLogin: 'triage-bot' });
    try {
      sim.addOrg('acme');
      sim.addRepo('acme', 'widgets', { files: { '.gitea/triage.yml': "labels:\n  kind/bug:\n    title: ['crash']\n" } });
      sim.addLabel('acme', 'widgets', { name: 'kind/bug', color: 'ee0701' });
      const proc = spawnTs(MAIN, { ...baseEnv(dataDir, { BATCH_WINDOW_MS: '20' }), GITEA_URL: sim.url, GITEA_TOKEN: sim.token });
      children.push(proc);
      const listeningLine = await proc.line({ msg: 'listening' });
      const url = String(listeningLine.url);
      await proc.line({ msg: 'gitea identity', login: 'triage-bot', version: '1.25.4' });
      expect((await request(url + '/readyz')).status).toBe(200);

      sim.setWebhook({ url: url + '/webhook', secret: FIXTURE_SECRET });
      const n = sim.openIssue('acme', 'widgets', { title: 'Editor crashes when saving', user: 'alice' });
      const m = sim.openIssue('acme', 'widgets', { title: 'Support dark mode', user: 'alice' });
      await sim.awaitDeliveries();
      await waitFor(() => proc.lines.filter((l) => l.msg === 'evaluated').length >= 2, { what: 'both issues evaluated' });
      expect(sim.issueLabels('acme', 'widgets', n)).toEqual(['kind/bug']);
      expect(sim.issueLabels('acme', 'widgets', m)).toEqual([]);

      proc.child.kill('SIGTERM');
      expect(await proc.exited).toEqual({ code: 0, signal: null });
      const text = proc.lines.map((l) => JSON.stringify(l)).join('\n');
      expect(text).not.toContain(sim.token);
      expect(text).not.toContain(FIXTURE_SECRET);
      expect(proc.stderr()).toBe('');
    } finally {
      sim.setWebhook(undefined);
      await sim.close();
    }
  });
});

describe('start-up checks of src/main.ts', () => {
  // Each: exit 1, one stderr line naming the variable, nothing listening on PORT.
  const cases: [string, Record<string, string | undefined>][] = [
    ['GITEA_URL', { GITEA_URL: undefined }],
    ['GITEA_URL', { GITEA_URL: 'ftp://gitea.example' }],
    ['GITEA_TOKEN', { GITEA_TOKEN: undefined }],
    ['WEBHOOK_SECRET', { WEBHOOK_SECRET: undefined }],
    ['WEBHOOK_SECRET', { WEBHOOK_SECRET: 'a,,b' }],
    ['PORT', { PORT: '70000' }],
    ['CONCURRENCY', { CONCURRENCY: '0' }],
    ['BATCH_WINDOW_MS', { BATCH_WINDOW_MS: 'soon' }],
    ['MAX_BODY_BYTES', { MAX_BODY_BYTES: '-1' }],
    ['DRY_RUN', { DRY_RUN: 'maybe' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
    ['JOURNAL_SYNC', { JOURNAL_SYNC: 'sometimes' }],
  ];

  const describeChange = (change: Record<string, string | undefined>) =>
    Object.entries(change)
      .map(([k, v]) => (v === undefined ? `${k} unset` : `${k}=${v}`))
      .join(' ');
  it.each(cases.map(([variable, change]) => [variable, describeChange(change), change] as const))(
    'refuses a bad %s (%s)',
    async (variable, _label, change) => {
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...baseEnv('/nonexistent/never-created', { PORT: String(port) }), ...change })) {
      if (v !== undefined) env[k] = v;
    }
    const proc = spawnTs(MAIN, env);
    children.push(proc);
    const { code } = await proc.exited;
    expect(code).toBe(1);
    const lines = proc.stderr().split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^gitea-triage: invalid configuration: ${variable}: \\S`));
    expect(proc.lines).toEqual([]);
    expect(await listening(port)).toBe(false);
    expect(fs.existsSync('/nonexistent/never-created')).toBe(false);
    },
  );

  it('refuses a DATA_DIR it cannot write, with one clear line', async () => {
    const parent = tempDataDir();
    dirs.push(parent);
    const file = path.join(parent, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    const port = await freePort();
    const proc = spawnTs(MAIN, baseEnv(path.join(file, 'data'), { PORT: String(port) }));
    children.push(proc);
    expect((await proc.exited).code).toBe(1);
    const lines = proc.stderr().split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gitea-triage: DATA_DIR ".*a-file\/data" is not writable: ENOTDIR/);
    expect(await listening(port)).toBe(false);
  });
});
