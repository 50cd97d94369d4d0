import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import picomatch from 'picomatch';
import { capText, compileGlob, compilePattern, PATTERN_LIMITS, PatternCache, truncateEvidence } from '../../../src/triage/patterns.js';

describe('compilePattern', () => {
  it.each([
    // pattern, text, matched text (undefined: no match)
    ['crash', 'App CRASHES on start', 'CRASH'],
    ['\\bbug\\b', 'Found a Bug here', 'Bug'],
    ['\\bbug\\b', 'debugging the parser', undefined],
    ['\\bbug\\b', 'bug', 'bug'],
    ['stack ?trace', 'see the STACKTRACE below', 'STACKTRACE'],
    ['stack ?trace', 'see the stack trace below', 'stack trace'],
    ['^\\[bug\\]', '[BUG] login fails', '[BUG]'],
    ['^\\[bug\\]', 'about [bug] reports', undefined],
    ['é', 'CAFÉ', 'É'],
    ['\\p{Greek}+', 'Ελληνικά text', 'Ελληνικά'],
    ['(?m)^### steps$', 'intro\n### Steps\nmore', '### Steps'],
    ['^### steps$', 'intro\n### Steps\nmore', undefined],
    ['^\\s*$', '', ''],
    ['v\\d+\\.\\d+', 'since v1.22 it fails', 'v1.22'],
  ])('%s on %j → %j', (pattern, text, expected) => {
    expect(compilePattern(pattern).match(text)).toBe(expected);
  });

  it('keeps its source', () => {
    expect(compilePattern('\\bbug\\b').source).toBe('\\bbug\\b');
  });

  it.each([
    ['(a)\\1', /backreferences/],
    ['(?=a)b', /lookahead and lookbehind/],
    ['(?!a)b', /lookahead and lookbehind/],
    ['(?<=a)b', /lookahead and lookbehind/],
    ['(?<!a)b', /lookahead and lookbehind/],
    ['a++', /possessive/],
    ['(?>a)', /atomic/],
    ['[unclosed', /missing closing \]/],
    ['(open', /missing closing \)/],
    ['a{1001}', /invalid repeat count/],
    ['*a', /missing argument to repetition operator/],
    ['\\Z', /invalid escape/],
  ])('refuses %s with a clear error', (pattern, message) => {
    expect(() => compilePattern(pattern)).toThrow(message);
    expect(() => compilePattern(pattern)).toThrow(`invalid regex ${JSON.stringify(pattern)}`);
  });

  it('refuses a pattern whose RE2 program is too large, naming the limit', () => {
    expect(() => compilePattern('(.*){100}')).toThrow(/too complex \(RE2 program size \d+, limit 300\)/);
    expect(() => compilePattern('a{1000}')).toThrow(/too complex/);
    // An ordinary alternation of a dozen words is well within it.
    expect(compilePattern('\\b(crash|crashes|crashed|panic|panics|segfault|segmentation fault|stack ?trace|traceback|exception)\\b').match('it panics')).toBe(
      'panics',
    );
  });

  it('refuses a pattern longer than the limit', () => {
    expect(() => compilePattern('a'.repeat(PATTERN_LIMITS.maxSourceLength + 1))).toThrow(/characters long \(limit 1000\)/);
  });

  it.each(['(a+)+$', '(a|aa)+$', '(x+x+)+y', '^(\\w+\\s?)*$', '(a*)*b', '((a+)+)+$', '(.*a){25}'])(
    'runs the catastrophic (for backtracking engines) pattern %s over a long hostile text',
    (pattern) => {
      // Linear time: this returns at once; with a backtracking engine it would not return at all.
      const hostile = `${'a'.repeat(50_000)}!`;
      const result = compilePattern(pattern).match(hostile);
      if (pattern === '(.*a){25}') expect(result).toMatch(/^a+…?$/);
      else expect(result).toBeUndefined();
    },
  );

  it('examines only the first maxTextLength characters of a text', () => {
    const p = compilePattern('needle');
    const pad = 'x'.repeat(PATTERN_LIMITS.maxTextLength - 6);
    // Seen (its text is past the prefixes searched for evidence), and one character later not seen.
    expect(p.match(pad + 'needle')).toBe('(a match after the first 16 KiB)');
    expect(p.match(pad + 'x' + 'needle')).toBeUndefined();
  });

  it('truncates the matched text to maxEvidenceLength characters, on one line', () => {
    const m = compilePattern('a+\\s+b+').match(`${'a'.repeat(200)}\n\n${'b'.repeat(5)}`);
    expect(m).toHaveLength(PATTERN_LIMITS.maxEvidenceLength);
    expect(m?.endsWith('…')).toBe(true);
    expect(m).not.toContain('\n');
  });

  it('finds the matched text far into a body', () => {
    const text = `${'x '.repeat(3000)}it crashed\n${'y '.repeat(3000)}`;
    expect(compilePattern('crash\\w*').match(text)).toBe('crashed');
  });

  it('does not take a match cut short by a searched prefix for the real one (`$`, `\\b`)', () => {
    // `crash\b` matches `crash` at the end of the 1 KiB prefix only because the prefix ends there.
    const text = `${'x'.repeat(1019)} crashed and later a crash.`;
    expect(compilePattern('crash\\b').match(text)).toBe('crash');
    const anchored = compilePattern('end$');
    expect(anchored.match(`${'x'.repeat(1021)}end and more, the end`)).toBe('end');
  });

  it('reports a match past the searched prefixes without its text', () => {
    const text = `${'x'.repeat(20_000)} crash`;
    expect(compilePattern('crash$').match(text)).toBe('(a match after the first 16 KiB)');
    // Without an assertion on what follows, any prefix match is a real match.
    expect(compilePattern('x+').match(text)).toMatch(/^x+…$/);
  });
});

describe('capText and truncateEvidence', () => {
  it('never splits a surrogate pair', () => {
    expect(capText('ab😀c', 3)).toBe('ab');
    expect(capText('ab😀c', 4)).toBe('ab😀');
    expect(capText('abc', 10)).toBe('abc');
  });

  it('collapses whitespace and marks a cut', () => {
    expect(truncateEvidence('a\n\tb')).toBe('a b');
    expect(truncateEvidence('abcdef', 4)).toBe('abc…');
  });
});

describe('compileGlob', () => {
  it.each([
    // glob, path, matches
    ['docs/**', 'docs/guide/intro.md', true],
    ['docs/**', 'docs', true],
    ['docs/**', 'documentation/a.md', false],
    ['docs/**', 'src/docs/a.md', false],
    ['**/*.md', 'README.md', true],
    ['**/*.md', 'a/b/c/d.md', true],
    ['**/*.md', 'a/b/c/d.mdx', false],
    ['*.md', 'README.md', true],
    ['*.md', 'docs/README.md', false], // `*` does not cross `/`
    ['**', 'any/path/at/all', true],
    ['*', '.env', true], // dotfiles match (dot: true)
    ['**/*', '.github/workflows/ci.yml', true],
    ['.github/**', '.github/ISSUE_TEMPLATE/bug.yml', true],
    ['**/.env', 'config/.env', true],
    ['**/.env', '.env', true],
    ['src/**/test/*.ts', 'src/test/a.ts', true],
    ['src/**/test/*.ts', 'src/a/b/test/a.ts', true],
    ['src/**/test/*.ts', 'src/a/b/test/sub/a.ts', false],
    ['src/*/index.ts', 'src/a/index.ts', true],
    ['src/*/index.ts', 'src/a/b/index.ts', false],
    ['a/**/b', 'a/b', true],
    ['a/**/**/b', 'a/x/y/b', true],
    ['a**b', 'axxb', true],
    ['a**b', 'ax/xb', false], // `**` inside a segment is a `*`
    ['***', 'a', true],
    ['***', 'a/b', false],
    ['file?.ts', 'file1.ts', true],
    ['file?.ts', 'file10.ts', false],
    ['a?b', 'a/b', false],
    ['[abc].ts', 'b.ts', true],
    ['[abc].ts', 'd.ts', false],
    ['[a-c].ts', 'b.ts', true],
    ['[^a].ts', 'b.ts', true],
    ['[^a].ts', 'a.ts', false],
    ['[!a].ts', 'b.ts', true], // POSIX negation
    ['[!a].ts', 'a.ts', false],
    ['x[^a]y', 'x/y', false], // a negated class never matches `/`
    ['pages/[id].tsx', 'pages/[id].tsx', true], // brackets also match literally (picomatch)
    ['pages/[id].tsx', 'pages/i.tsx', true],
    ['[[:digit:]].txt', '7.txt', true],
    ['*.{md,txt}', 'notes.txt', true],
    ['*.{md,txt}', 'notes.rst', false],
    ['{docs,api}/**', 'api/v1/openapi.yaml', true],
    ['{docs/**,*.md}', 'docs/a/b', true],
    ['{a,{b,c}}.js', 'c.js', true],
    ['{a}.js', '{a}.js', true], // no comma: literal
    ['./src/*.ts', 'src/a.ts', true],
    ['\\*.md', '*.md', true],
    ['\\*.md', 'a.md', false],
    ['!docs/**', 'src/a.ts', true],
    ['!docs/**', 'docs/a.md', false],
    ['vendor/**', 'vendor/github.com/x/y.go', true],
    ['**/*.lock', 'package-lock.json', false],
    ['**/*.lock', 'sub/yarn.lock', true],
    ['Docs/**', 'docs/a.md', false], // case-sensitive, like paths
    ['a+b.md', 'a+b.md', true],
    ['a.b', 'axb', false],
  ])('%s on %s → %s', (glob, path, expected) => {
    expect(compileGlob(glob).matches(path)).toBe(expected);
  });

  it.each([
    ['', /non-empty/],
    ['+(a|b)', /extglobs such as \+\(…\) are not supported/],
    ['@(a|b)', /extglobs such as @\(…\)/],
    ['!(a)', /extglobs such as !\(…\)/],
    ['*(a)', /extglobs such as \*\(…\)/],
    ['?(a)', /extglobs such as \?\(…\)/],
    ['(a|b).md', /"\(" is not glob syntax here/],
    ['a|b', /"\|" is not glob syntax here/],
    ['file{1..3}.txt', /brace ranges such as \{1\.\.3\} are not supported/],
    ['{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}', /more than 64 alternatives/],
    ['a\\', /lone backslash/],
    ['!', /nothing to match/],
  ])('refuses %j: %s', (glob, message) => {
    expect(() => compileGlob(glob)).toThrow(message);
  });

  it('runs a glob that makes picomatch backtrack for seconds, at once', () => {
    // picomatch compiles `*a*a*a*a*a*a*a*a*b` to a backtracking RegExp: ~4 s on 40 characters here.
    const g = compileGlob('*a*a*a*a*a*a*a*a*b');
    expect(g.matches('a'.repeat(5000))).toBe(false);
    expect(compileGlob('**/a/**/a/**/a/**/a/**/b').matches('a/'.repeat(2000) + 'c')).toBe(false);
  });

  // Differential test: on well-formed globs (segments of literals, `*`, `?`, classes, braces, or a
  // whole `**`) the RE2 translation answers as picomatch with `dot: true` does.
  const segmentAtom = fc.constantFrom('a', 'b', '.', '-', '*', '?', '.md', '{a,b}', '{docs,api}', '[ab]', '[^b]', '[a-c]', 'x');
  const segment = fc.oneof(
    { weight: 1, arbitrary: fc.constant('**') },
    { weight: 4, arbitrary: fc.array(segmentAtom, { minLength: 1, maxLength: 3 }).map((a) => a.join('')) },
  );
  const glob = fc
    .tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 4 }))
    .map(([negated, segs]) => (negated ? '!' : '') + segs.join('/'))
    // picomatch reads a `**` that touches other characters as a globstar in some places; we read it as `*`.
    .filter((g) => !/\*\*\*|[^/!]\*\*|\*\*[^/]/.test(g));
  const path = fc
    .array(fc.constantFrom('a', 'b', '.a', 'ab', 'a.md', 'docs', 'api', 'x.md', '-', 'ba', 'c', '[ab]', '.github'), { minLength: 1, maxLength: 4 })
    .map((segs) => segs.join('/'));

  it('agrees with picomatch (dot: true) on well-formed globs', () => {
    fc.assert(
      fc.property(glob, path, (g, p) => {
        expect(compileGlob(g).matches(p)).toBe(picomatch(g, { dot: true })(p));
      }),
      { numRuns: 3000, seed: 20240611 },
    );
  });
});

describe('PatternCache', () => {
  it('compiles a glob once and answers like compileGlob', () => {
    const cache = new PatternCache();
    const g = cache.glob('docs/**');
    expect(cache.glob('docs/**')).toBe(g);
    expect(g.matches('docs/a/b.md')).toBe(true);
    expect(g.matches('src/a.ts')).toBe(false);
    expect(cache.size).toBe(1);
  });

  it('stays within its bound and keeps answering', () => {
    const cache = new PatternCache(2);
    cache.glob('a/*');
    cache.glob('b/*');
    expect(cache.glob('c/*').matches('c/x')).toBe(true);
    expect(cache.size).toBeLessThanOrEqual(2);
  });

  it('refuses a bad glob as compileGlob does, and caches nothing for it', () => {
    const cache = new PatternCache();
    expect(() => cache.glob('a\\')).toThrow(/lone backslash/);
    expect(cache.size).toBe(0);
  });
});
