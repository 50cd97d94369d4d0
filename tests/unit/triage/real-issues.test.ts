import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import type { GiteaIssueTemplate } from '../../../src/gitea/types.js';
import { parseTriageConfig } from '../../../src/triage/config.js';
import { decide, matchTemplate } from '../../../src/triage/decide.js';
import { formHeadings, markdownSections, NO_RESPONSE, normalizeHeading, templateInfo } from '../../../src/triage/templates.js';
import type { TemplateInfo, TriageConfig } from '../../../src/triage/types.js';

/**
 * `missing_sections: template` on real public issues, each filed with its project's template and
 * labelled by hand (tests/fixtures/real-issues/README.md says where they come from and how they
 * were labelled): the rule's `needs-info` against the hand label.
 */
const DIR = path.join(import.meta.dirname, '../../fixtures/real-issues');

interface RealIssue {
  source: string;
  filed: string;
  /** The template it was filed with, under templates/. */
  template: string;
  label: 'complete' | 'needs-info';
  reason: string;
  body: string;
}

const issues = JSON.parse(fs.readFileSync(path.join(DIR, 'issues.json'), 'utf8')) as RealIssue[];

/** A template file as `GET /repos/{owner}/{repo}/issue_templates` returns it: a form's fields, or a markdown template's text after its front matter. */
function loadTemplate(file: string): GiteaIssueTemplate {
  const text = fs.readFileSync(path.join(DIR, 'templates', file), 'utf8');
  if (file.endsWith('.md')) {
    const front = /^---\n([\s\S]*?)\n---\n/.exec(text);
    const meta = (front ? parseYaml(front[1] as string) : {}) as { name?: string };
    return { name: meta.name ?? file, file_name: file, content: front ? text.slice(front[0].length) : text, body: null };
  }
  const form = parseYaml(text) as { name: string; body: GiteaIssueTemplate['body'] };
  return { name: form.name, file_name: file, content: '', body: form.body };
}

/** The templates the issue's repository offered beside the one it was filed with: its project's templates of the same kind (forms, or markdown). */
function offered(file: string): TemplateInfo[] {
  const folder = path.dirname(file);
  const kind = path.extname(file);
  return fs
    .readdirSync(path.join(DIR, 'templates', folder))
    .filter((f) => path.extname(f) === kind)
    .sort()
    .map((f) => templateInfo(loadTemplate(`${folder}/${f}`)));
}

function config(text: string): TriageConfig {
  const r = parseTriageConfig(text, '.gitea/triage.yml');
  if ('problem' in r) throw new Error(JSON.stringify(r.problem));
  return r.config;
}

/** Each project's rule, as its maintainers would write it (README's triage-config section). */
const CONFIGS: Record<string, TriageConfig> = {
  // The old markdown template's `## Screenshots` says "if this issue involves the Web Interface".
  'go-gitea': config('labels:\n  needs-info:\n    missing_sections: template\n    optional_sections: [Screenshots]\n'),
  'facebook-react': config('labels:\n  needs-info:\n    missing_sections: template\n'),
};

/**
 * The body Gitea would have written for the same answers: every field of the form as `### <label>`,
 * an empty one as `_No response_` (modules/issue/template/template.go, `RenderToMarkdown`). The
 * stored copies of these GitHub issues have no section for an empty optional field; Gitea writes one.
 */
function asGiteaWrites(issue: RealIssue): RealIssue {
  const form = loadTemplate(issue.template).body;
  if (!form) return issue;
  const fields = formHeadings(form);
  const wanted = new Set(fields.map(normalizeHeading));
  const answers = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of issue.body.split('\n')) {
    const heading = /^### (.*)$/.exec(line)?.[1];
    if (heading !== undefined && wanted.has(normalizeHeading(heading))) answers.set(normalizeHeading(heading), (current = []));
    else current?.push(line);
  }
  const body = fields.map((h) => `### ${h}\n\n${answers.get(normalizeHeading(h))?.join('\n').trim() || '_No response_'}\n\n`).join('');
  return { ...issue, body };
}

function verdict(issue: RealIssue): { needsInfo: boolean; picked?: string; evidence?: string } {
  const project = issue.template.split('/')[0] as string;
  const templates = offered(issue.template);
  const plan = decide(
    { kind: 'issue', number: 1, title: '', body: issue.body, labels: [] },
    { config: CONFIGS[project] as TriageConfig, templates, exclusiveLabels: new Set() },
    { botOwned: new Set(), humanRemoved: new Set() },
    [],
  );
  const headings = new Set(markdownSections(issue.body).map((s) => normalizeHeading(s.heading)));
  const picked = matchTemplate(headings, templates)?.fileName;
  const evidence = plan.reasons.find((r) => r.label === 'needs-info')?.evidence;
  return { needsInfo: plan.add.includes('needs-info'), picked, evidence };
}

describe('needs-info on real issues', () => {
  it('is a set of at least 40 issues from two projects, each labelled with a reason', () => {
    expect(issues.length).toBeGreaterThanOrEqual(40);
    expect(new Set(issues.map((i) => new URL(i.source).pathname.split('/').slice(1, 3).join('/'))).size).toBe(2);
    for (const i of issues) {
      expect(['complete', 'needs-info']).toContain(i.label);
      expect(i.reason.length).toBeGreaterThan(0);
      expect(fs.existsSync(path.join(DIR, 'templates', i.template))).toBe(true);
    }
  });

  it('holds each issue against the template it was filed with', () => {
    const wrong = issues.map((i) => ({ source: i.source, filed: i.template, picked: verdict(i).picked })).filter((v) => v.picked !== v.filed);
    expect(wrong).toEqual([]);
  });

  /** Precision and recall of the rule's needs-info against the hand labels, printed with every miss. */
  function score(set: readonly RealIssue[], what: string): { precision: number; recall: number } {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    const misses: string[] = [];
    for (const issue of set) {
      const { needsInfo, evidence } = verdict(issue);
      const wanted = issue.label === 'needs-info';
      if (needsInfo && wanted) tp++;
      if (needsInfo && !wanted) fp++;
      if (!needsInfo && wanted) fn++;
      if (needsInfo !== wanted) misses.push(`${issue.source}: hand ${issue.label} (${issue.reason}); rule ${needsInfo ? `needs-info: ${evidence}` : 'nothing missing'}`);
    }
    const precision = tp / (tp + fp);
    const recall = tp / (tp + fn);
    console.log(
      `needs-info on ${set.length} real issues ${what} (${tp + fn} labelled needs-info): ` +
        `precision ${precision.toFixed(2)} (${tp}/${tp + fp}), recall ${recall.toFixed(2)} (${tp}/${tp + fn})` +
        (misses.length > 0 ? `\n${misses.join('\n')}` : ''),
    );
    return { precision, recall };
  }

  it('reaches precision and recall of at least 0.9', () => {
    const { precision, recall } = score(issues, 'as stored');
    expect(precision).toBeGreaterThanOrEqual(0.9);
    expect(recall).toBeGreaterThanOrEqual(0.9);
  });

  it('reaches them too on the bodies Gitea writes for the same answers (empty optional fields as _No response_)', () => {
    const rendered = issues.map(asGiteaWrites);
    // The reconstruction changes the form-filed bodies only, and keeps every answer.
    expect(rendered.filter((r, i) => r.body !== issues[i]?.body).length).toBe(issues.filter((i) => !i.template.endsWith('.md')).length);
    expect(rendered.filter((r) => r.body.includes(NO_RESPONSE)).length).toBeGreaterThan(0);
    const { precision, recall } = score(rendered, 'as Gitea writes them');
    expect(precision).toBeGreaterThanOrEqual(0.9);
    expect(recall).toBeGreaterThanOrEqual(0.9);
  });
});
