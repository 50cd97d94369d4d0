import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import winston from 'winston';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

const ORG = 'acme';
const REPO = 'widgets';
const BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Start it\n\n### Version\n1.4.2\n';

/**
 * The simulated Gitea's requests in the order it answered them (`METHOD path`): its debug line follows
 * each answer. A logger that keeps them and writes nothing.
 */
function answeredRequests(into: string[]): winston.Logger {
  const keep = winston.format((info) => {
    const { method, path } = info as { method?: unknown; path?: unknown };
    if (typeof method === 'string' && typeof path === 'string') into.push(`${method} ${path.replace(/^\/api\/v1/, '')}`);
    return false;
  });
  return winston.createLogger({
    level: 'debug',
    format: keep(),
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (_chunk, _enc, done) => done() }) })],
  });
}

describe('time to label: the issue read does not wait for a context load', () => {
  let h: TriageHarness;
  const answered: string[] = [];

  beforeAll(async () => {
    h = await startTriage({
      // No context cache: every evaluation loads the repository's context again, as after a TTL or a push.
      env: { CONTEXT_TTL_MS: '0' },
      // Every answer takes 30 ms: the order of the answers shows which requests waited for which.
      sim: { latencyMs: 30, log: answeredRequests(answered) },
      seed: (sim) => {
        sim.addOrg(ORG);
        sim.addUser('alice');
        seedTriagedRepo(sim, ORG, REPO);
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const index = (from: number, request: string) => answered.indexOf(request, from);

  it('reads the issue with the context of a repository known to be triaged, after it in one not yet known', async () => {
    const first = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: BODY });
    await h.settle();
    expect(h.sim.issueLabels(ORG, REPO, first)).toEqual(['kind/bug']);
    // A repository seen for the first time: its config first (a repo without one costs that request
    // alone), then the templates and labels, then the issue.
    const firstRead = index(0, `GET /repos/${ORG}/${REPO}/issues/${first}`);
    expect(firstRead).toBeGreaterThan(index(0, `GET /repos/${ORG}/${REPO}/issue_templates`));

    const mark = answered.length;
    const second = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Export crashes', body: BODY });
    await h.settle();
    expect(h.sim.issueLabels(ORG, REPO, second)).toEqual(['kind/bug']);
    // Known to be triaged: the issue is read while the config is, before the templates that wait for it.
    const secondRead = index(mark, `GET /repos/${ORG}/${REPO}/issues/${second}`);
    const templates = index(mark, `GET /repos/${ORG}/${REPO}/issue_templates`);
    expect(secondRead).toBeGreaterThanOrEqual(mark);
    expect(templates).toBeGreaterThan(mark);
    expect(secondRead).toBeLessThan(templates);
    // And read once: the early read is the evaluation's read.
    expect(answered.slice(mark).filter((r) => r === `GET /repos/${ORG}/${REPO}/issues/${second}`)).toHaveLength(1);
  });
});
