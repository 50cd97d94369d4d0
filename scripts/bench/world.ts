/**
 * The benchmark's world: a simulated Gitea seeded with repositories that opt into triage, their
 * labels, an issue template, and issues whose titles and bodies exercise every issue rule.
 */
import { loadPayload } from './deliveries.js';
import { SimGitea } from '../../src/simgitea/sim.js';

export const ORG = 'bench';
export const AUTHOR = 'reporter';

export const TRIAGE_YML = `labels:
  kind/bug:
    title: ['\\bbug\\b', 'crash']
    body: ['stack ?trace']
  kind/feature:
    title: ['\\bfeature\\b', 'support for']
  area/docs:
    title: ['\\bdocs?\\b', 'typo']
  needs-info:
    missing_sections: template
`;

const TEMPLATE = `---
name: Bug report
about: Something does not work
---
### What happened

### Steps to reproduce

### Version
`;

const TITLES = [
  'Editor crash when saving a widget',
  'Add support for dark mode',
  'Typo in the install docs',
  'Widget list is slow with 10k rows',
  'Login bug after password reset',
];

function body(i: number): string {
  // Every third issue leaves out a template section: needs-info.
  const steps = i % 3 === 0 ? '' : '### Steps to reproduce\n1. Open the editor\n2. Save\n\n';
  const trace = i % 4 === 0 ? 'Stack trace:\n    at save (editor.ts:12)\n' : 'It fails.\n';
  return `### What happened\n${trace}\n${steps}### Version\n1.4.${i % 10}\n`;
}

export interface World {
  sim: SimGitea;
  repos: string[];
  /** `owner/repo` and issue number of every seeded issue. */
  issues: { owner: string; repo: string; number: number; title: string }[];
}

/** Seeds `repoCount` repositories with `issuesPerRepo` open issues each. */
export function seedWorld(sim: SimGitea, repoCount: number, issuesPerRepo: number): World {
  sim.addOrg(ORG);
  sim.addUser(AUTHOR);
  const repos: string[] = [];
  const issues: World['issues'] = [];
  for (let r = 0; r < repoCount; r++) {
    const name = `repo-${String(r).padStart(2, '0')}`;
    sim.addRepo(ORG, name, {
      files: { '.gitea/triage.yml': TRIAGE_YML, '.gitea/ISSUE_TEMPLATE/bug.md': TEMPLATE, 'README.md': '# ' + name },
    });
    sim.addLabel(ORG, name, { name: 'kind/bug', color: 'ee0701', exclusive: true });
    sim.addLabel(ORG, name, { name: 'kind/feature', color: '0e8a16', exclusive: true });
    sim.addLabel(ORG, name, { name: 'area/docs', color: '1d76db' });
    sim.addLabel(ORG, name, { name: 'needs-info', color: 'fbca04' });
    repos.push(`${ORG}/${name}`);
    for (let i = 0; i < issuesPerRepo; i++) {
      const title = TITLES[(r + i) % TITLES.length]!;
      const number = sim.addIssue(ORG, name, { title, body: body(i), user: AUTHOR });
      issues.push({ owner: ORG, repo: name, number, title });
    }
  }
  return { sim, repos, issues };
}

/** The fixture `issues` `edited` payload, re-targeted at one issue of the world (a realistic ~6 KB body). */
export function editedPayload(
  template: Record<string, unknown>,
  target: { owner: string; repo: string; number: number; title: string },
  updatedAt: string,
): Record<string, unknown> {
  const payload = structuredClone(template) as Record<string, any>;
  payload.number = target.number;
  payload.issue.number = target.number;
  payload.issue.title = target.title;
  payload.issue.updated_at = updatedAt;
  payload.issue.url = `https://gitea.example.com/api/v1/repos/${target.owner}/${target.repo}/issues/${target.number}`;
  payload.issue.repository = { id: 1, name: target.repo, owner: target.owner, full_name: `${target.owner}/${target.repo}` };
  payload.repository.name = target.repo;
  payload.repository.full_name = `${target.owner}/${target.repo}`;
  payload.repository.owner.login = target.owner;
  payload.repository.owner.username = target.owner;
  payload.sender.login = AUTHOR;
  payload.sender.username = AUTHOR;
  return payload;
}

export function loadFixtureBody(file: string): Record<string, unknown> {
  return loadPayload(file.replace(/\.json$/, '')).body;
}
