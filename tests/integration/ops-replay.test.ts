import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OwnershipStore } from '../../src/applier/ownership.js';
import { exportMain } from '../../src/tools/export-cli.js';
import { replayMain } from '../../src/tools/replay-cli.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { runMain, simEnv, tempDir, toolEnv } from './ops-harness.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const ISSUE = { user: 'alice', title: 'Editor crashes on save', body: '### What happened\nIt stops.\n' };

const seed = (sim: SimGitea) => {
  sim.addOrg(ORG);
  sim.addUser('alice');
  seedTriagedRepo(sim, ORG, REPO);
};

/** A: where the delivery happened. B: another instance (same repo state, its own Gitea and journal). */
let a: TriageHarness;
let b: TriageHarness;
let n: number;
let openedId: string;
let work: string;

beforeAll(async () => {
  [a, b] = await Promise.all([startTriage({ seed }), startTriage({ seed })]);
  work = tempDir();
  n = a.sim.openIssue(ORG, REPO, ISSUE);
  // B has the same issue, silently: only the replay will tell B about it.
  expect(b.sim.addIssue(ORG, REPO, ISSUE)).toBe(n);
  await a.settle();
  const opened = a.service.journal.query({ subject: `${ORG}/${REPO}#${n}` }).find((r) => r.action === 'opened');
  openedId = opened!.id;
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  fs.rmSync(work, { recursive: true, force: true });
});

describe('replay --url', () => {
  it('re-sends a recorded delivery under a fresh id, and the other instance decides the same', async () => {
    expect(a.sim.issueLabels(ORG, REPO, n)).toEqual(['kind/bug', 'needs-info']);
    expect(b.sim.issueLabels(ORG, REPO, n)).toEqual([]);

    const run = await runMain(replayMain, ['--delivery', openedId, '--url', b.url], toolEnv(a));
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    // "<original> -> <fresh>  issues/opened  acme/widgets#1  202 accepted"
    const line = run.lines[0]!;
    const m = new RegExp(`^${openedId} -> ([0-9a-f-]{36})  issues/opened  ${ORG}/${REPO}#${n}  202 accepted$`).exec(line);
    expect(m).not.toBeNull();
    const freshId = m![1]!;
    expect(freshId).not.toBe(openedId);
    expect(run.lines.at(-1)).toBe(`1 delivery sent to ${b.url}/webhook: 1 accepted`);

    await b.settle();
    // Same decision: the same labels, added under the same rules.
    expect(b.sim.issueLabels(ORG, REPO, n)).toEqual(a.sim.issueLabels(ORG, REPO, n));
    const rules = (h: TriageHarness) =>
      OwnershipStore.forJournal(h.service.journal)
        .events(`${ORG}/${REPO}`, n)
        .map((e) => `${e.action} ${e.label} ${e.kind} ${e.rule}`)
        .sort();
    expect(rules(b)).toEqual(rules(a));
    // B journaled it under the fresh id, with A's exact bytes.
    const row = b.service.journal.get(freshId)!;
    expect(row.state).toBe('done');
    expect(row.body).toBe(a.service.journal.get(openedId)!.body);
    expect(b.service.journal.get(openedId)).toBeUndefined();
  });

  it('reports a receiver that refuses the signature, and fails with one line', async () => {
    const run = await runMain(replayMain, ['--delivery', openedId, '--url', b.url], toolEnv(a, { WEBHOOK_SECRET: 'not-the-secret' }));
    expect(run.lines[0]).toMatch(/  401 signature does not match$/);
    expect(run.err).toBe('replay: 1 of 1 deliveries were not accepted (first: 401 signature does not match)\n');
    expect(run.code).toBe(1);
  });
});

describe('export → replay --from', () => {
  it('exports the rows as JSON lines with the body as received', async () => {
    const file = path.join(work, 'repro.jsonl');
    const run = await runMain(exportMain, ['--issue', `${ORG}/${REPO}#${n}`, '--out', file], toolEnv(a));
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const rows = a.service.journal.query({ subject: `${ORG}/${REPO}#${n}` });
    expect(run.out).toBe(`${rows.length} deliveries written to ${file}\n`);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.id)).toEqual(rows.map((r) => r.id));
    const opened = lines.find((l) => l.id === openedId)!;
    expect(Object.keys(opened).sort()).toEqual(['body', 'event', 'eventType', 'headers', 'id', 'lastError', 'receivedAt', 'state'].sort());
    expect(opened).toMatchObject({ event: 'issues', eventType: 'issues', state: 'done', lastError: null });
    expect(opened.body).toBe(a.service.journal.get(openedId)!.body);
    expect(new Date(opened.receivedAt as string).getTime()).toBe(a.service.journal.get(openedId)!.receivedAt);
    // The bot's own echo is in the story too, recorded as ignored.
    expect(lines.some((l) => l.state === 'ignored')).toBe(true);
  });

  it('replays the file into another instance under the recorded ids, byte for byte; a second time is a duplicate', async () => {
    const file = path.join(work, 'repro.jsonl');
    const first = await runMain(replayMain, ['--from', file, '--delivery', openedId, '--same-id', '--url', `${b.url}/webhook`], { WEBHOOK_SECRET: 'triage-test-secret', DATA_DIR: path.join(work, 'none') });
    expect(first.err).toBe('');
    expect(first.lines[0]).toBe(`${openedId}  issues/opened  ${ORG}/${REPO}#${n}  202 accepted`);
    await b.settle();
    const row = b.service.journal.get(openedId)!;
    const original = a.service.journal.get(openedId)!;
    expect({ event: row.event, eventType: row.eventType, body: row.body, subject: row.subject, sender: row.sender }).toEqual({
      event: original.event,
      eventType: original.eventType,
      body: original.body,
      subject: original.subject,
      sender: original.sender,
    });

    const again = await runMain(replayMain, ['--from', file, '--delivery', openedId, '--same-id', '--url', `${b.url}/webhook`], { WEBHOOK_SECRET: 'triage-test-secret' });
    expect(again.lines[0]).toBe(`${openedId}  issues/opened  ${ORG}/${REPO}#${n}  200 duplicate`);
    // The summary says what the receiver did: it had the delivery, so nothing was accepted.
    expect(again.lines.at(-1)).toBe(
      `1 delivery sent to ${b.url}/webhook: 0 accepted, 1 duplicate (a duplicate was already in the receiver's journal and was not evaluated again)`,
    );
    expect(again.code).toBe(0);
  });

  it('--local runs the file through the pipeline in dry run and prints each decision with its reasons', async () => {
    // A third Gitea with the issue as it was: nothing labelled yet. No service, no journal.
    const sim = await SimGitea.start();
    try {
      seed(sim);
      sim.addIssue(ORG, REPO, ISSUE);
      sim.resetStats();
      const run = await runMain(replayMain, ['--from', path.join(work, 'repro.jsonl'), '--local'], simEnv(sim, path.join(work, 'no-data-dir')));
      expect(run.err).toBe('');
      expect(run.code).toBe(0);
      expect(run.lines[0]).toBe(`${ORG}/${REPO}#${n}  issues/opened (1 delivery)`);
      expect(run.out).toMatch(/^  add +kind\/bug +labels\.kind\/bug\.title: .*crash/m);
      expect(run.out).toMatch(/^  add +needs-info +labels\.needs-info\.\S+: .*Steps to reproduce/m);
      expect(run.lines.at(-1)).toBe('1 subject evaluated (dry run): 1 would change, 0 unchanged, 0 failed');
      // A dry run: nothing written to Gitea, no DATA_DIR created.
      expect(sim.stats().labelWrites).toBe(0);
      expect(sim.issueLabels(ORG, REPO, n)).toEqual([]);
      expect(fs.existsSync(path.join(work, 'no-data-dir'))).toBe(false);
    } finally {
      await sim.close();
    }
  });

  it('--local against the journal leaves DATA_DIR as it was', async () => {
    const store = OwnershipStore.forJournal(a.service.journal);
    const events = store.events(`${ORG}/${REPO}`, n).length;
    const known = store.known(`${ORG}/${REPO}`, n);
    expect(known).toBeDefined();
    const states = a.service.journal.query({}).map((r) => `${r.id}:${r.state}`);
    const run = await runMain(replayMain, ['--issue', `${ORG}/${REPO}#${n}`, '--local'], toolEnv(a));
    expect(run.code).toBe(0);
    // The labels are on already: the same rules decide nothing new.
    expect(run.out).toContain(`${ORG}/${REPO}#${n}  issues/opened (1 delivery)\n`);
    expect(run.out).toContain('  no change\n');
    expect(store.events(`${ORG}/${REPO}`, n).length).toBe(events);
    // The evaluator re-read the issue and noted its labels, in its copy only.
    expect(store.known(`${ORG}/${REPO}`, n)).toEqual(known);
    expect(a.service.journal.query({}).map((r) => `${r.id}:${r.state}`)).toEqual(states);
  });
});
