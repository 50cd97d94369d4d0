import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { LabelApplier } from '../../../src/applier/applier.js';
import { OwnershipStore } from '../../../src/applier/ownership.js';
import type { ContextLabel, RepoContext } from '../../../src/context/context.js';
import { GiteaClient } from '../../../src/gitea/client.js';
import { createLogger, LogCapture, silentLogger } from '../../../src/log/logger.js';
import { SimGitea } from '../../../src/simgitea/sim.js';
import type { Plan } from '../../../src/triage/types.js';

// The applier against the simulated Gitea over real HTTP, through the real client.
const ORG = 'acme';
const REPO = 'widgets';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
let sim: SimGitea;
let client: GiteaClient;
let db: Database.Database;
let store: OwnershipStore;
let applier: LabelApplier;
let context: RepoContext;
let capture: LogCapture;

beforeAll(async () => {
  sim = await SimGitea.start();
  sim.addOrg(ORG);
  sim.addUser('alice');
  sim.addRepo(ORG, REPO);
  const labels = new Map<string, ContextLabel>();
  for (const [name, exclusive] of [
    ['kind/bug', true],
    ['kind/feature', true],
    ['area/docs', false],
    ['area/ui', false],
    ['needs-info', false],
    ['size/S', true],
    ['size/M', true],
  ] as const) {
    const l = sim.addLabel(ORG, REPO, { name, exclusive });
    labels.set(name, { id: l.id, name, exclusive, org: false });
  }
  const org = sim.addOrgLabel(ORG, { name: 'priority/high', exclusive: true });
  labels.set('priority/high', { id: org.id, name: 'priority/high', exclusive: true, org: true });
  context = { repo: `${ORG}/${REPO}`, source: 'repo', templates: [], labels, loadedAt: 0 };
  client = new GiteaClient({ baseUrl: sim.url, token: sim.token, maxSockets: 4, keepAlive: true, timeoutMs: 5000, retries: 0, log: silentLogger() });
  db = new Database(path.join(dir, 'journal.db'));
  store = new OwnershipStore(db);
  applier = new LabelApplier({ gitea: client, store });
});

afterAll(async () => {
  client.close();
  await sim.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  capture = new LogCapture();
});

const log = () => createLogger({ level: 'debug', format: 'json', stream: capture.stream });
const plan = (p: Partial<Plan>): Plan => ({ add: [], remove: [], addedByCommand: [], reasons: [], ...p });
const meta = { delivery: 'd-1', configVersion: 'v1', botLogin: 'triage-bot' };

async function applyTo(n: number, p: Plan, extra: Partial<typeof meta & { commands: { user: string; add: string[]; remove: string[] }[] }> = {}) {
  const current = await client.getIssueLabels(ORG, REPO, n);
  return applier.apply(ORG, REPO, n, p, context, current, { ...meta, ...extra }, log());
}

describe('LabelApplier', () => {
  it('adds every label in one request by id, removes each by id, and records the rules as owners', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice', labels: ['needs-info'] });
    sim.resetStats();
    const result = await applyTo(
      n,
      plan({
        add: ['kind/bug', 'priority/high'],
        remove: ['needs-info'],
        reasons: [
          { label: 'kind/bug', action: 'add', rule: 'labels.kind/bug.title', evidence: 'crash' },
          { label: 'priority/high', action: 'add', rule: 'labels.priority/high.body', evidence: 'urgent' },
          { label: 'needs-info', action: 'remove', rule: 'labels.needs-info.missing_sections', evidence: 'sections present' },
        ],
      }),
    );
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug', 'priority/high']);
    expect(result).toMatchObject({ added: ['kind/bug', 'priority/high'], removed: ['needs-info'], labels: ['kind/bug', 'priority/high'], skipped: [] });
    expect(sim.stats().byRoute).toEqual({
      'GET /repos/{owner}/{repo}/issues/{index}/labels': 1,
      'POST /repos/{owner}/{repo}/issues/{index}/labels': 1,
      'DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}': 1,
    });
    expect([...store.ownership(`${ORG}/${REPO}`, n).botOwned].sort()).toEqual(['kind/bug', 'priority/high']);
    expect(store.owned(`${ORG}/${REPO}`, n).find((o) => o.label === 'kind/bug')).toMatchObject({ rule: 'labels.kind/bug.title', evidence: 'crash', configVersion: 'v1', delivery: 'd-1' });
    expect(capture.find({ msg: 'applied', number: n })[0]).toMatchObject({ added: ['kind/bug', 'priority/high'], removed: ['needs-info'], durationMs: expect.any(Number) });
  });

  it('is idempotent: the same plan on the result sends no write', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice', labels: ['needs-info'] });
    const p = plan({ add: ['kind/bug', 'area/ui'], remove: ['needs-info'] });
    await applyTo(n, p);
    sim.resetStats();
    const again = await applyTo(n, p);
    expect(again).toMatchObject({ added: [], removed: [] });
    expect(sim.stats().labelWrites).toBe(0);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['area/ui', 'kind/bug']);
  });

  it('skips a label the repo and org do not have, with a warning, and never sends its name', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice' });
    sim.resetStats();
    const result = await applyTo(n, plan({ add: ['kind/typo', 'area/ui'] }));
    expect(result.added).toEqual(['area/ui']);
    expect(result.skipped).toEqual([{ label: 'kind/typo', reason: expect.stringContaining('no label') }]);
    expect(capture.find({ level: 'warn', label: 'kind/typo' })).toHaveLength(1);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['area/ui']);
  });

  it('sends at most one label per exclusive scope, a command\'s before a rule\'s', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice' });
    const result = await applyTo(n, plan({ add: ['kind/bug', 'kind/feature'], addedByCommand: ['kind/feature'] }), {
      commands: [{ user: 'carol', add: ['kind/feature'], remove: [] }],
    });
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/feature']);
    expect(result.skipped.map((s) => s.label)).toEqual(['kind/bug']);
    // The command's label belongs to the person, not to the rules.
    expect(store.ownership(`${ORG}/${REPO}`, n).botOwned.size).toBe(0);
    expect(store.owned(`${ORG}/${REPO}`, n)).toEqual([expect.objectContaining({ label: 'kind/feature', kind: 'command', user: 'carol' })]);
  });

  it("does not let a rule's label push out a person's label of the same exclusive scope", async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice', labels: ['kind/feature'] });
    const result = await applyTo(n, plan({ add: ['kind/bug'] }));
    expect(result.added).toEqual([]);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/feature']);
  });

  it('replaces its own label of an exclusive scope with one request, and records the replaced one as removed', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice' });
    await applyTo(n, plan({ add: ['size/S'], reasons: [{ label: 'size/S', action: 'add', rule: 'size', evidence: '12 lines' }] }));
    sim.resetStats();
    const result = await applyTo(n, plan({ add: ['size/M'], remove: ['size/S'] }));
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['size/M']);
    expect(result).toMatchObject({ added: ['size/M'], removed: ['size/S'] });
    // Gitea dropped size/S itself when size/M came: no DELETE was needed.
    expect(sim.stats().labelWrites).toBe(1);
    const own = store.ownership(`${ORG}/${REPO}`, n);
    expect([...own.botOwned]).toEqual(['size/M']);
    expect(own.humanRemoved.size).toBe(0);
  });

  it("tolerates removing a label that was deleted from the repo meanwhile", async () => {
    const gone = sim.addLabel(ORG, REPO, { name: 'obsolete' });
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice', labels: ['obsolete'] });
    const current = await client.getIssueLabels(ORG, REPO, n);
    // As if deleted in Gitea after the read: the DELETE of an unknown id is a 422 there.
    const fake = current.map((l) => (l.id === gone.id ? { ...l, id: 999_999 } : l));
    const result = await applier.apply(ORG, REPO, n, plan({ remove: ['obsolete'] }), context, fake, meta, log());
    expect(result.removed).toEqual(['obsolete']);
  });
});
