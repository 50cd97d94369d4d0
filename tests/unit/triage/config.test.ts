import { describe, expect, it } from '@jest/globals';
import {
  CONFIG_LIMITS,
  configLabelLocation,
  configLabelNames,
  configVersion,
  parseTriageConfig,
} from '../../../src/triage/config.js';
import type { ConfigProblem, TriageConfig } from '../../../src/triage/types.js';

const FILE = '.gitea/triage.yml';

function config(text: string): TriageConfig {
  const r = parseTriageConfig(text, FILE);
  if ('problem' in r) throw new Error(`unexpected problem: ${JSON.stringify(r.problem)}`);
  return r.config;
}

function problem(text: string): ConfigProblem {
  const r = parseTriageConfig(text, FILE);
  if ('config' in r) throw new Error('expected a problem, got a config');
  expect(r.problem.file).toBe(FILE);
  return r.problem;
}

// The README's example config ("The triage config"; its comments aside): every kind of rule.
const README_EXAMPLE = `labels:
  kind/bug:                      # label name as it exists in the repo (or org)
    title: ['\\bbug\\b', 'crash']  # regexes, case-insensitive; any may match
    body:  ['stack ?trace']
  area/docs:
    files: ['docs/**', '**/*.md'] # pull requests: any changed file matches the glob
  area/api-docs:
    match: all                   # every condition below must hold
    files: ['api/**']
    title: ['\\bdocs?\\b']
  needs-info:
    missing_sections: template   # issue lacks a heading of its matching issue template
size:                            # pull requests: label by changed lines (additions+deletions)
  labels:                        # label -> smallest size that earns it
    size/XS: 0
    size/S: 10
    size/M: 100
    size/L: 500
    size/XL: 1000
  exclude: ['**/*.lock', 'vendor/**']   # files not counted (generated, vendored)
commands:
  enabled: true                  # '/label kind/bug -area/docs' in a comment
  min_permission: write          # read | write | admin, checked against Gitea
  reply: false                   # true: answer a refused command with a short comment
`;

describe('parseTriageConfig: valid configs', () => {
  it('reads the example of the design', () => {
    const c = config(README_EXAMPLE);
    expect([...c.labels.keys()]).toEqual(['kind/bug', 'area/docs', 'area/api-docs', 'needs-info']);
    const bug = c.labels.get('kind/bug');
    expect(bug?.match).toBe('any');
    expect(bug?.title?.map((p) => p.source)).toEqual(['\\bbug\\b', 'crash']);
    expect(bug?.title?.[0]?.match('A Bug!')).toBe('Bug');
    expect(bug?.body?.[0]?.match('Stack Trace:')).toBe('Stack Trace');
    expect(c.labels.get('area/docs')?.files).toEqual(['docs/**', '**/*.md']);
    expect(c.labels.get('area/api-docs')?.match).toBe('all');
    expect(c.labels.get('needs-info')?.missingSections).toBe('template');
    expect(c.size?.labels).toEqual(
      new Map([
        ['size/XS', 0],
        ['size/S', 10],
        ['size/M', 100],
        ['size/L', 500],
        ['size/XL', 1000],
      ]),
    );
    expect(c.size?.exclude).toEqual(['**/*.lock', 'vendor/**']);
    expect(c.commands).toEqual({ enabled: true, minPermission: 'write', reply: false });
    expect(c.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it.each([
    ['an empty file', ''],
    ['only comments', '# nothing yet\n'],
    ['an empty labels mapping', 'labels: {}\n'],
    ['labels with nothing under it', 'labels:\n'],
    ['a byte order mark', '\ufeff'],
  ])('accepts %s as a config without rules', (_what, text) => {
    const c = config(text);
    expect(c.labels.size).toBe(0);
    expect(c.size).toBeUndefined();
    expect(c.commands).toEqual({ enabled: false, minPermission: 'write', reply: false });
  });

  it('takes a single string where a list is expected', () => {
    const c = config('labels:\n  kind/bug:\n    title: crash\n    files: "src/**"\n');
    expect(c.labels.get('kind/bug')?.title?.map((p) => p.source)).toEqual(['crash']);
    expect(c.labels.get('kind/bug')?.files).toEqual(['src/**']);
  });

  it('takes missing_sections as a list of headings', () => {
    const c = config('labels:\n  needs-info:\n    missing_sections: ["Steps to reproduce", " Version "]\n');
    expect(c.labels.get('needs-info')?.missingSections).toEqual(['Steps to reproduce', 'Version']);
  });

  it('takes optional_sections beside missing_sections: template, a single string too', () => {
    const c = config('labels:\n  needs-info:\n    missing_sections: template\n    optional_sections: [Screenshots, " Log Gist "]\n');
    expect(c.labels.get('needs-info')?.optionalSections).toEqual(['Screenshots', 'Log Gist']);
    const one = config('labels:\n  needs-info:\n    missing_sections: template\n    optional_sections: Screenshots\n');
    expect(one.labels.get('needs-info')?.optionalSections).toEqual(['Screenshots']);
    expect(config('labels:\n  needs-info:\n    missing_sections: template\n').labels.get('needs-info')?.optionalSections).toBeUndefined();
  });

  it('keeps the labels in the order of the file, numeric names included', () => {
    const c = config("labels:\n  zeta: {title: z}\n  '2024': {title: y}\n  alpha: {title: a}\n  '7': {title: s}\n");
    expect([...c.labels.keys()]).toEqual(['zeta', '2024', 'alpha', '7']);
  });

  it('fills the commands defaults', () => {
    expect(config('commands: {enabled: true}\n').commands).toEqual({ enabled: true, minPermission: 'write', reply: false });
    expect(config('commands:\n').commands).toEqual({ enabled: false, minPermission: 'write', reply: false });
    expect(config('commands: {min_permission: admin, reply: true}\n').commands).toEqual({ enabled: false, minPermission: 'admin', reply: true });
  });

  it('drops a size section without labels (nothing to earn)', () => {
    expect(config('size:\n  labels: {}\n  exclude: ["**/*.lock"]\n').size).toBeUndefined();
  });

  it('accepts a few aliases (a list reused)', () => {
    const c = config("labels:\n  kind/bug:\n    title: &bugwords ['bug', 'crash']\n  triage:\n    body: *bugwords\n");
    expect(c.labels.get('triage')?.body?.map((p) => p.source)).toEqual(['bug', 'crash']);
  });

  it('versions a config by its text', () => {
    expect(config('labels: {}\n').version).toBe(configVersion('labels: {}\n'));
    expect(configVersion('a')).not.toBe(configVersion('b'));
  });
});

describe('parseTriageConfig: problems name the path and the line', () => {
  it.each<[string, string, { path?: string; line?: number; message: RegExp }]>([
    [
      'an unknown key in a rule',
      'labels:\n  kind/bug:\n    titel: ["bug"]\n',
      { path: 'labels.kind/bug.titel', line: 3, message: /^labels\.kind\/bug\.titel: unknown key \(expected match, title, body, files, missing_sections, optional_sections\)$/ },
    ],
    ['an unknown top-level key', 'label:\n  a: {title: x}\n', { path: 'label', line: 1, message: /^label: unknown key \(expected labels, size, commands\)$/ }],
    ['an unknown key under size', 'size:\n  labels: {s: 1}\n  excludes: []\n', { path: 'size.excludes', line: 3, message: /^size.excludes: unknown key \(expected labels, exclude\)$/ }],
    ['an unknown key under commands', 'commands:\n  enable: true\n', { path: 'commands.enable', line: 2, message: /^commands.enable: unknown key \(expected enabled, min_permission, reply\)$/ }],
    [
      'an invalid regex',
      'labels:\n  kind/bug:\n    title:\n      - ok\n      - "[unclosed"\n',
      { path: 'labels.kind/bug.title[1]', line: 5, message: /^labels\.kind\/bug\.title\[1\]: invalid regex "\[unclosed": missing closing \]/ },
    ],
    ['a single invalid regex', 'labels:\n  a:\n    body: "(?=x)"\n', { path: 'labels.a.body', line: 3, message: /lookahead and lookbehind/ }],
    ['a backreference', "labels:\n  a:\n    title: ['(a)\\1']\n", { path: 'labels.a.title[0]', line: 3, message: /backreferences/ }],
    ['an invalid glob', 'labels:\n  a:\n    files: ["docs/**", "+(a|b)"]\n', { path: 'labels.a.files[1]', line: 3, message: /extglobs/ }],
    ['an invalid exclude glob', 'size:\n  labels: {s: 0}\n  exclude:\n    - "(x)"\n', { path: 'size.exclude[0]', line: 4, message: /not glob syntax/ }],
    ['an empty regex', 'labels:\n  a:\n    title: [""]\n', { path: 'labels.a.title[0]', line: 3, message: /empty regex/ }],
    ['a rule without conditions', 'labels:\n  kind/bug:\n    match: all\n', { path: 'labels.kind/bug', line: 2, message: /^labels\.kind\/bug: no condition/ }],
    ['a rule with nothing under it', 'labels:\n  needs-info:\n  other: {title: x}\n', { path: 'labels.needs-info', line: 2, message: /no condition/ }],
    ['an empty list', 'labels:\n  a:\n    title: []\n', { path: 'labels.a.title', line: 3, message: /empty list/ }],
    ['a wrong match', 'labels:\n  a:\n    match: some\n    title: x\n', { path: 'labels.a.match', line: 3, message: /expected any or all, got the text "some"/ }],
    ['a number among regexes', 'labels:\n  a:\n    title: [x, 42]\n', { path: 'labels.a.title[1]', line: 3, message: /expected a regex \(a string\), got number 42/ }],
    ['a mapping as a regex list', 'labels:\n  a:\n    title: {x: 1}\n', { path: 'labels.a.title', line: 3, message: /expected a regex or a list of them, got a mapping/ }],
    ['a wrong missing_sections', 'labels:\n  a:\n    missing_sections: true\n', { path: 'labels.a.missing_sections', line: 3, message: /expected template or a list of headings/ }],
    ['an empty heading', 'labels:\n  a:\n    missing_sections: ["  "]\n', { path: 'labels.a.missing_sections[0]', line: 3, message: /empty heading/ }],
    [
      'optional_sections with a list of headings',
      'labels:\n  a:\n    missing_sections: [Steps]\n    optional_sections: [Logs]\n',
      { path: 'labels.a.optional_sections', line: 4, message: /^labels\.a\.optional_sections: only with missing_sections: template/ },
    ],
    ['optional_sections alone', 'labels:\n  a:\n    optional_sections: [Logs]\n', { path: 'labels.a', line: 2, message: /no condition/ }],
    [
      'an empty optional heading',
      'labels:\n  a:\n    missing_sections: template\n    optional_sections: [Logs, ""]\n',
      { path: 'labels.a.optional_sections[1]', line: 4, message: /empty heading/ },
    ],
    ['a rule that is a list', 'labels:\n  a: [x]\n', { path: 'labels.a', line: 2, message: /expected a mapping of conditions/ }],
    ['labels as a list', 'labels:\n  - a\n', { path: 'labels', line: 2, message: /expected a mapping of label name → rule, got a list/ }],
    ['a negative size', 'size:\n  labels:\n    size/S: -1\n', { path: 'size.labels.size/S', line: 3, message: /≥ 0/ }],
    ['a fractional size', 'size:\n  labels:\n    size/S: 1.5\n', { path: 'size.labels.size/S', line: 3, message: /whole number/ }],
    ['a text size', 'size:\n  labels:\n    size/S: ten\n', { path: 'size.labels.size/S', line: 3, message: /expected a number of changed lines, got the text "ten"/ }],
    ['two sizes at one threshold', 'size:\n  labels:\n    size/S: 10\n    size/M: 10\n', { path: 'size.labels.size/M', line: 4, message: /size\/S and size\/M both start at 10/ }],
    ['a size label that is also a rule', 'labels:\n  size/S: {title: x}\nsize:\n  labels:\n    size/S: 0\n', { path: 'size.labels.size/S', line: 5, message: /also a rule/ }],
    ['size without labels', 'size:\n  exclude: []\n', { path: 'size.labels', message: /expected a mapping of label → smallest number/ }],
    ['a yes that is not a boolean (YAML 1.2)', 'commands:\n  enabled: yes\n', { path: 'commands.enabled', line: 2, message: /expected true or false, got the text "yes"/ }],
    ['an unknown permission', 'commands:\n  min_permission: owner\n', { path: 'commands.min_permission', line: 2, message: /expected read, write or admin/ }],
    ['a top level list', '- labels\n', { line: 1, message: /expected a mapping with labels, size and commands, got a list/ }],
    ['a top level scalar', 'hello\n', { message: /got the text "hello"/ }],
    ['an empty label name', 'labels:\n  "": {title: x}\n', { line: 2, message: /label name is empty/ }],
    ['a merge key (not YAML 1.2)', 'labels:\n  a:\n    <<: {title: x}\n', { path: 'labels.a.<<', line: 3, message: /unknown key/ }],
  ])('%s', (_what, text, expected) => {
    const p = problem(text);
    expect(p.message).toMatch(expected.message);
    if (expected.path !== undefined) expect(p.path).toBe(expected.path);
    if (expected.line !== undefined) expect(p.line).toBe(expected.line);
  });

  it.each([
    ['a duplicate key', 'labels:\n  a: {title: x}\n  a: {title: y}\n', 3, /Map keys must be unique/],
    ['broken YAML', 'labels:\n  a: [x\n', 3, /^YAML: /],
    ['a tab indentation', 'labels:\n\ta: {title: x}\n', 2, /^YAML: /],
    ['two documents', 'labels: {}\n---\nlabels: {}\n', 2, /^YAML: /],
    ['a collection as a key', 'labels:\n  ? [a, b]\n  : {title: x}\n', 2, /mapping key must be plain text/],
  ])('reports %s at its line', (_what, text, line, message) => {
    const p = problem(text);
    expect(p.line).toBe(line);
    expect(p.message).toMatch(message);
  });
});

describe('parseTriageConfig: limits', () => {
  it('refuses a text over the size limit, naming it', () => {
    const p = problem(`# ${'x'.repeat(CONFIG_LIMITS.maxBytes)}\n`);
    expect(p.message).toMatch(/bytes \(limit 262144\)/);
  });

  it('refuses a list over the entry limit, naming it', () => {
    const list = Array.from({ length: CONFIG_LIMITS.maxListEntries + 1 }, (_, i) => `w${i}`).join(', ');
    const p = problem(`labels:\n  a:\n    title: [${list}]\n`);
    expect(p.path).toBe('labels.a.title');
    expect(p.message).toMatch(/more than 200 entries \(limit 200 per list\)/);
    // At the limit it is fine.
    const ok = Array.from({ length: CONFIG_LIMITS.maxListEntries }, (_, i) => `w${i}`).join(', ');
    expect(config(`labels:\n  a:\n    title: [${ok}]\n`).labels.get('a')?.title).toHaveLength(200);
  });

  it('refuses more labels than the limit, rules and size labels together', () => {
    const rules = Array.from({ length: 450 }, (_, i) => `  l${i}: {title: x}`).join('\n');
    const sizes = Array.from({ length: 51 }, (_, i) => `    s${i}: ${i}`).join('\n');
    const p = problem(`labels:\n${rules}\nsize:\n  labels:\n${sizes}\n`);
    expect(p.message).toMatch(/names 501 labels \(limit 500\)/);
  });

  it('refuses more regexes in all than the limit', () => {
    const rules = Array.from({ length: 3 }, (_, l) => `  l${l}:\n    body: [${Array.from({ length: 167 }, (_, i) => `w${i}`).join(', ')}]`).join('\n');
    expect(problem(`labels:\n${rules}\n`).message).toMatch(/has 501 regexes \(limit 500 in all\)/);
  });

  it('refuses an alias bomb', () => {
    const keys = 'abcdefghi';
    let text = `${keys[0]}: &${keys[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    for (let i = 1; i < keys.length; i++) text += `${keys[i]}: &${keys[i]} [${Array(9).fill(`*${keys[i - 1]}`).join(',')}]\n`;
    const p = problem(`${text}labels:\n  kind/bug:\n    title: *i\n`);
    expect(p.message).toMatch(/too many aliases \(limit 50 alias expansions; an alias bomb\?\)/);
  });

  it('refuses pathological nesting before parsing it', () => {
    expect(problem('['.repeat(10_000)).message).toMatch(/nests more than 32 levels deep \(limit 32\)/);
    expect(problem(`${'- '.repeat(50_000)}x`).message).toMatch(/nests more than 32 levels/);
    expect(problem(`labels: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}`).message).toMatch(/nests more than 32 levels/);
    // Brackets inside quotes and comments are text.
    const brackets = '\\['.repeat(40); // the regex \[\[… (literal brackets)
    expect(config(`labels:\n  a:\n    title: ['${brackets}'] # ${'{'.repeat(40)}\n`).labels.get('a')?.title?.[0]?.match('[['.repeat(20))).toBe('['.repeat(40));
  });

  it('refuses a complex regex with its path', () => {
    const p = problem("labels:\n  a:\n    body: ['(.*){100}']\n");
    expect(p.path).toBe('labels.a.body[0]');
    expect(p.message).toMatch(/too complex/);
  });
});

describe('configLabelNames and configLabelLocation', () => {
  it('lists rule labels then size labels, in the file’s order', () => {
    expect(configLabelNames(config(README_EXAMPLE))).toEqual([
      'kind/bug',
      'area/docs',
      'area/api-docs',
      'needs-info',
      'size/XS',
      'size/S',
      'size/M',
      'size/L',
      'size/XL',
    ]);
    expect(configLabelNames(config(''))).toEqual([]);
  });

  it('tells where a label is written', () => {
    const c = config(README_EXAMPLE);
    expect(configLabelLocation(c, 'needs-info')).toEqual({ path: 'labels.needs-info', line: 11 });
    expect(configLabelLocation(c, 'size/M')).toEqual({ path: 'size.labels.size/M', line: 17 });
    expect(configLabelLocation(c, 'nope')).toBeUndefined();
  });

  it('carries the locations and the compiled globs as data of the parsed config (no registry beside it)', () => {
    const c = config(README_EXAMPLE);
    // A copy knows as much as the original: nothing is looked up by the object's identity.
    const copy: TriageConfig = { ...c };
    expect(configLabelLocation(copy, 'kind/bug')).toEqual({ path: 'labels.kind/bug', line: 2 });
    // Every glob of the config (files and size.exclude) is compiled once, at parse, and kept with it.
    expect(c.patterns?.size).toBe(5);
    // Two configs do not share compiled globs.
    expect(config('labels:\n  area/docs:\n    files: [\'docs/**\']\n').patterns?.size).toBe(1);
  });
});
