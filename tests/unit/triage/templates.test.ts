import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Lexer } from 'marked';
import type { GiteaIssueTemplate } from '../../../src/gitea/types.js';
import {
  answerText,
  formHeadings,
  markdownHeadings,
  markdownSections,
  normalizeHeading,
  scanMarkdown,
  type Section,
  sectionAnswered,
  stripHtmlComments,
  templateInfo,
} from '../../../src/triage/templates.js';

describe('markdownHeadings', () => {
  it.each([
    ['## Description\ntext\n### Steps', ['Description', 'Steps']],
    ['# Title\n## Two\n#### Four', ['Two']], // only ## and ###
    ['```\n## in a fence\n```\n## After', ['After']],
    ['~~~md\n## in a tilde fence\n~~~\n### After', ['After']],
    ['````\n```\n## still code\n```\n````\n## Out', ['Out']], // a longer fence is closed only by as long a one
    ['```\n## unclosed fence runs to the end', []],
    ['para\n\n    ## indented code\n\n## Real', ['Real']],
    ['para\n    ## continues the paragraph', []],
    ['> ## quoted\n## Not quoted', ['Not quoted']],
    ['<!--\n## commented out\n-->\n## Shown', ['Shown']],
    ['<!-- ## inline comment -->\n## Shown', ['Shown']],
    ['Setext two\n---\n\nSetext one\n===', ['Setext two']],
    ['## Closing hashes ##', ['Closing hashes']],
    ['##No space', []],
    ['   ## Three spaces', ['Three spaces']],
    ['    ## Four spaces', []],
    ['- item\n\n  ## in the item', []],
    ['## \n## Empty one above', ['Empty one above']],
    ['## Steps:\r\n### Version\r\n', ['Steps:', 'Version']],
    ['<details>\n## inside html\n</details>\n\n## After', ['After']],
  ])('%j → %j', (markdown, expected) => {
    expect(markdownHeadings(markdown)).toEqual(expected);
  });
});

describe('normalizeHeading', () => {
  it.each([
    ['  Steps   to  reproduce  ', 'steps to reproduce'],
    ['Version:', 'version'],
    ['Version :', 'version'],
    ['**Version**', 'version'],
    ['`gitea` version', 'gitea version'],
    ['ÉTAPES', 'étapes'],
  ])('%j → %j', (heading, expected) => {
    expect(normalizeHeading(heading)).toBe(expected);
  });
});

describe('markdownSections', () => {
  const filledOf = (md: string) => Object.fromEntries(markdownSections(md).map((s) => [s.heading, s.filled]));

  it.each([
    ['### A\n\nsome text\n', true],
    ['### A\n\n_No response_\n', false],
    ['### A\n\n  _No response_  \n', false],
    ['### A\n\n<!-- describe it here -->\n', false],
    ['### A\n<!--\nmulti\nline\n-->\n', false],
    ['### A\n\ntext <!-- hint -->\n', true],
    ['### A\n\n1.\n2.\n3.\n', false], // a template's empty numbered list
    ['### A\n\n- [ ] \n', false],
    ['### A\n\n- [ ] I searched existing issues\n', true], // Gitea writes checkboxes' labels: not empty
    ['### A\n\n```\n```\n', false],
    ['### A\n\n```bash\nls\n```\n', true],
    ['### A\n\n> quoted answer\n', true],
    ['### A\n', false],
    ['### A\n### B\ntext', false],
    ['### A\n\n...\n', false], // a bare `...`: the placeholder of many templates
    ['### A\n\n  …\n', false],
    ['### A\n\n...and then it broke\n', true],
  ])('section A of %j filled: %s', (md, filled) => {
    expect(filledOf(md).A).toBe(filled);
  });

  it('counts sub-sections as the content of their parent', () => {
    const md = '## Bug\n### Steps\n1. run it\n### Expected\n_No response_\n## Other\n';
    expect(markdownSections(md)).toEqual([
      { heading: 'Bug', depth: 2, filled: true, answers: ['run it'] },
      { heading: 'Steps', depth: 3, filled: true, answers: ['run it'] },
      { heading: 'Expected', depth: 3, filled: false, answers: [] },
      { heading: 'Other', depth: 2, filled: false, answers: [] },
    ]);
  });
});

describe('answerText and sectionAnswered', () => {
  it.each([
    ['  Link to code  example: ', 'link to code example:'],
    ['1. Go to settings', 'go to settings'],
    ['- [x] I searched', 'i searched'],
    ['2.', ''],
    ['- [ ]', ''],
    ['_No response_', ''],
    ['...', ''],
    ['v1.14.3', 'v1.14.3'],
  ])('%j → %j', (line, expected) => {
    expect(answerText(line)).toBe(expected);
  });

  it('takes a section holding only the template’s own text as unanswered', () => {
    const [steps] = markdownSections('## Steps\n\n1.\n2.\n\nLink to code example:\n');
    expect(steps?.filled).toBe(true); // something is written…
    expect(sectionAnswered(steps as Section, ['link to code example:'])).toBe(false); // …but only the template's text
    const [given] = markdownSections('## Steps\n\n1. open it\n\nLink to code example:\n');
    expect(sectionAnswered(given as Section, ['link to code example:'])).toBe(true);
    expect(sectionAnswered(given as Section)).toBe(true);
  });
});

describe('stripHtmlComments', () => {
  it('drops comments, across lines too, and an unclosed one to the end', () => {
    expect(stripHtmlComments('a<!-- x -->b<!--\ny\n-->c')).toBe('abc');
    expect(stripHtmlComments('a<!-- never closed')).toBe('a');
  });
});

// Issue templates as `GET /repos/{owner}/{repo}/issue_templates` returns them (Gitea 1.25): form
// fields carry `visible`, defaulted by Gitea to ["form","content"] (["form"] for markdown fields).
const bugForm: GiteaIssueTemplate = {
  name: 'Bug report',
  about: 'Something is broken',
  file_name: '.gitea/ISSUE_TEMPLATE/bug.yaml',
  content: '',
  body: [
    { type: 'markdown', id: '0', attributes: { value: '## Thanks for the report!' }, visible: ['form'] },
    { type: 'input', id: 'version', attributes: { label: 'Gitea version' }, visible: ['form', 'content'] },
    { type: 'textarea', id: 'steps', attributes: { label: 'Steps to reproduce', render: 'bash' }, visible: ['form', 'content'] },
    { type: 'dropdown', id: 'db', attributes: { label: 'Database', options: ['SQLite', 'PostgreSQL'] }, visible: ['form', 'content'] },
    {
      type: 'checkboxes',
      id: 'terms',
      attributes: { label: 'Checks', options: [{ label: 'I searched existing issues' }] },
      visible: ['form', 'content'],
    },
  ],
};

describe('templateInfo', () => {
  it('takes a markdown template’s ## and ### headings, not those in its code blocks', () => {
    const t: GiteaIssueTemplate = {
      name: 'Feature',
      about: 'Ask for something',
      file_name: '.gitea/ISSUE_TEMPLATE/feature.md',
      content: '# Feature\n\n## Problem\n\n```md\n## Not a section\n```\n\n### Proposal\n\n#### Details\n',
      body: null,
    };
    expect(templateInfo(t)).toEqual({
      name: 'Feature',
      fileName: '.gitea/ISSUE_TEMPLATE/feature.md',
      headings: ['Problem', 'Proposal'],
      placeholders: { problem: ['## not a section'] }, // the template's own text under its heading
    });
  });

  it('takes the labels of the form fields Gitea renders as ### headings', () => {
    expect(templateInfo(bugForm).headings).toEqual(['Gitea version', 'Steps to reproduce', 'Database', 'Checks']);
  });

  it('takes a form’s required fields and each field’s placeholder and value as its own text', () => {
    const form: GiteaIssueTemplate = {
      name: 'Bug',
      file_name: '.gitea/ISSUE_TEMPLATE/bug.yaml',
      body: [
        { type: 'input', id: 'v', attributes: { label: 'Version', placeholder: 'v1.14.3', value: 'v1.14.3' }, validations: { required: true } },
        { type: 'textarea', id: 's', attributes: { label: 'Steps', placeholder: '1. Go to …\n2. Click …' }, validations: { required: true } },
        { type: 'input', id: 'l', attributes: { label: 'Log Gist' } },
        { type: 'textarea', id: 'x', attributes: { label: 'Screenshots' }, validations: { required: false } },
      ],
    };
    expect(templateInfo(form)).toEqual({
      name: 'Bug',
      fileName: '.gitea/ISSUE_TEMPLATE/bug.yaml',
      headings: ['Version', 'Steps', 'Log Gist', 'Screenshots'],
      required: ['Version', 'Steps'],
      placeholders: { version: ['v1.14.3'], steps: ['go to …', 'click …'] },
    });
  });

  it('takes a markdown template’s text under each heading as its own text, and no required list', () => {
    const t: GiteaIssueTemplate = {
      name: 'Bug',
      file_name: '.github/ISSUE_TEMPLATE/bug_report.md',
      content: '<!-- intro -->\nReact version:\n\n## Steps To Reproduce\n\n1.\n2.\n\n<!-- hint -->\n\nLink to code example:\n\n## The current behavior\n\n\n## The expected behavior\n',
    };
    expect(templateInfo(t)).toEqual({
      name: 'Bug',
      fileName: '.github/ISSUE_TEMPLATE/bug_report.md',
      headings: ['Steps To Reproduce', 'The current behavior', 'The expected behavior'],
      placeholders: { 'steps to reproduce': ['link to code example:'] },
    });
  });

  it('follows Gitea’s visibility rules: no heading for markdown fields, hidden fields or hide_label', () => {
    const body = [
      { type: 'markdown', attributes: { value: 'intro' }, visible: ['form', 'content'] },
      { type: 'input', id: 'a', attributes: { label: 'Form only' }, visible: ['form'] },
      { type: 'input', id: 'b', attributes: { label: 'Content only' }, visible: ['content'] },
      { type: 'textarea', id: 'c', attributes: { label: 'No heading', hide_label: true } },
      { type: 'input', id: 'd', attributes: { label: 'Default visibility' } },
      // Gitea omits an empty list (`omitempty`) and reads it as the default (VisibleInContent).
      { type: 'input', id: 'd2', attributes: { label: 'Empty visibility' }, visible: [] },
      { type: 'markdown', attributes: { value: 'Empty list, markdown' }, visible: [] },
      { type: 'input', id: 'e', attributes: { label: 'Closing hashes ##' } },
      { type: 'input', id: 'f', attributes: { label: 'Two\nlines' } },
      { type: 'unknown', id: 'g', attributes: { label: 'Unknown type' } },
    ] as NonNullable<GiteaIssueTemplate['body']>;
    expect(formHeadings(body)).toEqual(['Content only', 'Default visibility', 'Empty visibility', 'Closing hashes', 'Two']);
  });
});

/**
 * An issue body as Gitea writes it from a submitted form (modules/issue/template/template.go,
 * `RenderToMarkdown`): `### <label>`, a blank line, the value or `_No response_`, a blank line.
 */
function renderForm(values: Record<string, string>): string {
  let out = '';
  for (const f of bugForm.body ?? []) {
    if (f.type === 'markdown') continue;
    const label = (f.attributes as { label: string }).label;
    const value = values[f.id as string] ?? '';
    let rendered: string;
    if (f.type === 'checkboxes') rendered = '- [ ] I searched existing issues\n';
    else if (value === '') rendered = '_No response_\n';
    else if (f.type === 'textarea') rendered = '```bash\n' + value + '\n```\n';
    else rendered = value + '\n';
    out += `### ${label}\n\n${rendered}\n`;
  }
  return out;
}

describe('a body Gitea rendered from a form', () => {
  it('has every field as a section, empty ones written as _No response_', () => {
    const body = renderForm({ version: '1.22.3', steps: '', db: 'SQLite' });
    expect(markdownSections(body)).toEqual([
      { heading: 'Gitea version', depth: 3, filled: true, answers: ['1.22.3'] },
      { heading: 'Steps to reproduce', depth: 3, filled: false, answers: [] },
      { heading: 'Database', depth: 3, filled: true, answers: ['sqlite'] },
      { heading: 'Checks', depth: 3, filled: true, answers: ['i searched existing issues'] },
    ]);
    expect(markdownHeadings(body)).toEqual(templateInfo(bugForm).headings);
  });

  it('does not see headings a person typed inside a textarea rendered as code', () => {
    const body = renderForm({ version: '1.22', steps: '## not a heading\nrun gitea', db: 'SQLite' });
    expect(markdownHeadings(body)).toEqual(['Gitea version', 'Steps to reproduce', 'Database', 'Checks']);
  });
});

describe('scanMarkdown on hostile input', () => {
  // marked 18 needs seconds (setext runs, `*a` runs) or overflows its stack (deep nesting) on these.
  it.each([
    ['setext runs', 'a\n-\n'.repeat(64 * 1024)],
    ['deep quotes', '>'.repeat(256 * 1024)],
    ['deep ordered lists', '1. '.repeat(80 * 1024)],
    ['emphasis runs', '*a'.repeat(128 * 1024)],
    ['nested lists', Array.from({ length: 700 }, (_, i) => `${' '.repeat(i * 2)}- x`).join('\n')],
    ['fence runs', '```\n'.repeat(64 * 1024)],
    ['unclosed comments', '<!--\n'.repeat(64 * 1024)],
  ])('scans %s without failing', (_name, text) => {
    expect(Array.isArray(scanMarkdown(text))).toBe(true);
  });

  it('scans at most maxScanLength characters', () => {
    const body = `## Early\ntext\n${'x\n'.repeat(200 * 1024)}## Late\n`;
    expect(markdownHeadings(body)).toEqual(['Early']);
  });
});

describe('scanMarkdown agrees with marked on ordinary documents', () => {
  // Blocks people write in issues and templates; the combinations where marked departs from
  // CommonMark (lazy list continuations turned into setext headings) are left out.
  const block = fc.constantFrom(
    '## Heading A',
    '### Sub heading',
    '# Top',
    '#### Deep',
    'Some text.',
    'More text on a line',
    '_No response_',
    '```\n## fenced\n```',
    '```bash\nls -la\n```',
    '~~~\n### tilde\n~~~',
    '    indented code',
    '> quoted\n> ## quoted heading',
    '- item one\n- item two',
    '1. first\n2. second',
    '- [ ] box\n- [x] done',
    '<!-- a comment -->',
    '<!--\n## hidden\n-->',
    'Setext\n---',
    'Setext one\n===',
    '---',
    '## Closing ##',
    '<details>\n<summary>More</summary>\n</details>',
  );
  const doc = fc.array(fc.tuple(block, fc.constantFrom('\n', '\n\n')), { minLength: 1, maxLength: 12 }).map((parts) => parts.map(([b, sep]) => b + sep).join(''));

  it('finds the same top-level headings', () => {
    fc.assert(
      fc.property(doc, (markdown) => {
        const theirs = new Lexer()
          .lex(markdown)
          .filter((t) => t.type === 'heading')
          .map((t) => `${(t as { depth: number }).depth}:${(t as { text: string }).text.replace(/\s+/g, ' ')}`);
        const mine = scanMarkdown(markdown)
          .filter((b) => b.kind === 'heading')
          .map((b) => `${b.depth}:${(b.text ?? '').replace(/\s+/g, ' ')}`);
        expect(mine).toEqual(theirs);
      }),
      { numRuns: 2000, seed: 42 },
    );
  });
});
