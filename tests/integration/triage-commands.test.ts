import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

let h: TriageHarness;

beforeAll(async () => {
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      seedTriagedRepo(sim, ORG, REPO);
      sim.addOrgLabel(ORG, { name: 'priority/high', exclusive: true, color: 'd93f0b' });
      sim.setPermission(ORG, REPO, 'carol', 'write');
      sim.setPermission(ORG, REPO, 'dave', 'read');
      // The simulated Gitea has no private repositories; an explicit `none` stands for a user without access.
      sim.setPermission(ORG, REPO, 'eve', 'none' as 'read');
      sim.addUser('alice');
    },
  });
});

afterAll(async () => {
  await h?.close();
});

const labels = (n: number) => h.sim.issueLabels(ORG, REPO, n);
const botReplies = (n: number) => h.sim.comments(ORG, REPO, n).filter((c) => c.user === h.sim.botLogin);

describe('/label commands', () => {
  it('applies a write user\'s command (repo and org labels, adds and removes), and the rules leave its labels alone', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on save', body: BODY });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
    h.sim.comment(ORG, REPO, n, 'carol', 'Seen it too.\n\n/label priority/high area/ui -kind/bug');
    await h.settle();
    expect(labels(n)).toEqual(['area/ui', 'priority/high']);
    // A later edit: kind/bug still matches the title, but a person removed it by command.
    h.sim.editIssue(ORG, REPO, n, { title: 'Crash on save (bug)' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual(['area/ui', 'priority/high']);
    expect(botReplies(n)).toEqual([]);
    const events = h.store.events(`${ORG}/${REPO}`, n).filter((e) => e.kind === 'command');
    expect(events.map((e) => `${e.action} ${e.label} by ${e.user}`).sort()).toEqual([
      'added area/ui by carol',
      'added priority/high by carol',
      'removed kind/bug by carol',
    ]);
  });

  it('a label added by command stays when its rule does not hold', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Slow start', body: BODY });
    h.sim.comment(ORG, REPO, n, 'carol', '/label kind/bug');
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
    h.sim.editIssue(ORG, REPO, n, { title: 'Slow start, still' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
  });

  it('a command asking for a label the rules had added makes it the person\'s: it stays when the rule stops holding', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on export', body: BODY });
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
    expect(h.store.ownership(`${ORG}/${REPO}`, n).botOwned.has('kind/bug')).toBe(true);
    h.sim.resetStats();
    h.sim.comment(ORG, REPO, n, 'carol', 'Confirmed.\n\n/label kind/bug');
    await h.settle();
    // Already there: nothing to write, but it is carol's now.
    expect(h.sim.stats().labelWrites).toBe(0);
    expect(h.store.ownership(`${ORG}/${REPO}`, n).botOwned.has('kind/bug')).toBe(false);
    expect(h.store.owned(`${ORG}/${REPO}`, n)).toEqual([expect.objectContaining({ label: 'kind/bug', kind: 'command', user: 'carol' })]);
    // Without the command the rule would remove it now (see 'removes its own label' in the rules tests).
    h.sim.editIssue(ORG, REPO, n, { title: 'Export is slow' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
  });

  it('a command removing a label that is not there keeps it off: a rule does not add it later', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Export is slow', body: BODY });
    await h.settle();
    expect(labels(n)).toEqual([]);
    h.sim.comment(ORG, REPO, n, 'carol', 'Not a bug, whatever the title will say.\n\n/label -kind/bug');
    await h.settle();
    expect(labels(n)).toEqual([]);
    expect(h.store.ownership(`${ORG}/${REPO}`, n).humanRemoved.has('kind/bug')).toBe(true);
    const events = h.store.events(`${ORG}/${REPO}`, n).filter((e) => e.label === 'kind/bug');
    expect(events).toEqual([expect.objectContaining({ action: 'removed', kind: 'command', user: 'carol', evidence: 'not on the issue, kept off' })]);
    // The title now matches kind/bug's rule: carol's wish wins.
    h.sim.editIssue(ORG, REPO, n, { title: 'Export crashes' }, 'alice');
    await h.settle();
    expect(labels(n)).toEqual([]);
    // And a later command can still add it.
    h.sim.comment(ORG, REPO, n, 'carol', '/label kind/bug');
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
  });

  it('refuses commands from read and no-access users, says so in a reply, and changes nothing', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Crash on load', body: BODY });
    await h.settle();
    h.sim.resetStats();
    h.sim.comment(ORG, REPO, n, 'dave', '/label -kind/bug');
    h.sim.comment(ORG, REPO, n, 'eve', '/label priority/high');
    await h.settle();
    expect(labels(n)).toEqual(['kind/bug']);
    expect(h.sim.stats().labelWrites).toBe(0);
    const replies = botReplies(n).map((c) => c.body);
    expect(replies).toHaveLength(2);
    expect(replies.find((r) => r.startsWith('@dave'))).toContain('needs write permission');
    expect(replies.find((r) => r.startsWith('@eve'))).toContain('eve has none');
    const refused = h.logs.find({ msg: 'command refused', number: n });
    expect(refused.map((l) => l.user).sort()).toEqual(['dave', 'eve']);
  });

  it('on an edited comment, runs only the commands the edit added', async () => {
    const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Toolbar', body: BODY });
    h.sim.comment(ORG, REPO, n, 'dave', '/label area/ui');
    await h.settle();
    expect(botReplies(n)).toHaveLength(1);
    expect(labels(n)).toEqual([]);

    // The simulated Gitea has no comment editing: send the \`edited\` delivery Gitea would send.
    const created = h.service.journal.query({ subject: `${ORG}/${REPO}#${n}` }).find((d) => d.event === 'issue_comment');
    const payload = JSON.parse(created!.body) as { action: string; comment: { body: string; updated_at: string }; changes?: unknown };
    const edit = (body: string, from: string, at: string) => ({
      ...payload,
      action: 'edited',
      comment: { ...payload.comment, body, updated_at: at },
      changes: { body: { from } },
    });
    // The text around the command changed, the command did not: no second reply.
    const same = edit('/label area/ui\n\n(typo fixed)', '/label area/ui', '2030-01-01T00:00:01Z');
    expect(await h.deliver(h.sim.makeDelivery('issue_comment', 'issue_comment', same))).toBe(202);
    await h.settle();
    expect(botReplies(n)).toHaveLength(1);
    // A new command in the edit is checked (and refused: dave can only read).
    const added = edit('/label area/ui\n/label needs-info', same.comment.body, '2030-01-01T00:00:02Z');
    expect(await h.deliver(h.sim.makeDelivery('issue_comment', 'issue_comment', added))).toBe(202);
    await h.settle();
    expect(botReplies(n)).toHaveLength(2);
    expect(botReplies(n)[1]!.body).toContain('/label needs-info');
  });

  it('refuses commands when the bot is not a repo admin, and says so in the log', async () => {
    h.sim.setBotIsAdmin(false);
    try {
      const n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Menu', body: BODY });
      // A user whose permission is not cached yet (permissions are reused for a minute).
      h.sim.setPermission(ORG, REPO, 'frank', 'write');
      h.sim.comment(ORG, REPO, n, 'frank', '/label area/ui');
      await h.settle();
      expect(labels(n)).toEqual([]);
      const warnings = h.logs.find({ level: 'warn', msg: 'commands need the bot to be a repo admin' });
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(warnings[0]).toMatchObject({ repo: `${ORG}/${REPO}` });
    } finally {
      h.sim.setBotIsAdmin(true);
    }
  });
});
