import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseTriageConfig } from '../../../src/triage/config.js';
import { type ChangedFile, decide, exclusiveScope, matchTemplate, missingSections } from '../../../src/triage/decide.js';
import { compilePattern } from '../../../src/triage/patterns.js';
import type {
  AllowedCommand,
  DecideContext,
  LabelRule,
  Ownership,
  Plan,
  Reason,
  SubjectState,
  TemplateInfo,
  TriageConfig,
} from '../../../src/triage/types.js';

// --- helpers -------------------------------------------------------------------------------------

function config(text: string): TriageConfig {
  const r = parseTriageConfig(text, '.gitea/triage.yml');
  if ('problem' in r) throw new Error(JSON.stringify(r.problem));
  return r.config;
}

function issue(over: Partial<SubjectState> = {}): SubjectState {
  return { kind: 'issue', number: 1, title: '', body: '', labels: [], ...over };
}

function pull(over: Partial<SubjectState> = {}): SubjectState {
  return { kind: 'pull', number: 2, title: '', body: '', labels: [], files: [], ...over };
}

function file(filename: string, additions = 1, deletions = 0, previousFilename?: string): ChangedFile {
  return { filename, additions, deletions, ...(previousFilename ? { previousFilename } : {}) };
}

function owned(botOwned: string[] = [], humanRemoved: string[] = []): Ownership {
  return { botOwned: new Set(botOwned), humanRemoved: new Set(humanRemoved) };
}

function ctx(c: TriageConfig, templates: TemplateInfo[] = [], exclusive: string[] = []): DecideContext {
  return { config: c, templates, exclusiveLabels: new Set(exclusive) };
}

const NOBODY = owned();

function reasonFor(plan: Plan, label: string, action?: Reason['action']): Reason | undefined {
  return plan.reasons.find((r) => r.label === label && (action === undefined || r.action === action));
}

/** The subject and ownership after the applier carried out `plan`'s changes (as the ownership store records them). */
function apply(subject: SubjectState, own: Ownership, plan: Plan): { subject: SubjectState; own: Ownership } {
  const labels = new Set(subject.labels);
  const bot = new Set(own.botOwned);
  const human = new Set(own.humanRemoved);
  for (const c of plan.changes) {
    if (!c.recordOnly) {
      if (c.action === 'add') labels.add(c.label);
      else labels.delete(c.label);
    }
    if (c.action === 'add') {
      human.delete(c.label);
      if (c.by === 'rule') bot.add(c.label);
      else bot.delete(c.label);
    } else {
      bot.delete(c.label);
      // A rule removing its own label is not a person's decision; a command's removal is.
      if (c.by === 'command') human.add(c.label);
    }
  }
  return { subject: { ...subject, labels: [...labels].sort() }, own: { botOwned: bot, humanRemoved: human } };
}

const RULES = config(`
labels:
  kind/bug:
    title: ['\\bbug\\b', 'crash']
    body: ['stack ?trace']
  area/docs:
    files: ['docs/**', '**/*.md']
  area/api-docs:
    match: all
    files: ['api/**']
    title: ['\\bdocs?\\b']
  needs-info:
    missing_sections: template
size:
  labels: {size/XS: 0, size/S: 10, size/M: 100, size/L: 500, size/XL: 1000}
  exclude: ['**/*.lock', 'vendor/**']
`);

const BUG_TEMPLATE: TemplateInfo = { name: 'Bug report', fileName: '.gitea/ISSUE_TEMPLATE/bug.md', headings: ['Description', 'Steps to reproduce', 'Version'] };
const FEATURE_TEMPLATE: TemplateInfo = { name: 'Feature', fileName: '.gitea/ISSUE_TEMPLATE/feature.yaml', headings: ['Problem', 'Proposal'] };

// --- conditions ----------------------------------------------------------------------------------

describe('conditions', () => {
  it.each<[string, SubjectState, string[]]>([
    ['title matches (case-insensitive)', issue({ title: 'App CRASHES on start' }), ['kind/bug']],
    ['title with a word boundary', issue({ title: 'Found a bug' }), ['kind/bug']],
    ['no word boundary, no match', issue({ title: 'debugging tips' }), []],
    ['body matches', issue({ body: 'Here is the Stack Trace:' }), ['kind/bug']],
    ['files on a pull request', pull({ files: [file('docs/guide/intro.md')] }), ['area/docs', 'size/XS']],
    ['a markdown file anywhere', pull({ files: [file('src/pkg/README.md')] }), ['area/docs', 'size/XS']],
    ['files do not hold on an issue', issue({ title: 'docs question' }), []],
    ['all: files and title', pull({ title: 'Fix API docs', files: [file('api/openapi.yaml')] }), ['area/api-docs', 'size/XS']],
    ['all: files without title', pull({ title: 'Fix API', files: [file('api/openapi.yaml')] }), ['size/XS']],
    ['all: title without files', pull({ title: 'Fix API docs', files: [file('src/a.ts')] }), ['size/XS']],
  ])('%s', (_what, subject, expected) => {
    const plan = decide(subject, ctx(RULES, [BUG_TEMPLATE]), NOBODY, []);
    expect(plan.add).toEqual(expected);
    expect(plan.remove).toEqual([]);
  });

  it('names the condition and the evidence in each reason', () => {
    const plan = decide(issue({ title: 'It crashed', body: 'stacktrace here' }), ctx(RULES), NOBODY, []);
    expect(reasonFor(plan, 'kind/bug')).toEqual({ label: 'kind/bug', action: 'add', rule: 'labels.kind/bug.title', evidence: '"crash" (pattern crash)' });

    const body = decide(issue({ body: 'see the stack trace' }), ctx(RULES), NOBODY, []);
    expect(reasonFor(body, 'kind/bug')).toMatchObject({ rule: 'labels.kind/bug.body', evidence: '"stack trace" (pattern stack ?trace)' });

    const files = decide(pull({ files: [file('src/a.ts'), file('docs/x.md')] }), ctx(RULES), NOBODY, []);
    expect(reasonFor(files, 'area/docs')).toMatchObject({ rule: 'labels.area/docs.files', evidence: 'docs/x.md (glob docs/**)' });
    expect(reasonFor(files, 'size/XS')).toMatchObject({ rule: 'size', evidence: '2 changed lines' });

    const all = decide(pull({ title: 'API docs', files: [file('api/v1.yaml')] }), ctx(RULES), NOBODY, []);
    expect(reasonFor(all, 'area/api-docs')).toMatchObject({
      rule: 'labels.area/api-docs',
      evidence: 'title: "docs" (pattern \\bdocs?\\b); files: api/v1.yaml (glob api/**)',
    });
  });

  const CONDS = config(`
labels:
  any-of-two:
    title: [alpha]
    body: [beta]
  all-of-two:
    match: all
    title: [alpha]
    body: [beta]
  all-with-files:
    match: all
    title: [alpha]
    files: ['src/**']
  all-with-sections:
    match: all
    title: [alpha]
    missing_sections: [Steps]
  any-with-sections:
    body: [gamma]
    missing_sections: [Steps]
`);
  it.each<[string, SubjectState, string[]]>([
    ['neither', issue({ title: 'x', body: '## Steps\ndone' }), []],
    ['title only', issue({ title: 'alpha', body: '## Steps\ndone' }), ['any-of-two']],
    ['body only', issue({ title: 'x', body: 'beta\n## Steps\ndone' }), ['any-of-two']],
    ['both', issue({ title: 'alpha', body: 'beta\n## Steps\ndone' }), ['all-of-two', 'any-of-two']],
    ['sections missing on an issue', issue({ title: 'alpha', body: 'text' }), ['all-with-sections', 'any-of-two', 'any-with-sections']],
    ['files never hold on an issue, so all-with-files never does', issue({ title: 'alpha', body: 'beta' }), ['all-of-two', 'all-with-sections', 'any-of-two', 'any-with-sections']],
    ['files on a pull request', pull({ title: 'alpha', body: 'beta', files: [file('src/x.ts')] }), ['all-of-two', 'all-with-files', 'any-of-two']],
    ['missing_sections never holds on a pull request', pull({ title: 'alpha', body: 'gamma', files: [] }), ['any-of-two', 'any-with-sections']],
  ])('any/all: %s', (_what, subject, expected) => {
    expect(decide(subject, ctx(CONDS), NOBODY, []).add).toEqual(expected);
  });
});

describe('files', () => {
  const c = config(`
labels:
  ci: {files: ['.github/**', '.gitea/**']}
  dotenv: {files: ['**/.env']}
  deep: {files: ['src/**/test/*.ts']}
  docs: {files: ['docs/**']}
`);
  it.each<[string, ChangedFile[], string[]]>([
    ['dot folders', [file('.gitea/workflows/ci.yml')], ['ci']],
    ['dotfiles at any depth', [file('config/prod/.env')], ['dotenv']],
    ['a dotfile at the root', [file('.env')], ['dotenv']],
    ['nested test folders', [file('src/a/b/test/x.ts')], ['deep']],
    ['not one level deeper', [file('src/a/test/sub/x.ts')], []],
    ['a file renamed into docs', [file('docs/moved.md', 0, 0, 'notes/moved.md')], ['docs']],
    ['a file renamed out of docs', [file('archive/old.md', 0, 0, 'docs/old.md')], ['docs']],
    ['no files', [], []],
  ])('%s', (_what, files, expected) => {
    expect(decide(pull({ files }), ctx(c), NOBODY, []).add).toEqual(expected);
  });

  it('leaves labels that depend on unknown files as they are', () => {
    // A pull request whose files were not read: `files` cannot be judged, neither can the size.
    const subject = pull({ files: undefined, labels: ['docs', 'size/S'] });
    const plan = decide(subject, ctx(config("labels:\n  docs: {files: ['docs/**']}\nsize:\n  labels: {size/S: 0, size/L: 100}\n")), owned(['docs', 'size/S']), []);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(reasonFor(plan, 'docs')).toMatchObject({ action: 'keep', evidence: 'changed files not known' });
  });
});

// --- templates and missing sections --------------------------------------------------------------

describe('missing_sections', () => {
  const bugBody = (over: Record<string, string> = {}) =>
    ['Description', 'Steps to reproduce', 'Version']
      .map((h) => `### ${h}\n\n${over[h] ?? `something about ${h.toLowerCase()}`}\n`)
      .join('\n');

  it.each<[string, string, boolean, string | undefined]>([
    ['complete', bugBody(), false, undefined],
    ['a section left out', bugBody().replace(/### Version[\s\S]*/, ''), true, 'missing or empty: Version (template "Bug report")'],
    ['an empty form field (_No response_)', bugBody({ Version: '_No response_' }), true, 'missing or empty: Version (template "Bug report")'],
    ['only an HTML comment', bugBody({ 'Steps to reproduce': '<!-- 1. 2. 3. -->' }), true, 'missing or empty: Steps to reproduce (template "Bug report")'],
    ['two missing', bugBody({ Description: '', Version: '_No response_' }), true, 'missing or empty: Description, Version (template "Bug report")'],
    ['headings spelled differently', bugBody().replace('### Steps to reproduce', '## steps TO reproduce:'), false, undefined],
    ['a heading inside a code block does not count', '### Description\ntext\n```\n### Steps to reproduce\n### Version\n```\n', true, 'missing or empty: Steps to reproduce, Version (template "Bug report")'],
    ['no heading shared with any template: no template, no label', 'Just a free-form text.\n## Something else\nyes', false, undefined],
    ['an empty body', '', false, undefined],
  ])('%s', (_what, body, holds, evidence) => {
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n');
    const plan = decide(issue({ body }), ctx(c, [FEATURE_TEMPLATE, BUG_TEMPLATE]), NOBODY, []);
    expect(plan.add).toEqual(holds ? ['needs-info'] : []);
    if (evidence) expect(reasonFor(plan, 'needs-info')).toEqual({ label: 'needs-info', action: 'add', rule: 'labels.needs-info.missing_sections', evidence });
  });

  it('holds the body against the template it shares most headings with', () => {
    const body = '### Problem\nit is slow\n### Steps to reproduce\n1. open\n### Version\n1.22';
    // Bug report shares 2 headings, Feature 1: the bug report is the template; Description is missing.
    expect(matchTemplate(new Set(['problem', 'steps to reproduce', 'version']), [FEATURE_TEMPLATE, BUG_TEMPLATE])).toBe(BUG_TEMPLATE);
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n');
    const plan = decide(issue({ body }), ctx(c, [FEATURE_TEMPLATE, BUG_TEMPLATE]), NOBODY, []);
    expect(reasonFor(plan, 'needs-info')?.evidence).toBe('missing or empty: Description (template "Bug report")');
  });

  it('breaks a tie for the first template', () => {
    const a: TemplateInfo = { name: 'A', fileName: 'a.md', headings: ['Shared', 'Only A'] };
    const b: TemplateInfo = { name: 'B', fileName: 'b.md', headings: ['Shared', 'Only B'] };
    expect(matchTemplate(new Set(['shared']), [a, b])).toBe(a);
    expect(matchTemplate(new Set(['shared']), [b, a])).toBe(b);
    expect(matchTemplate(new Set(['other']), [a, b])).toBeUndefined();
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n');
    expect(reasonFor(decide(issue({ body: '## Shared\nx' }), ctx(c, [b, a]), NOBODY, []), 'needs-info')?.evidence).toBe(
      'missing or empty: Only B (template "B")',
    );
  });

  it('takes an explicit list of headings without matching a template', () => {
    const c = config('labels:\n  needs-info:\n    missing_sections: ["Steps", "Logs"]\n');
    const plan = decide(issue({ body: '## Steps\n1. run\n' }), ctx(c), NOBODY, []);
    expect(reasonFor(plan, 'needs-info')).toMatchObject({ action: 'add', evidence: 'missing or empty: Logs' });
    expect(decide(issue({ body: '## Steps\n1. run\n## Logs:\nok' }), ctx(c), NOBODY, []).add).toEqual([]);
    expect(missingSections('## steps\n\n_No response_\n', ['Steps', 'steps'])).toEqual(['Steps']);
  });

  it('holds a form issue only to the fields the form requires', () => {
    const form: TemplateInfo = {
      name: 'Bug Report',
      fileName: '.gitea/ISSUE_TEMPLATE/bug.yaml',
      headings: ['Description', 'Gitea Version', 'Log Gist', 'Screenshots'],
      required: ['Gitea Version'],
      placeholders: { 'gitea version': ['v1.14.3'] },
    };
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n    optional_sections: [Gitea Version]\n');
    const body = (version: string) => `### Description\n\nIt breaks.\n\n### Gitea Version\n\n${version}\n\n### Log Gist\n\n_No response_\n\n### Screenshots\n\n_No response_\n`;
    // Optional fields left empty: nothing missing (optional_sections is for markdown templates: the form says what it requires).
    expect(decide(issue({ body: body('1.22.3') }), ctx(c, [form]), NOBODY, []).add).toEqual([]);
    // The required field empty, or still holding the form's own value.
    for (const version of ['_No response_', 'v1.14.3', '...']) {
      const plan = decide(issue({ body: body(version) }), ctx(c, [form]), NOBODY, []);
      expect(reasonFor(plan, 'needs-info')?.evidence).toBe('missing or empty: Gitea Version (template "Bug Report")');
    }
  });

  it('leaves out the headings of a markdown template the rule names optional', () => {
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n    optional_sections: ["version:"]\n');
    const body = '## Description\nIt breaks.\n## Steps to reproduce\n1. run it\n';
    expect(decide(issue({ body }), ctx(c, [BUG_TEMPLATE]), NOBODY, []).add).toEqual([]);
    const without = config('labels:\n  needs-info:\n    missing_sections: template\n');
    expect(reasonFor(decide(issue({ body }), ctx(without, [BUG_TEMPLATE]), NOBODY, []), 'needs-info')?.evidence).toBe(
      'missing or empty: Version (template "Bug report")',
    );
  });

  it('takes a section that holds only the markdown template’s own text as empty', () => {
    const template: TemplateInfo = { ...BUG_TEMPLATE, placeholders: { 'steps to reproduce': ['link to code example:'] } };
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n');
    const body = (steps: string) => `## Description\nIt breaks.\n## Steps to reproduce\n${steps}\n## Version\n1.22\n`;
    const plan = decide(issue({ body: body('1.\n2.\n\nLink to code example:') }), ctx(c, [template]), NOBODY, []);
    expect(reasonFor(plan, 'needs-info')?.evidence).toBe('missing or empty: Steps to reproduce (template "Bug report")');
    expect(decide(issue({ body: body('1. run it\n\nLink to code example: https://x.test/1') }), ctx(c, [template]), NOBODY, []).add).toEqual([]);
  });

  it('removes its needs-info once the sections are there', () => {
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n');
    const plan = decide(issue({ body: bugBody(), labels: ['needs-info'] }), ctx(c, [BUG_TEMPLATE]), owned(['needs-info']), []);
    expect(plan.remove).toEqual(['needs-info']);
    expect(reasonFor(plan, 'needs-info')).toEqual({ label: 'needs-info', action: 'remove', rule: 'labels.needs-info', evidence: 'no condition holds any more' });
  });
});

// --- size ------------------------------------------------------------------------------------------

describe('size', () => {
  it.each<[string, ChangedFile[], string | undefined, number]>([
    ['no files', [], 'size/XS', 0],
    ['just under S', [file('a.ts', 5, 4)], 'size/XS', 9],
    ['exactly S', [file('a.ts', 5, 5)], 'size/S', 10],
    ['99 lines', [file('a.ts', 50, 49)], 'size/S', 99],
    ['100 lines over two files', [file('a.ts', 60, 0), file('b.ts', 0, 40)], 'size/M', 100],
    ['lock files and vendor not counted', [file('a.ts', 5, 0), file('package.lock', 5000, 0), file('vendor/x/y.go', 900, 100)], 'size/XS', 5],
    ['huge', [file('a.ts', 100_000, 0)], 'size/XL', 100_000],
  ])('%s', (_what, files, label, total) => {
    const plan = decide(pull({ files }), ctx(RULES), NOBODY, []);
    expect(plan.add.filter((l) => l.startsWith('size/'))).toEqual(label ? [label] : []);
    if (label) expect(reasonFor(plan, label)).toEqual({ label, action: 'add', rule: 'size', evidence: `${total} changed lines` });
  });

  it('earns nothing below the smallest threshold', () => {
    const c = config('size:\n  labels: {size/S: 10, size/M: 100}\n');
    expect(decide(pull({ files: [file('a', 3)] }), ctx(c), NOBODY, []).add).toEqual([]);
  });

  it('replaces its size label when the size grows', () => {
    const plan = decide(pull({ files: [file('a.ts', 150, 0)], labels: ['size/S'] }), ctx(RULES), owned(['size/S']), []);
    expect(plan.add).toEqual(['size/M']);
    expect(plan.remove).toEqual(['size/S']);
    expect(reasonFor(plan, 'size/S', 'remove')).toEqual({ label: 'size/S', action: 'remove', rule: 'size', evidence: '150 changed lines: size/M now' });
  });

  it('replaces it through the scope when size labels are exclusive', () => {
    const plan = decide(pull({ files: [file('a.ts', 150, 0)], labels: ['size/S'] }), ctx(RULES, [], ['size/S', 'size/M']), owned(['size/S']), []);
    expect(plan.add).toEqual(['size/M']);
    expect(plan.remove).toEqual(['size/S']);
    expect(reasonFor(plan, 'size/S', 'remove')?.evidence).toBe('replaced by size/M in exclusive scope size');
  });

  it('never removes a size label a person set', () => {
    const plan = decide(pull({ files: [file('a.ts', 150, 0)], labels: ['size/S'] }), ctx(RULES), NOBODY, []);
    expect(plan.add).toEqual(['size/M']);
    expect(plan.remove).toEqual([]);
  });

  it('is not about issues', () => {
    expect(decide(issue({ title: 'x' }), ctx(RULES), NOBODY, []).add).toEqual([]);
  });
});

// --- ownership -------------------------------------------------------------------------------------

describe('ownership', () => {
  const bug = issue({ title: 'crash on start' });

  it('never re-adds a label a person removed', () => {
    const plan = decide(bug, ctx(RULES), owned([], ['kind/bug']), []);
    expect(plan.add).toEqual([]);
    expect(reasonFor(plan, 'kind/bug')).toEqual({ label: 'kind/bug', action: 'skip', rule: 'labels.kind/bug.title', evidence: 'removed by a person' });
  });

  it('never removes a label a person added, even when its rule does not hold', () => {
    const plan = decide(issue({ title: 'question', labels: ['kind/bug', 'wontfix'] }), ctx(RULES), NOBODY, []);
    expect(plan).toEqual({ add: [], remove: [], addedByCommand: [], keptOffByCommand: [], reasons: [], changes: [] });
  });

  it('removes its own label when the rule stops holding', () => {
    const plan = decide(issue({ title: 'question', labels: ['kind/bug'] }), ctx(RULES), owned(['kind/bug']), []);
    expect(plan.remove).toEqual(['kind/bug']);
    expect(reasonFor(plan, 'kind/bug')).toEqual({ label: 'kind/bug', action: 'remove', rule: 'labels.kind/bug', evidence: 'no condition holds any more' });
  });

  it('removes its own label whose rule left the config', () => {
    const plan = decide(issue({ labels: ['old/rule'] }), ctx(RULES), owned(['old/rule']), []);
    expect(plan.remove).toEqual(['old/rule']);
    expect(reasonFor(plan, 'old/rule')).toEqual({ label: 'old/rule', action: 'remove', rule: 'config', evidence: 'no rule for this label in the config any more' });
  });

  it('keeps its label while the rule holds, and writes nothing', () => {
    const plan = decide(issue({ title: 'crash', labels: ['kind/bug'] }), ctx(RULES), owned(['kind/bug']), []);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(reasonFor(plan, 'kind/bug')).toEqual({ label: 'kind/bug', action: 'keep', rule: 'labels.kind/bug.title', evidence: '"crash" (pattern crash)' });
  });

  it('removes its label when every condition of an all-rule no longer holds', () => {
    const plan = decide(pull({ title: 'API', files: [file('api/x')], labels: ['area/api-docs'] }), ctx(RULES), owned(['area/api-docs']), []);
    expect(reasonFor(plan, 'area/api-docs')).toMatchObject({ action: 'remove', evidence: 'not every condition holds any more' });
  });
});

// --- commands --------------------------------------------------------------------------------------

describe('commands', () => {
  const cmd = (user: string, add: string[], remove: string[] = []): AllowedCommand => ({ user, add, remove });

  it('adds what a command asks for, owned by the person', () => {
    const plan = decide(issue(), ctx(RULES), NOBODY, [cmd('alice', ['help wanted'])]);
    expect(plan.add).toEqual(['help wanted']);
    expect(plan.addedByCommand).toEqual(['help wanted']);
    expect(reasonFor(plan, 'help wanted')).toEqual({ label: 'help wanted', action: 'add', rule: 'command', evidence: '/label by alice' });
  });

  it('removes what a command asks to remove, whoever added it', () => {
    const plan = decide(issue({ labels: ['a', 'b', 'c'] }), ctx(RULES), owned(['a']), [cmd('bob', [], ['a', 'b', 'not-there'])]);
    expect(plan.remove).toEqual(['a', 'b']);
    expect(reasonFor(plan, 'b')).toEqual({ label: 'b', action: 'remove', rule: 'command', evidence: '/label by bob' });
    expect(plan.keptOffByCommand).toEqual(['not-there']);
  });

  it('keeps off a label a command removes while it is not there: no rule adds it, the applier records it', () => {
    const plan = decide(issue({ title: 'crash' }), ctx(RULES), NOBODY, [cmd('bob', [], ['kind/bug'])]);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(plan.keptOffByCommand).toEqual(['kind/bug']);
    expect(reasonFor(plan, 'kind/bug')).toEqual({ label: 'kind/bug', action: 'skip', rule: 'command', evidence: '/label by bob: not on the issue, kept off' });
  });

  it('does not let a rule re-add a label a command removes', () => {
    const plan = decide(issue({ title: 'crash', labels: ['kind/bug'] }), ctx(RULES), owned(['kind/bug']), [cmd('alice', [], ['kind/bug'])]);
    expect(plan.remove).toEqual(['kind/bug']);
    expect(plan.add).toEqual([]);
  });

  it('does not let a rule remove a label a command adds', () => {
    const plan = decide(issue({ title: 'question' }), ctx(RULES), NOBODY, [cmd('alice', ['kind/bug'])]);
    expect(plan.add).toEqual(['kind/bug']);
    expect(plan.remove).toEqual([]);
  });

  it("says whose each change is: the commenter's for the labels a command adds, removes or displaces", () => {
    const plan = decide(
      issue({ title: 'crash', labels: ['kind/bug', 'wontfix'] }),
      ctx(RULES, [], ['kind/bug', 'kind/feature']),
      owned(['kind/bug']),
      [cmd('alice', ['kind/feature'], ['wontfix', 'gone'])],
    );
    expect(plan.changes).toEqual([
      { label: 'kind/feature', action: 'add', by: 'command', user: 'alice', rule: 'command' },
      { label: 'gone', action: 'remove', by: 'command', user: 'alice', rule: 'command', evidence: 'not on the issue, kept off', recordOnly: true },
      { label: 'kind/bug', action: 'remove', by: 'command', user: 'alice', rule: 'command', evidence: 'replaced by kind/feature in exclusive scope kind (/label by alice)' },
      { label: 'wontfix', action: 'remove', by: 'command', user: 'alice', rule: 'command', evidence: '/label by alice' },
    ]);
  });

  it("records a command's claim on a bot-owned label already there, and only then", () => {
    const claim = decide(issue({ labels: ['kind/bug'] }), ctx(RULES), owned(['kind/bug']), [cmd('alice', ['kind/bug'])]);
    expect(claim.changes).toEqual([{ label: 'kind/bug', action: 'add', by: 'command', user: 'alice', rule: 'command', evidence: 'already there', recordOnly: true }]);
    const persons = decide(issue({ labels: ['kind/bug'] }), ctx(RULES), NOBODY, [cmd('alice', ['kind/bug'])]);
    expect(persons.changes).toEqual([]);
  });

  it('takes over a bot-owned label a command asks for (it is the person’s now)', () => {
    const plan = decide(issue({ title: 'question', labels: ['kind/bug'] }), ctx(RULES), owned(['kind/bug']), [cmd('alice', ['kind/bug'])]);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(plan.addedByCommand).toEqual(['kind/bug']);
    expect(reasonFor(plan, 'kind/bug')).toMatchObject({ action: 'keep', rule: 'command' });
  });

  it('applies commands in order: the last one on a label wins', () => {
    const plan = decide(issue({ labels: ['x'] }), ctx(RULES), NOBODY, [cmd('alice', ['y'], ['x']), cmd('bob', ['x'], ['y'])]);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(reasonFor(plan, 'x')).toMatchObject({ action: 'keep', evidence: '/label by bob: already there' });
  });

  it('adds a label a person removed earlier when a command asks for it', () => {
    const plan = decide(issue(), ctx(RULES), owned([], ['kind/bug']), [cmd('carol', ['kind/bug'])]);
    expect(plan.add).toEqual(['kind/bug']);
  });
});

// --- exclusive scopes ------------------------------------------------------------------------------

describe('exclusive scopes', () => {
  const c = config(`
labels:
  priority/high: {title: [urgent]}
  priority/low: {title: [minor, urgent]}
  team/a/x: {title: [alpha]}
  team/a/y: {title: [alpha]}
  kind/bug: {title: [bug]}
  kind/crash: {title: [bug]}
`);
  const exclusive = ['priority/high', 'priority/low', 'priority/medium', 'team/a/x', 'team/a/y'];

  it('scopes a label up to its last slash', () => {
    expect(exclusiveScope('team/a/x', new Set(['team/a/x']))).toBe('team/a');
    expect(exclusiveScope('team/a/x', new Set())).toBeUndefined();
    expect(exclusiveScope('noscope', new Set(['noscope']))).toBeUndefined();
  });

  it('adds the first rule’s label of a scope, in config order', () => {
    const plan = decide(issue({ title: 'urgent alpha bug' }), ctx(c, [], exclusive), NOBODY, []);
    // priority/* and team/a/* are exclusive: one each; kind/* is not: both.
    expect(plan.add).toEqual(['kind/bug', 'kind/crash', 'priority/high', 'team/a/x']);
    expect(reasonFor(plan, 'priority/low')).toMatchObject({ action: 'skip', evidence: 'exclusive scope priority goes to priority/high' });
  });

  it('keeps a person’s label of the scope: the rule does not add', () => {
    const plan = decide(issue({ title: 'urgent', labels: ['priority/medium'] }), ctx(c, [], exclusive), NOBODY, []);
    expect(plan.add).toEqual([]);
    expect(plan.remove).toEqual([]);
    expect(reasonFor(plan, 'priority/high')).toMatchObject({ action: 'skip', evidence: "kept the person's label priority/medium (exclusive scope priority)" });
  });

  it('replaces its own label of the scope', () => {
    const plan = decide(issue({ title: 'urgent', labels: ['priority/medium'] }), ctx(c, [], exclusive), owned(['priority/medium']), []);
    expect(plan.add).toEqual(['priority/high']);
    expect(plan.remove).toEqual(['priority/medium']);
    expect(reasonFor(plan, 'priority/medium')).toEqual({
      label: 'priority/medium',
      action: 'remove',
      rule: 'labels.priority/high.title',
      evidence: 'replaced by priority/high in exclusive scope priority',
    });
  });

  it('lets an earlier rule take the scope from a later rule’s own label', () => {
    const plan = decide(issue({ title: 'urgent', labels: ['priority/low'] }), ctx(c, [], exclusive), owned(['priority/low']), []);
    expect(plan.add).toEqual(['priority/high']);
    expect(plan.remove).toEqual(['priority/low']);
  });

  it('lets a command’s label beat the rules', () => {
    const plan = decide(issue({ title: 'urgent' }), ctx(c, [], exclusive), NOBODY, [{ user: 'alice', add: ['priority/low'], remove: [] }]);
    expect(plan.add).toEqual(['priority/low']);
    expect(reasonFor(plan, 'priority/high')).toMatchObject({ action: 'skip', evidence: 'exclusive scope priority goes to priority/low' });
  });

  it('lets a command replace a person’s label of the scope (the person asked)', () => {
    const plan = decide(issue({ labels: ['priority/medium'] }), ctx(c, [], exclusive), NOBODY, [{ user: 'alice', add: ['priority/high'], remove: [] }]);
    expect(plan.add).toEqual(['priority/high']);
    expect(plan.remove).toEqual(['priority/medium']);
    expect(reasonFor(plan, 'priority/medium')).toEqual({
      label: 'priority/medium',
      action: 'remove',
      rule: 'command',
      evidence: 'replaced by priority/high in exclusive scope priority (/label by alice)',
    });
  });

  it('adds one label per scope when a command asks for several: the last asked', () => {
    const plan = decide(issue(), ctx(c, [], exclusive), NOBODY, [{ user: 'alice', add: ['priority/high', 'priority/low'], remove: [] }]);
    expect(plan.add).toEqual(['priority/low']);
    expect(plan.addedByCommand).toEqual(['priority/low']);
    expect(reasonFor(plan, 'priority/high')).toMatchObject({ action: 'skip', rule: 'command' });
  });
});

// --- properties ------------------------------------------------------------------------------------

const RULE_LABELS = ['kind/bug', 'kind/feature', 'area/docs', 'area/api', 'needs-info', 'prio/high', 'prio/low', 'triage'];
const SIZE_LABELS = ['size/S', 'size/M', 'size/L'];
const OTHER_LABELS = ['person/x', 'prio/medium', 'old/rule'];
const ALL_LABELS = [...RULE_LABELS, ...SIZE_LABELS, ...OTHER_LABELS];
const TEMPLATES: TemplateInfo[] = [
  { name: 'Bug', fileName: 'bug.md', headings: ['Steps', 'Version'] },
  { name: 'Feature', fileName: 'feature.yaml', headings: ['Problem', 'Steps'] },
];

const ruleArb: fc.Arbitrary<LabelRule> = fc
  .record(
    {
      match: fc.constantFrom<'any' | 'all'>('any', 'all'),
      title: fc.subarray(['bug', 'crash', '\\bdocs?\\b', 'feature'], { minLength: 1 }),
      body: fc.subarray(['stack ?trace', 'please', '^$'], { minLength: 1 }),
      files: fc.subarray(['docs/**', '**/*.md', 'api/**', 'src/**'], { minLength: 1 }),
      missingSections: fc.oneof(fc.constant<'template'>('template'), fc.subarray(['Steps', 'Version', 'Logs'], { minLength: 1 })),
    },
    { requiredKeys: ['match'] },
  )
  .filter((r) => r.title !== undefined || r.body !== undefined || r.files !== undefined || r.missingSections !== undefined)
  .map((r) => ({
    match: r.match,
    ...(r.title ? { title: r.title.map((s) => compilePattern(s)) } : {}),
    ...(r.body ? { body: r.body.map((s) => compilePattern(s)) } : {}),
    ...(r.files ? { files: r.files } : {}),
    ...(r.missingSections ? { missingSections: r.missingSections } : {}),
  }));

const configArb: fc.Arbitrary<TriageConfig> = fc
  .tuple(fc.shuffledSubarray(RULE_LABELS), fc.array(ruleArb, { minLength: RULE_LABELS.length, maxLength: RULE_LABELS.length }), fc.boolean())
  .map(([names, rules, withSize]) => ({
    labels: new Map(names.map((n, i) => [n, rules[i] as LabelRule])),
    ...(withSize ? { size: { labels: new Map([['size/S', 0], ['size/M', 10], ['size/L', 100]]), exclude: ['**/*.lock'] } } : {}),
    commands: { enabled: true, minPermission: 'write' as const, reply: false },
    version: 'test',
  }));

const subjectArb: fc.Arbitrary<SubjectState> = fc.record({
  kind: fc.constantFrom<'issue' | 'pull'>('issue', 'pull'),
  number: fc.constant(7),
  title: fc.subarray(['bug', 'crash', 'docs', 'feature', 'hello']).map((w) => w.join(' ')),
  body: fc
    .subarray(['## Steps\n1. run', '## Version\n_No response_', '### Problem\nslow', 'a stack trace', 'please help', '## Logs\n<!-- paste -->'])
    .map((parts) => parts.join('\n\n')),
  labels: fc.subarray(ALL_LABELS),
  files: fc.option(
    fc.array(
      fc.record({
        filename: fc.constantFrom('docs/a.md', 'README.md', 'api/v1.yaml', 'src/x.ts', 'yarn.lock', '.gitea/ci.yml'),
        additions: fc.integer({ min: 0, max: 80 }),
        deletions: fc.integer({ min: 0, max: 40 }),
      }),
      { maxLength: 4 },
    ),
    { nil: undefined },
  ),
});

const ownershipArb = (subject: SubjectState): fc.Arbitrary<Ownership> =>
  fc.record({ bot: fc.subarray(subject.labels), human: fc.subarray(ALL_LABELS) }).map(({ bot, human }) => ({
    botOwned: new Set(bot),
    // A label a person removed is not on the issue (unless someone added it again).
    humanRemoved: new Set(human.filter((l) => !subject.labels.includes(l) || !bot.includes(l))),
  }));

const commandsArb: fc.Arbitrary<AllowedCommand[]> = fc.array(
  fc.record({ user: fc.constantFrom('alice', 'bob'), add: fc.subarray(ALL_LABELS, { maxLength: 3 }), remove: fc.subarray(ALL_LABELS, { maxLength: 3 }) }),
  { maxLength: 3 },
);

const exclusiveArb = fc.subarray(ALL_LABELS.filter((l) => l.includes('/')));

const scenario = subjectArb.chain((subject) =>
  fc.record({ subject: fc.constant(subject), config: configArb, own: ownershipArb(subject), commands: commandsArb, exclusive: exclusiveArb }),
);

describe('properties', () => {
  it('a plan is consistent: add and remove disjoint, sorted, one add per exclusive scope, owned labels only', () => {
    fc.assert(
      fc.property(scenario, ({ subject, config: c, own, commands, exclusive }) => {
        const context = ctx(c, TEMPLATES, exclusive);
        const plan = decide(subject, context, own, commands);
        const current = new Set(subject.labels);
        expect(plan.add.filter((l) => plan.remove.includes(l))).toEqual([]);
        expect(plan.add).toEqual([...plan.add].sort());
        expect(plan.remove).toEqual([...plan.remove].sort());
        for (const l of plan.add) expect(current.has(l)).toBe(false);
        for (const l of plan.remove) expect(current.has(l)).toBe(true);
        const scopes = plan.add.map((l) => exclusiveScope(l, context.exclusiveLabels)).filter((s) => s !== undefined);
        expect(new Set(scopes).size).toBe(scopes.length);
        const asked = new Set(commands.flatMap((cm) => [...cm.add, ...cm.remove]));
        for (const l of plan.remove) {
          // Rules only ever remove their own labels; anything else goes because a person asked.
          if (!own.botOwned.has(l)) expect(reasonFor(plan, l, 'remove')?.rule).toBe('command');
        }
        for (const l of plan.add) {
          if (own.humanRemoved.has(l)) expect(asked.has(l)).toBe(true);
          expect(reasonFor(plan, l, 'add')).toBeDefined();
        }
        // The changes the applier carries out: each label of add and remove once, and whose it is.
        const writes = plan.changes.filter((ch) => !ch.recordOnly).map((ch) => `${ch.action} ${ch.label}`);
        expect(writes.sort()).toEqual([...plan.add.map((l) => `add ${l}`), ...plan.remove.map((l) => `remove ${l}`)].sort());
        for (const ch of plan.changes) {
          expect(ch.by === 'command').toBe(ch.rule === 'command');
          if (ch.by === 'command') expect(commands.map((cm) => cm.user)).toContain(ch.user);
          if (ch.recordOnly) expect(ch.action === 'add' ? plan.addedByCommand : (plan.keptOffByCommand ?? [])).toContain(ch.label);
        }
      }),
      { numRuns: 1500, seed: 7 },
    );
  });

  it('is idempotent: deciding again on the result changes nothing', () => {
    fc.assert(
      fc.property(scenario, ({ subject, config: c, own, commands, exclusive }) => {
        const context = ctx(c, TEMPLATES, exclusive);
        const first = decide(subject, context, own, commands);
        const after = apply(subject, own, first);
        // The next event (no new command), and a redelivery of the same commands.
        for (const again of [decide(after.subject, context, after.own, []), decide(after.subject, context, after.own, commands)]) {
          expect({ add: again.add, remove: again.remove }).toEqual({ add: [], remove: [] });
        }
      }),
      { numRuns: 1500, seed: 11 },
    );
  });
});
