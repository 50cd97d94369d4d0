import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseTriageConfig } from '../../../src/triage/config.js';
import type { CompiledPattern, TriageConfig } from '../../../src/triage/types.js';

// A repository's `.gitea/triage.yml` is written by whoever can push to the repo: untrusted input
// that the service parses in-process. Whatever it holds — random bytes, broken YAML, catastrophic
// regexes, huge lists, alias bombs, deep nesting — parseTriageConfig answers `{config}` or
// `{problem}` and never throws; what would make it or a pattern run for long (sizes, program
// complexity) is refused with a problem, and the patterns it accepts answer correctly on hostile text.
//
// No stopwatch here: how long parsing and matching take is a figure, printed by
// `node --import tsx scripts/bench/hostile-config.ts`. A backtracking engine would not finish these
// cases at all (the test timeout reports that), a linear one answers at once.

const FILE = '.gitea/triage.yml';

type Result = { config: TriageConfig } | { problem: { file: string; message: string; line?: number } };

/** Parses, asserting the contract: exactly one of config/problem, no throw. */
function parse(text: string): Result {
  let result: Result | undefined;
  try {
    result = parseTriageConfig(text, FILE) as Result;
  } catch (error) {
    throw new Error(`parseTriageConfig threw on ${JSON.stringify(text.slice(0, 200))}: ${String(error)}`);
  }
  expect(result).toBeDefined();
  const r = result!;
  expect('config' in r !== 'problem' in r).toBe(true);
  if ('problem' in r) {
    expect(r.problem.file).toBe(FILE);
    expect(typeof r.problem.message).toBe('string');
    expect(r.problem.message.length).toBeGreaterThan(0);
  }
  return r;
}

function problemOf(text: string): string {
  const r = parse(text);
  if (!('problem' in r)) throw new Error(`expected a problem for ${JSON.stringify(text.slice(0, 200))}`);
  return r.problem.message;
}

function patternsOf(config: TriageConfig): CompiledPattern[] {
  const out: CompiledPattern[] = [];
  for (const rule of config.labels.values()) out.push(...(rule.title ?? []), ...(rule.body ?? []));
  return out;
}

const HOSTILE_20K = `${'a'.repeat(10_000)}!${'ab'.repeat(5_000)}`;

/**
 * Runs every accepted pattern over a hostile text: each answers (a match or none) and does not
 * throw. The decision runs on the service's event loop, so a pattern that backtracked would stall
 * the receiver too.
 */
function runsOverHostileText(config: TriageConfig, hostile = HOSTILE_20K): void {
  for (const p of patternsOf(config)) {
    const m = p.match(hostile);
    expect(m === undefined || typeof m === 'string').toBe(true);
  }
}

/** Patterns that make a backtracking engine run for ages on HOSTILE_20K, and whether they match it. */
const CATASTROPHIC: [string, boolean][] = [
  ['(a+)+$', false], // the text ends in `b`
  ['(a|aa)+$', false],
  ['(x+x+)+y', false],
  ['(.*a){25}', true],
  ['^(\\w+\\s?)*$', false], // the `!` is neither \w nor \s
  ['(a*)*b', true],
  ['((a+)+)+$', false],
];

describe('hostile triage configs', () => {
  it.each(CATASTROPHIC)('accepts the catastrophic regex %s and answers correctly on a hostile text (matches: %s)', (regex, matches) => {
    const r = parse(`labels:\n  kind/bug:\n    title: [${JSON.stringify(regex)}]\n    body: [${JSON.stringify(regex)}]\n`);
    if (!('config' in r)) throw new Error(`refused: ${r.problem.message}`);
    const patterns = patternsOf(r.config);
    expect(patterns).toHaveLength(2);
    for (const p of patterns) expect(p.match(HOSTILE_20K) !== undefined).toBe(matches);
  });

  // RE2 is linear in the text, but its cost also grows with the compiled program: a counted
  // repetition of 1,000 makes one match over the 64 KB a pattern examines take seconds (measured:
  // ~8-10 s for (.*a){1000}, see scripts/bench/hostile-config.ts). Such programs are refused.
  it.each(['(.*a){1000}', '(.*){1000}', '[a-z]{1000}x', '((.*a){30}){30}'])('refuses the oversized pattern %s, naming the limit', (regex) => {
    expect(problemOf(`labels:\n  kind/bug:\n    body: [${JSON.stringify(regex)}]\n`)).toMatch(/is too complex \(RE2 program size \d+, limit \d+\)/);
  });

  it('refuses what a linear-time engine cannot run (backreferences, lookaround) with a problem', () => {
    for (const regex of ['(a)\\1', '(?=a)b', '(?<!x)y']) {
      expect(problemOf(`labels:\n  kind/bug:\n    title: [${JSON.stringify(regex)}]\n`)).toContain('patterns use RE2 syntax');
    }
  });

  it('refuses a 100,000-entry pattern list, and 100,000 labels, by the size of the file', () => {
    const list = Array.from({ length: 100_000 }, (_, i) => `      - 'word${i}'`).join('\n');
    expect(problemOf(`labels:\n  kind/bug:\n    title:\n${list}\n`)).toMatch(/^the config is \d+ bytes \(limit \d+\)$/);
    const labels = Array.from({ length: 100_000 }, (_, i) => `  l${i}:\n    title: ['x${i}']`).join('\n');
    expect(problemOf(`labels:\n${labels}\n`)).toMatch(/^the config is \d+ bytes \(limit \d+\)$/);
  });

  it('refuses more entries per list, and more regexes in all, than its limits', () => {
    const list = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `      - '${prefix}${i}'`).join('\n');
    expect(problemOf(`labels:\n  kind/bug:\n    title:\n${list(201, 'w')}\n`)).toMatch(/^labels\.kind\/bug\.title: more than \d+ entries \(limit \d+ per list\)$/);
    const three = ['a', 'b', 'c'].map((l) => `  ${l}:\n    title:\n${list(200, l)}`).join('\n');
    expect(problemOf(`labels:\n${three}\n`)).toMatch(/the config has 600 regexes \(limit \d+ in all\)/);
  });

  it('refuses a YAML alias bomb ("billion laughs")', () => {
    const keys = 'abcdefghi';
    let text = `${keys[0]}: &${keys[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    for (let i = 1; i < keys.length; i++) text += `${keys[i]}: &${keys[i]} [${Array(9).fill(`*${keys[i - 1]}`).join(',')}]\n`;
    const bombs = [
      `${text}labels:\n  kind/bug:\n    title: *i\n`,
      `labels:\n  kind/bug:\n    title: &t ['a','a','a','a','a','a','a','a','a','a']\n${Array.from({ length: 200 }, (_, i) => `  l${i}:\n    title: *t`).join('\n')}\n`,
    ];
    for (const bomb of bombs) expect(problemOf(bomb)).toMatch(/too many aliases \(limit \d+ alias expansions/);
  });

  it('refuses deeply nested YAML with a problem', () => {
    expect(problemOf('['.repeat(100_000))).toMatch(/nests more than \d+ levels deep/);
    expect(problemOf(`labels: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}`)).toMatch(/nests more than \d+ levels deep/);
  });

  it('does not let __proto__ keys pollute objects', () => {
    parse('labels:\n  __proto__:\n    polluted: true\n    title: ["x"]\n__proto__:\n  polluted: true\n');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers a problem, not a throw, for YAML tags and odd documents', () => {
    for (const text of ['!!binary aGVsbG8=', '--- !!js/function "function(){}"', '---\n---\n', '%YAML 1.1\n---\nlabels: {}', 'labels: !!set {a, b}', '\u0000', '\ufeff']) {
      parse(text);
    }
  });
});

// --- random configs ------------------------------------------------------------------------------

const KEYS = ['labels', 'size', 'commands', 'title', 'body', 'files', 'match', 'missing_sections', 'exclude', 'enabled', 'min_permission', 'reply', 'kind/bug', 'size/S', 'any', 'all', '<<', '__proto__', 'constructor'];
const SCALARS = ['true', 'no', '~', 'null', '0x1F', '1e309', '-1', '.inf', "'\\bbug\\b'", '"(a+)+$"', "'[unclosed'", "'**/*.md'", "'../../etc'", '&a x', '*a', '*missing', '!!str 1', '!!int x', '|', '>-', '"\\u0000"', "''", '[]', '{}', "['x', *a]", '{a: *a}', 'template', 'write', 'admin'];

/** YAML-shaped lines: keys, scalars, lists, anchors and aliases, at random indents. */
const yamlish = fc
  .array(
    fc.record({
      indent: fc.integer({ min: 0, max: 8 }),
      key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })),
      value: fc.oneof(fc.constantFrom(...SCALARS, ''), fc.string({ maxLength: 12 })),
      dash: fc.boolean(),
    }),
    { maxLength: 40 },
  )
  .map((lines) => lines.map((l) => `${' '.repeat(l.indent)}${l.dash ? '- ' : ''}${l.key}: ${l.value}`).join('\n'));

/** Mostly what a person would write, sometimes not: `good` six times as often as `bad`. */
const mostly = <A, B>(good: fc.Arbitrary<A>, bad: fc.Arbitrary<B>): fc.Arbitrary<A | B> =>
  fc.oneof({ weight: 6, arbitrary: good as fc.Arbitrary<A | B> }, { weight: 1, arbitrary: bad as fc.Arbitrary<A | B> });

const regex = mostly(
  fc.constantFrom(...CATASTROPHIC.map(([c]) => c).filter((c) => !c.includes('{')), '\\bbug\\b', 'crash', '^fix', '[a-z]+\\d*', '\\p{L}+', '(?i)x', 'a{2,5}'),
  fc.oneof(fc.constantFrom('[', '(', '\\', 'a{1000000}', '(a)\\1', '(?=a)'), fc.string({ maxLength: 12 })),
);
const glob = mostly(
  fc.constantFrom('docs/**', '**/*.md', 'src/*.ts', '{a,b}/**', '**/'.repeat(20) + '*'),
  fc.oneof(fc.constantFrom('!(a)', '{a,b', '[z-a]', '../x', ''), fc.string({ maxLength: 12 })),
);
const list = <T>(a: fc.Arbitrary<T>) => mostly(fc.array(a, { minLength: 1, maxLength: 5 }), fc.oneof(a as fc.Arbitrary<T | T[]>, fc.constant([] as T[])));
const labelName = mostly(fc.constantFrom('kind/bug', 'area/docs', 'needs-info', 'size/S', 'priority/high'), fc.string({ maxLength: 10 }));

/** Objects close to the real schema, with wrong types and unknown keys mixed in now and then. */
const structured = fc.record(
  {
    labels: fc.dictionary(
      labelName,
      fc.record(
        {
          title: list(regex),
          body: list(regex),
          files: list(glob),
          match: mostly(fc.constantFrom('any', 'all'), fc.oneof(fc.constant('some'), fc.integer())),
          missing_sections: mostly(fc.oneof(fc.constant('template'), fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 4 })), fc.boolean()),
          extra: mostly(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
        },
        { requiredKeys: [] },
      ),
      { maxKeys: 4 },
    ),
    size: fc.record(
      {
        labels: fc.dictionary(labelName, mostly(fc.integer({ min: 0, max: 5000 }), fc.oneof(fc.integer({ min: -5, max: -1 }), fc.string({ maxLength: 4 })))),
        exclude: list(glob),
      },
      { requiredKeys: ['labels'] },
    ),
    commands: fc.record(
      {
        enabled: mostly(fc.boolean(), fc.string({ maxLength: 4 })),
        min_permission: mostly(fc.constantFrom('read', 'write', 'admin'), fc.constantFrom('owner', '')),
        reply: mostly(fc.boolean(), fc.anything({ maxDepth: 1 })),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ['labels'] },
);

describe('random triage configs', () => {
  it('never throws on random text (2,000 cases)', () => {
    fc.assert(
      fc.property(fc.oneof(yamlish, fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 })), (text) => {
        parse(text);
      }),
      { numRuns: 2000, seed: 1337 },
    );
  });

  it('never throws on random near-valid configs, and accepted patterns answer on hostile text (600 cases)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(structured, (doc) => {
        const r = parse(stringify(doc));
        if ('config' in r) {
          accepted++;
          runsOverHostileText(r.config);
        }
      }),
      { numRuns: 600, seed: 99 },
    );
    // Some random configs are valid, or the property says little about accepted ones.
    expect(accepted).toBeGreaterThan(10);
  });
});
