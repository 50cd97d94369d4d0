import { performance } from 'node:perf_hooks';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parseTriageConfig } from '../../../src/triage/config.js';
import type { CompiledPattern, TriageConfig } from '../../../src/triage/types.js';

// A repository's `.gitea/triage.yml` is written by whoever can push to the repo: untrusted input
// that the service parses in-process. Whatever it holds — random bytes, broken YAML, catastrophic
// regexes, huge lists, alias bombs, deep nesting — parseTriageConfig answers `{config}` or
// `{problem}`: it never throws and never stalls, and the patterns it accepts match in linear time.

const FILE = '.gitea/triage.yml';

type Result = { config: TriageConfig } | { problem: { file: string; message: string; line?: number } };

/** Parses, asserting the contract: exactly one of config/problem, no throw, within `budgetMs`. */
function parse(text: string, budgetMs: number): Result {
  const started = performance.now();
  let result: Result | undefined;
  let thrown: unknown;
  try {
    result = parseTriageConfig(text, FILE) as Result;
  } catch (error) {
    thrown = error;
  }
  const ms = performance.now() - started;
  if (thrown !== undefined) throw new Error(`parseTriageConfig threw on ${JSON.stringify(text.slice(0, 200))}: ${String(thrown)}`);
  expect(ms).toBeLessThan(budgetMs);
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

function patternsOf(config: TriageConfig): CompiledPattern[] {
  const out: CompiledPattern[] = [];
  for (const rule of config.labels.values()) out.push(...(rule.title ?? []), ...(rule.body ?? []));
  return out;
}

const HOSTILE_20K = `${'a'.repeat(10_000)}!${'ab'.repeat(5_000)}`;
/** As long as the part of an issue body the patterns examine (PATTERN_LIMITS.maxTextLength, 64 KB). */
const HOSTILE_64K = `${'a'.repeat(32_000)}!${'ab'.repeat(16_384)}`;

/**
 * Every accepted pattern runs over a hostile text within the budget. The decision runs on the
 * service's event loop: a pattern that takes seconds there stalls the receiver too (and Gitea gives
 * a delivery 5 s). Budgets are generous for a shared CI machine; the failures they catch are 10× over.
 */
function expectLinearMatching(config: TriageConfig, budgetMs = 500, hostile = HOSTILE_20K): void {
  for (const p of patternsOf(config)) {
    const started = performance.now();
    p.match(hostile);
    const ms = performance.now() - started;
    if (ms >= budgetMs) throw new Error(`pattern ${JSON.stringify(p.source)} took ${Math.round(ms)} ms on a ${Math.round(hostile.length / 1024)} KB text`);
  }
}

const CATASTROPHIC = ['(a+)+$', '(a|aa)+$', '(x+x+)+y', '(.*a){25}', '^(\\w+\\s?)*$', '(a*)*b', '((a+)+)+$'];

describe('hostile triage configs', () => {
  it.each(CATASTROPHIC)('accepts or refuses the catastrophic regex %s, and never backtracks on it', (regex) => {
    const r = parse(`labels:\n  kind/bug:\n    title: [${JSON.stringify(regex)}]\n    body: [${JSON.stringify(regex)}]\n`, 1000);
    if ('config' in r) {
      expect(patternsOf(r.config)).toHaveLength(2);
      expectLinearMatching(r.config);
    }
  });

  // RE2 is linear in the text, but its cost also grows with the compiled program: a counted
  // repetition of 1,000 makes one match over the 64 KB a pattern examines take seconds (measured:
  // ~8-10 s for (.*a){1000}), blocking the event loop, the receiver with it. Measured on 8 KB here
  // to keep this file fast even when it fails: 100 ms on 8 KB is ~0.8 s on 64 KB.
  it.each(['(.*a){1000}', '(.*){1000}', '[a-z]{1000}x', '((.*a){30}){30}'])(
    'refuses the oversized pattern %s, or matches it within 100 ms on 8 KB',
    (regex) => {
      const r = parse(`labels:\n  kind/bug:\n    body: [${JSON.stringify(regex)}]\n`, 1000);
      if ('config' in r) expectLinearMatching(r.config, 100, HOSTILE_64K.slice(0, 8 * 1024));
    },
  );

  it('refuses what a linear-time engine cannot run (backreferences, lookaround) with a problem', () => {
    for (const regex of ['(a)\\1', '(?=a)b', '(?<!x)y']) {
      const r = parse(`labels:\n  kind/bug:\n    title: [${JSON.stringify(regex)}]\n`, 1000);
      expect('problem' in r).toBe(true);
    }
  });

  it('handles a 100,000-entry pattern list without stalling', () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `      - 'word${i}'`).join('\n');
    const r = parse(`labels:\n  kind/bug:\n    title:\n${lines}\n`, 5000);
    if ('config' in r) expectLinearMatching(r.config, 5000);
  });

  it('handles 100,000 labels without stalling', () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `  l${i}:\n    title: ['x${i}']`).join('\n');
    parse(`labels:\n${lines}\n`, 5000);
  });

  it('refuses a YAML alias bomb ("billion laughs") quickly', () => {
    const keys = 'abcdefghi';
    let text = `${keys[0]}: &${keys[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
    for (let i = 1; i < keys.length; i++) text += `${keys[i]}: &${keys[i]} [${Array(9).fill(`*${keys[i - 1]}`).join(',')}]\n`;
    const bombs = [
      `${text}labels:\n  kind/bug:\n    title: *i\n`,
      `labels:\n  kind/bug:\n    title: &t ['a','a','a','a','a','a','a','a','a','a']\n${Array.from({ length: 200 }, (_, i) => `  l${i}:\n    title: *t`).join('\n')}\n`,
    ];
    const r = parse(bombs[0]!, 1000);
    expect('problem' in r).toBe(true);
    parse(bombs[1]!, 2000);
  });

  it('refuses deeply nested YAML with a problem', () => {
    expect('problem' in parse('['.repeat(100_000), 5000)).toBe(true);
    expect('problem' in parse(`labels: ${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}`, 5000)).toBe(true);
  });

  it('does not let __proto__ keys pollute objects', () => {
    parse('labels:\n  __proto__:\n    polluted: true\n    title: ["x"]\n__proto__:\n  polluted: true\n', 1000);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers a problem, not a throw, for YAML tags and odd documents', () => {
    for (const text of ['!!binary aGVsbG8=', '--- !!js/function "function(){}"', '---\n---\n', '%YAML 1.1\n---\nlabels: {}', 'labels: !!set {a, b}', '\u0000', '\ufeff']) {
      parse(text, 1000);
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
  fc.constantFrom(...CATASTROPHIC.filter((c) => !c.includes('{')), '\\bbug\\b', 'crash', '^fix', '[a-z]+\\d*', '\\p{L}+', '(?i)x', 'a{2,5}'),
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
  it('never throws or stalls on random text (2,000 cases)', () => {
    fc.assert(
      fc.property(fc.oneof(yamlish, fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 300 })), (text) => {
        parse(text, 500);
      }),
      { numRuns: 2000, seed: 1337 },
    );
  });

  it('never throws or stalls on random near-valid configs, and accepted patterns match in linear time (600 cases)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(structured, (doc) => {
        const r = parse(stringify(doc), 500);
        if ('config' in r) {
          accepted++;
          expectLinearMatching(r.config);
        }
      }),
      { numRuns: 600, seed: 99 },
    );
    // Some random configs are valid, or the property says little about accepted ones.
    expect(accepted).toBeGreaterThan(10);
  });
});
