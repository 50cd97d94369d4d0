import { SqliteStore } from '../../src/store/sqlite/store.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createService, type Service } from '../../src/app.js';
import { OwnershipStore } from '../../src/applier/ownership.js';
import { runBackfill } from '../../src/backfill/backfill.js';
import { loadConfig } from '../../src/config/config.js';
import { giteaClientFromConfig } from '../../src/gitea/client.js';
import { Journal } from '../../src/journal/journal.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { SimGitea, type SimWebhookTarget } from '../../src/simgitea/sim.js';
import type { TriageEvaluator } from '../../src/evaluation/evaluator.js';
import { createTriageEvaluator } from '../../src/service/triage.js';
import { waitFor } from '../helpers/wait.js';
import { SECRET, seedTriagedRepo } from './triage-harness.js';

/**
 * What a sweep costs the user's Gitea, counted by the simulated Gitea per route: the floor is the
 * listing's pages, the repository's context (once), one label write per issue whose labels change, and
 * the changed-file pages of each pull request. No issue is read again after being listed.
 */

const ORG = 'acme';
const REPO = 'widgets';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';
const PARTIAL_BODY = '### What happened\nSomething.\n';
/** Gitea's page size as the client asks for it (`limit=50`, Gitea's default `[api] MAX_RESPONSE_ITEMS`). */
const PAGE = 50;

const LIST = 'GET /repos/{owner}/{repo}/issues';
const READ = 'GET /repos/{owner}/{repo}/issues/{index}';
const ADD = 'POST /repos/{owner}/{repo}/issues/{index}/labels';
const REMOVE = 'DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}';
const FILES = 'GET /repos/{owner}/{repo}/pulls/{index}/files';
/**
 * The context of one repository: Gitea's version (once per client: it decides how files are read), the
 * config file (one `file-contents` request on 1.24+), Gitea's parse of the issue templates, the repo's
 * labels and its org's.
 */
const CONTEXT = {
  'GET /version': 1,
  'GET /repos/{owner}/{repo}/file-contents': 1,
  'GET /repos/{owner}/{repo}/issue_templates': 1,
  'GET /repos/{owner}/{repo}/labels': 1,
  'GET /orgs/{org}/labels': 1,
};

interface Expected {
  number: number;
  labels: string[];
  /** Label names the issue was seeded with. */
  seeded: string[];
  /** Pages of changed files (pull requests). */
  filePages: number;
}

/**
 * Seeds `issues` issues and three pull requests. Issue i says "crash" when i % 3 == 0 (kind/bug) and lacks
 * the template's sections when i % 4 == 0 (needs-info); every seventh already carries its labels. Returns
 * what each should end with.
 */
function seed(sim: SimGitea, issues: number, open: boolean): Expected[] {
  const out: Expected[] = [];
  for (let i = 1; i <= issues; i++) {
    const labels = [...(i % 3 === 0 ? ['kind/bug'] : []), ...(i % 4 === 0 ? ['needs-info'] : [])];
    const seeded = i % 7 === 0 ? labels : [];
    const issue = { user: 'alice', title: i % 3 === 0 ? `Crash number ${i}` : `Question number ${i}`, body: i % 4 === 0 ? PARTIAL_BODY : FULL_BODY, labels: seeded };
    const number = open ? sim.openIssue(ORG, REPO, issue) : sim.addIssue(ORG, REPO, issue);
    out.push({ number, labels, seeded, filePages: 0 });
  }
  const pulls = [
    // 120 changed lines in 120 files: size/M, three pages of files.
    { files: Array.from({ length: 120 }, (_, k) => ({ filename: `src/f${k}.ts`, additions: 1, deletions: 0 })), labels: ['size/M'], seeded: [] as string[], filePages: 3 },
    { files: [{ filename: 'docs/a.md', additions: 3, deletions: 0 }, { filename: 'src/x.ts', additions: 2, deletions: 0 }], labels: ['area/docs', 'size/XS'], seeded: [], filePages: 1 },
    // Already labelled: nothing to write, but its files are read all the same.
    { files: [{ filename: 'src/y.ts', additions: 1, deletions: 0 }], labels: ['size/XS'], seeded: ['size/XS'], filePages: 1 },
  ];
  for (const [k, p] of pulls.entries()) {
    const pull = { user: 'bob', title: `Refactor part ${k}`, body: 'Tidier.', files: p.files, labels: p.seeded };
    const number = open ? sim.openPull(ORG, REPO, pull) : sim.addIssue(ORG, REPO, { ...pull, pull: { files: p.files } });
    out.push({ number, labels: p.labels, seeded: p.seeded, filePages: p.filePages });
  }
  return out;
}

const sorted = (names: string[]) => [...names].sort();
const changedIn = (expected: Expected[]) => expected.filter((e) => sorted(e.labels).join() !== sorted(e.seeded).join()).length;
const filePagesOf = (expected: Expected[]) => expected.reduce((n, e) => n + e.filePages, 0);
const pages = (items: number) => Math.ceil(items / PAGE);

describe('backfill: requests to Gitea', () => {
  let sim: SimGitea;
  let dataDir: string;
  let journal: Journal;
  let store: SqliteStore;
  let gitea: ReturnType<typeof giteaClientFromConfig>;
  let evaluator: TriageEvaluator;
  let expected: Expected[];
  const log = silentLogger();

  beforeAll(async () => {
    sim = await SimGitea.start();
    sim.addOrg(ORG);
    for (const u of ['alice', 'bob']) sim.addUser(u);
    seedTriagedRepo(sim, ORG, REPO);
    expected = seed(sim, 60, false);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-sweep-'));
    const config = loadConfig({ GITEA_URL: sim.url, GITEA_TOKEN: sim.token, WEBHOOK_SECRET: SECRET, DATA_DIR: dataDir });
    store = SqliteStore.open({ dataDir, sync: 'normal', log });
    journal = store.journal;
    gitea = giteaClientFromConfig(config, log);
    evaluator = createTriageEvaluator({ store, gitea, log, config, botLogin: () => sim.botLogin });
  });
  afterAll(async () => {
    gitea?.close();
    await store?.close();
    await sim?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const backfill = () => runBackfill({ gitea, evaluator, repos: [`${ORG}/${REPO}`], concurrency: 8, log });

  it('costs the listing, the context, one write per changed issue and the files of each pull request: no issue is read again', async () => {
    sim.resetStats();
    const summary = await backfill();
    expect(summary.failed).toBe(0);
    for (const e of expected) expect([e.number, sim.issueLabels(ORG, REPO, e.number)]).toEqual([e.number, sorted(e.labels)]);
    const changed = changedIn(expected);
    expect(summary.changed).toBe(changed);
    expect(sim.stats().byRoute).toEqual({
      [LIST]: pages(expected.length),
      ...CONTEXT,
      [ADD]: changed,
      [FILES]: filePagesOf(expected),
    });
    expect(sim.stats().byRoute[READ]).toBeUndefined();
  });

  it('writes only where labels change: one removal, one addition, nothing else', async () => {
    // #3 no longer says "crash" (its kind/bug goes); #1 now does (it gets kind/bug).
    sim.editIssue(ORG, REPO, 3, { title: 'Question number 3' }, 'alice');
    sim.editIssue(ORG, REPO, 1, { title: 'Crash number 1' }, 'alice');
    sim.resetStats();
    const summary = await backfill();
    expect(summary).toMatchObject({ changed: 2, failed: 0 });
    expect(sim.issueLabels(ORG, REPO, 3)).toEqual([]);
    expect(sim.issueLabels(ORG, REPO, 1)).toEqual(['kind/bug']);
    // The context is cached (CONTEXT_TTL_MS): the listing, the two writes, the files.
    expect(sim.stats().byRoute).toEqual({ [LIST]: pages(expected.length), [ADD]: 1, [REMOVE]: 1, [FILES]: filePagesOf(expected) });
  });

  it('a second run with nothing changed writes nothing', async () => {
    const before = expected.map((e) => sim.issueLabels(ORG, REPO, e.number));
    sim.resetStats();
    const summary = await backfill();
    expect(summary).toMatchObject({ changed: 0, failed: 0, unchanged: expected.length });
    expect(sim.stats().byRoute).toEqual({ [LIST]: pages(expected.length), [FILES]: filePagesOf(expected) });
    expect(expected.map((e) => sim.issueLabels(ORG, REPO, e.number))).toEqual(before);
  });

  it('reads an issue again when the service knows a newer label set than the listing showed', async () => {
    // The listing is older than what the service last recorded for #2 (its own write, say): a stale
    // snapshot must not be taken for the issue's state.
    OwnershipStore.forJournal(journal).setKnown(`${ORG}/${REPO}`, 2, [], new Date(Date.now() + 60_000).toISOString());
    sim.resetStats();
    const summary = await backfill();
    expect(summary).toMatchObject({ changed: 0, failed: 0 });
    expect(sim.stats().byRoute[READ]).toBe(1);
  });
});

/** The real service with a reconciler (driven by `sweepNow`), as in reconcile.test.ts. */
describe('reconcile sweep: requests to Gitea', () => {
  let sim: SimGitea;
  let service: Service;
  let target: SimWebhookTarget;
  let dataDir: string;
  const logs = new LogCapture();

  const settle = async () => {
    await waitFor(
      async () => {
        const seen = sim.deliveries.length;
        await sim.awaitDeliveries();
        await service.onIdle();
        return sim.deliveries.length === seen;
      },
      { what: 'the sim and the service to settle', timeoutMs: 15_000 },
    );
  };

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-sweep-'));
    sim = await SimGitea.start();
    sim.addOrg(ORG);
    for (const u of ['alice', 'bob']) sim.addUser(u);
    seedTriagedRepo(sim, ORG, REPO);
    const config = loadConfig({
      GITEA_URL: sim.url,
      GITEA_TOKEN: sim.token,
      WEBHOOK_SECRET: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      BATCH_WINDOW_MS: '20',
      JOURNAL_SYNC: 'normal',
      // An hour: the timer never fires during the test; sweeps are driven with sweepNow().
      RECONCILE_INTERVAL_MS: '3600000',
    });
    const log = createLogger({ level: 'info', format: 'json', stream: logs.stream, redact: [config.giteaToken, SECRET] });
    service = await createService({ config, log, evaluator: createTriageEvaluator, identityBackoff: { firstMs: 20, maxMs: 200 }, reconcile: { settleMs: 0 } });
    const { url } = await service.listen();
    await service.identified();
    target = { url: `${url}/webhook`, secret: SECRET };
    sim.setWebhook(target);
  });
  afterAll(async () => {
    await service?.stop();
    await sim?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('repairs lost deliveries at the floor: listing pages, one write per changed issue, file pages; a second sweep costs the listing', async () => {
    // A delivered issue: the repo is known to the journal, its context loaded and cached.
    const first = sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: FULL_BODY });
    await settle();
    expect(sim.issueLabels(ORG, REPO, first)).toEqual(['kind/bug']);

    // Gitea cannot reach the service: every delivery of these is lost.
    sim.setWebhook(undefined);
    const second = Math.floor(Date.now() / 1000);
    await waitFor(() => Math.floor(Date.now() / 1000) > second, { what: 'the next second', intervalMs: 10 });
    const lost = seed(sim, 55, true);
    sim.setWebhook(target);

    sim.resetStats();
    const summary = await service.reconciler!.sweepNow();
    expect(summary).toMatchObject({ repos: 1, issues: lost.length + 1, enqueued: lost.length, failed: 0 });
    await settle();
    for (const e of lost) expect([e.number, sim.issueLabels(ORG, REPO, e.number)]).toEqual([e.number, sorted(e.labels)]);
    expect(sim.stats().byRoute).toEqual({ [LIST]: pages(lost.length + 1), [ADD]: changedIn(lost), [FILES]: filePagesOf(lost) });

    // The echoes of those writes were delivered: nothing is lost, nothing is evaluated, nothing written.
    sim.resetStats();
    const again = await service.reconciler!.sweepNow();
    expect(again).toMatchObject({ enqueued: 0, failed: 0 });
    await settle();
    expect(sim.stats().byRoute).toEqual({ [LIST]: pages(lost.length + 1) });
  });

  it('with the echoes of its own writes lost too, a sweep re-evaluates from the listing and writes nothing', async () => {
    sim.setWebhook(undefined);
    const second = Math.floor(Date.now() / 1000);
    await waitFor(() => Math.floor(Date.now() / 1000) > second, { what: 'the next second', intervalMs: 10 });
    const lost = seed(sim, 5, true);
    // The bot's writes come in a later second than the issues' creation: their updated_at moves on.
    const created = Math.floor(Date.now() / 1000);
    await waitFor(() => Math.floor(Date.now() / 1000) > created, { what: 'the next second', intervalMs: 10 });
    let summary = await service.reconciler!.sweepNow();
    await settle();
    expect(summary.enqueued).toBe(lost.length);
    for (const e of lost) expect(sim.issueLabels(ORG, REPO, e.number)).toEqual(sorted(e.labels));

    // The bot's writes changed updated_at and their echoes never came: the sweep takes those issues
    // as changed and evaluates them again, from the listing, with nothing to write.
    const written = lost.filter((e) => sorted(e.labels).join() !== sorted(e.seeded).join()).length;
    sim.resetStats();
    summary = await service.reconciler!.sweepNow();
    await settle();
    expect(summary.enqueued).toBe(written);
    const routes = sim.stats().byRoute;
    expect(routes[READ]).toBeUndefined();
    expect(routes[ADD]).toBeUndefined();
    expect(routes[REMOVE]).toBeUndefined();
    sim.setWebhook(target);
  });
});
