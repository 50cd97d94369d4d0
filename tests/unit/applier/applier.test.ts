import { asyncOwnership } from '../../../src/store/sqlite/records.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { LabelApplier } from '../../../src/applier/applier.js';
import { OwnershipStore } from '../../../src/applier/ownership.js';
import type { ContextLabel, RepoContext } from '../../../src/context/context.js';
import { GiteaClient } from '../../../src/gitea/client.js';
import { createLogger, silentLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { SimGitea } from '../../../src/simgitea/sim.js';
import { parseTriageConfig } from '../../../src/triage/config.js';
import { decide } from '../../../src/triage/decide.js';
import type { AllowedCommand, Plan, TriageConfig } from '../../../src/triage/types.js';

// The applier against the simulated Gitea over real HTTP, through the real client. Its plans come
// from `decide` (the one place of label policy) on the issue as the simulated Gitea has it.
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
  applier = new LabelApplier({ gitea: client, store: asyncOwnership(store) });
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
const meta = { delivery: 'd-1', configVersion: 'v1', botLogin: 'triage-bot' };
const FULL = `${ORG}/${REPO}`;

const CONFIG = triageConfig(`
labels:
  kind/bug:
    title: ['crash']
  priority/high:
    body: ['urgent']
  area/ui:
    title: ['\\bui\\b']
  kind/typo:
    title: ['typo']
  needs-info:
    body: ['more info needed']
`);

function triageConfig(text: string): TriageConfig {
  const parsed = parseTriageConfig(text, '.gitea/triage.yml');
  if ('problem' in parsed) throw new Error(parsed.problem.message);
  return parsed.config;
}

/** The decision for issue `n` as it is now in the simulated Gitea, with the ownership the store keeps. */
async function decided(n: number, commands: AllowedCommand[] = []): Promise<Plan> {
  const issue = await client.getIssue(ORG, REPO, n);
  const subject = { kind: 'issue' as const, number: n, title: issue.title ?? '', body: issue.body ?? '', labels: (issue.labels ?? []).map((l) => l.name) };
  const exclusiveLabels = new Set([...context.labels.values()].filter((l) => l.exclusive).map((l) => l.name));
  return decide(subject, { config: CONFIG, templates: [], exclusiveLabels }, store.ownership(FULL, n), commands);
}

/** Applies `plan` to issue `n`; the applier reads the issue's labels itself. */
function applyTo(n: number, plan: Plan) {
  return applier.apply({ owner: ORG, repo: REPO, number: n, plan, labels: context.labels, meta, log: log() });
}

/** Marks `labels` as added by the rules earlier (as a previous application would have recorded). */
function ruleOwned(n: number, labels: string[]): void {
  store.recordApplied(FULL, n, labels.map((label) => ({ label, action: 'added' as const, kind: 'rule' as const, user: 'triage-bot', rule: `labels.${label}.title` })), { delivery: 'd-0' });
}

describe('LabelApplier', () => {
  it('carries out a decision: every addition in one request by id, each removal by id, owners recorded as the plan says', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash on start', body: 'urgent, please', user: 'alice', labels: ['needs-info'] });
    ruleOwned(n, ['needs-info']);
    const plan = await decided(n);
    expect(plan.changes.map((c) => `${c.action} ${c.label} by ${c.by}`)).toEqual(['add kind/bug by rule', 'add priority/high by rule', 'remove needs-info by rule']);
    sim.resetStats();
    const result = await applyTo(n, plan);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug', 'priority/high']);
    expect(result).toMatchObject({ added: ['kind/bug', 'priority/high'], removed: ['needs-info'], labels: ['kind/bug', 'priority/high'], skipped: [] });
    // The labels are re-read once (payloads are snapshots), then one POST and one DELETE.
    expect(sim.stats().byRoute).toEqual({
      'GET /repos/{owner}/{repo}/issues/{index}/labels': 1,
      'POST /repos/{owner}/{repo}/issues/{index}/labels': 1,
      'DELETE /repos/{owner}/{repo}/issues/{index}/labels/{id}': 1,
    });
    expect([...store.ownership(FULL, n).botOwned].sort()).toEqual(['kind/bug', 'priority/high']);
    expect(store.owned(FULL, n).find((o) => o.label === 'kind/bug')).toMatchObject({ rule: 'labels.kind/bug.title', evidence: expect.stringContaining('crash'), configVersion: 'v1', delivery: 'd-1', user: 'triage-bot' });
    expect(store.events(FULL, n).at(-1)).toMatchObject({ label: 'needs-info', action: 'removed', kind: 'rule', rule: 'labels.needs-info', evidence: 'no condition holds any more' });
    expect(capture.find({ msg: 'applied', number: n })[0]).toMatchObject({ added: ['kind/bug', 'priority/high'], removed: ['needs-info'], durationMs: expect.any(Number) });
  });

  it('is idempotent: the same plan on the result sends no write, and the next decision is empty', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash in the ui', user: 'alice' });
    const plan = await decided(n);
    await applyTo(n, plan);
    sim.resetStats();
    const again = await applyTo(n, plan);
    expect(again).toMatchObject({ added: [], removed: [] });
    expect(sim.stats().labelWrites).toBe(0);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['area/ui', 'kind/bug']);
    expect((await decided(n)).changes).toEqual([]);
  });

  it('skips a label the repo and org do not have, with a warning, and never sends its name', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'a typo in the ui', user: 'alice' });
    const plan = await decided(n);
    expect(plan.add).toEqual(['area/ui', 'kind/typo']);
    sim.resetStats();
    const result = await applyTo(n, plan);
    expect(result.added).toEqual(['area/ui']);
    expect(result.skipped).toEqual([{ label: 'kind/typo', reason: expect.stringContaining('no label') }]);
    expect(capture.find({ level: 'warn', label: 'kind/typo' })).toHaveLength(1);
    expect(sim.stats().labelWrites).toBe(1);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['area/ui']);
  });

  it("writes the command's label of an exclusive scope the decision gave it, and records it as the person's", async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash', user: 'alice' });
    const plan = await decided(n, [{ user: 'carol', add: ['kind/feature'], remove: [] }]);
    await applyTo(n, plan);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/feature']);
    expect(store.ownership(FULL, n).botOwned.size).toBe(0);
    expect(store.owned(FULL, n)).toEqual([expect.objectContaining({ label: 'kind/feature', kind: 'command', user: 'carol' })]);
  });

  it("sends nothing when the decision keeps a person's label of the rule's exclusive scope", async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash', user: 'alice', labels: ['kind/feature'] });
    const plan = await decided(n);
    sim.resetStats();
    const result = await applyTo(n, plan);
    expect(result).toMatchObject({ added: [], removed: [] });
    expect(sim.stats().labelWrites).toBe(0);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/feature']);
  });

  it('replaces its own label of an exclusive scope with one request, and records the replaced one as the rule removed it', async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash', user: 'alice', labels: ['kind/feature'] });
    ruleOwned(n, ['kind/feature']);
    const plan = await decided(n);
    sim.resetStats();
    const result = await applyTo(n, plan);
    expect(sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug']);
    expect(result).toMatchObject({ added: ['kind/bug'], removed: ['kind/feature'] });
    // Gitea dropped kind/feature itself when kind/bug came: no DELETE was needed.
    expect(sim.stats().labelWrites).toBe(1);
    const own = store.ownership(FULL, n);
    expect([...own.botOwned]).toEqual(['kind/bug']);
    expect(own.humanRemoved.size).toBe(0);
    expect(store.events(FULL, n).at(-1)).toMatchObject({ label: 'kind/feature', action: 'removed', kind: 'rule', evidence: 'replaced by kind/bug in exclusive scope kind' });
  });

  it("records a command's claim on the rules' label and a label kept off, without a write", async () => {
    const n = sim.addIssue(ORG, REPO, { title: 'crash', user: 'alice', labels: ['kind/bug'] });
    ruleOwned(n, ['kind/bug']);
    const plan = await decided(n, [{ user: 'dave', add: ['kind/bug'], remove: ['area/ui'] }]);
    sim.resetStats();
    await applyTo(n, plan);
    expect(sim.stats().labelWrites).toBe(0);
    const own = store.ownership(FULL, n);
    expect(own.botOwned.size).toBe(0);
    expect([...own.humanRemoved]).toEqual(['area/ui']);
    expect(store.owned(FULL, n)).toEqual([expect.objectContaining({ label: 'kind/bug', kind: 'command', user: 'dave' })]);
  });

  it('tolerates removing a label that was deleted from the repo meanwhile', async () => {
    const gone = sim.addLabel(ORG, REPO, { name: 'obsolete' });
    const n = sim.addIssue(ORG, REPO, { title: 't', user: 'alice', labels: ['obsolete'] });
    ruleOwned(n, ['obsolete']);
    const plan = await decided(n);
    expect(plan.remove).toEqual(['obsolete']);
    const current = await client.getIssueLabels(ORG, REPO, n);
    // As if deleted in Gitea after the read: the DELETE of an unknown id is a 422 there.
    const fake = current.map((l) => (l.id === gone.id ? { ...l, id: 999_999 } : l));
    const result = await applier.apply({ owner: ORG, repo: REPO, number: n, plan, labels: context.labels, current: fake, meta, log: log() });
    expect(result.removed).toEqual(['obsolete']);
  });
});
