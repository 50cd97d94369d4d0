import { RE2JS } from 're2js';
import { errorText } from '../errors.js';
import type { CompiledPattern } from './types.js';

/**
 * Patterns and globs from a repository's triage config. The config is written by whoever can push
 * to the repo and the texts they run against by whoever can open an issue: both are untrusted, and
 * the decision runs on the service's event loop. So every match here is linear-time (RE2 semantics
 * through `re2js`): no backtracking engine ever sees a repo's pattern.
 */
export const PATTERN_LIMITS = {
  /** Longest regex or glob source accepted. */
  maxSourceLength: 1000,
  /**
   * Characters of a title or body a regex examines. RE2 is linear, but the cost still multiplies by
   * patterns × labels × evaluations, and an issue body has no useful size limit in Gitea (a pasted
   * log can be megabytes). What triage looks for (the description, the template's sections, a
   * stack trace's first lines) sits at the start of the text.
   */
  maxTextLength: 64 * 1024,
  /** Matched text recorded as evidence. */
  maxEvidenceLength: 80,
  /**
   * RE2 program size of a pattern (roughly its instruction count). Linear time is O(text × program):
   * ordinary label patterns stay under ~120 (an alternation of a dozen words is ~100), while
   * `(.*){100}` or `a{1000}` cost hundreds of milliseconds on a long body.
   */
  maxProgramSize: 300,
  /** Prefixes of the text searched for the matched text once a pattern is known to match (below). */
  evidenceWindows: [1024, 4096, 16384],
  /** A glob's `{a,b}` groups may expand to at most this many alternatives. */
  maxGlobAlternatives: 64,
} as const;

/** Cuts `text` to at most `max` UTF-16 units without splitting a surrogate pair. */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

/** Evidence as a person reads it: one line, at most `max` characters (`…` marks a cut). */
export function truncateEvidence(text: string, max: number = PATTERN_LIMITS.maxEvidenceLength): string {
  const oneLine = text.replace(/\s+/g, ' ');
  if (oneLine.length <= max) return oneLine;
  return capText(oneLine, max - 1) + '…';
}

/** Syntax that people bring from JavaScript/PCRE regexes and RE2 refuses, with what to say about it. */
const UNSUPPORTED: { test: RegExp; what: string }[] = [
  { test: /\\[1-9]/, what: 'backreferences (\\1 …) are not supported' },
  { test: /\(\?<?[=!]/, what: 'lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported' },
  { test: /\\k</, what: 'named backreferences (\\k<…>) are not supported' },
  { test: /[*+?}][+]/, what: 'possessive quantifiers (a++, a*+) are not supported' },
  { test: /\(\?>/, what: 'atomic groups ((?>…)) are not supported' },
];

/**
 * Compiles a regex of the triage config: case-insensitive, RE2 syntax, linear-time matching.
 * `match` examines at most the first `PATTERN_LIMITS.maxTextLength` characters of a text and
 * returns the matched text (at most `maxEvidenceLength` characters) or undefined.
 * @throws Error with a message that names the pattern and what is wrong with it.
 */
export function compilePattern(source: string): CompiledPattern {
  if (typeof source !== 'string') throw new Error('a pattern must be a string');
  if (source.length > PATTERN_LIMITS.maxSourceLength) {
    throw new Error(`pattern is ${source.length} characters long (limit ${PATTERN_LIMITS.maxSourceLength})`);
  }
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, RE2JS.CASE_INSENSITIVE);
  } catch (error) {
    const known = UNSUPPORTED.find((u) => u.test.test(source));
    const detail = known
      ? `${known.what}: patterns use RE2 syntax, which guarantees linear-time matching`
      : describeRe2Error(error);
    throw new Error(`invalid regex ${JSON.stringify(source)}: ${detail}`);
  }
  const size = re.programSize();
  if (size > PATTERN_LIMITS.maxProgramSize) {
    throw new Error(
      `regex ${JSON.stringify(source)} is too complex (RE2 program size ${size}, limit ${PATTERN_LIMITS.maxProgramSize}): simplify its repetitions`,
    );
  }
  // `$`, `\b`, `\B`, `\z` look at the text after a match: a match that ends where a searched
  // prefix ends might not be one in the whole text.
  const looksRight = /\$|\\[bBz]/.test(source);
  return {
    source,
    match(text: string): string | undefined {
      const input = capText(text, PATTERN_LIMITS.maxTextLength);
      // Whether it matches: RE2's DFA, fast and capture-free.
      if (!re.test(input)) return undefined;
      // What it matched: the capturing matcher is several times slower, so it searches growing
      // prefixes (a match is usually early) and gives up on the text past the last one.
      for (const size of PATTERN_LIMITS.evidenceWindows) {
        const window = size >= input.length ? input : capText(input, size);
        const m = re.matcher(window);
        if (m.find() && (window === input || !looksRight || m.end() < window.length)) return truncateEvidence(m.group() ?? '');
        if (window === input) break;
      }
      const last = PATTERN_LIMITS.evidenceWindows[PATTERN_LIMITS.evidenceWindows.length - 1] as number;
      return `(a match after the first ${last / 1024} KiB)`;
    },
  };
}

function describeRe2Error(error: unknown): string {
  if (error && typeof error === 'object' && 'getDescription' in error && typeof error.getDescription === 'function') {
    // re2js: "missing closing ]", "invalid repeat count", …; the message repeats the pattern.
    const description = String(error.getDescription());
    const message = error instanceof Error ? error.message : '';
    const at = /: `([^`]*)`$/.exec(message)?.[1];
    return at !== undefined ? `${description} at \`${at}\`` : description;
  }
  return errorText(error);
}

/** A compiled glob over a repository path (`docs/a.md`). */
export interface CompiledGlob {
  source: string;
  matches(path: string): boolean;
}

/**
 * Compiles a glob of the triage config with picomatch's syntax and its `dot: true` meaning, into an
 * RE2 regex. Why not picomatch itself: it builds backtracking JavaScript regexes, and a glob such as
 * `*a*a*a*a*a*a*a*a*b` takes seconds on a 40-character file name (polynomial backtracking) — a
 * repo's config must not be able to stall the service.
 *
 * Supported: `*` (within a segment), `**` as a whole segment (any number of segments, zero
 * included), `?`, `[abc]` `[a-z]` `[!a]` `[^a]` `[[:alpha:]]`, `{a,b}` (nested), `\` escapes, a
 * leading `!` (negation), a leading `./` (ignored). A `**` that is not a whole segment acts as `*`,
 * as in picomatch. Case-sensitive, like Gitea's paths.
 * Refused with an error: extglobs and regex groups (`+(a|b)`, `(a|b)`), brace ranges (`{1..3}`),
 * more than `maxGlobAlternatives` brace alternatives.
 * @throws Error naming the glob and the problem.
 */
export function compileGlob(glob: string): CompiledGlob {
  if (typeof glob !== 'string' || glob.length === 0) throw new Error('a glob must be a non-empty string');
  if (glob.length > PATTERN_LIMITS.maxSourceLength) {
    throw new Error(`glob is ${glob.length} characters long (limit ${PATTERN_LIMITS.maxSourceLength})`);
  }
  const fail = (what: string): never => {
    throw new Error(`invalid glob ${JSON.stringify(glob)}: ${what}`);
  };
  let rest = glob;
  let negated = false;
  while (rest.startsWith('!') && !rest.startsWith('!(')) {
    negated = !negated;
    rest = rest.slice(1);
  }
  while (rest.startsWith('./')) rest = rest.slice(2);
  if (rest.length === 0) fail('nothing to match');

  const alternatives = expandBraces(rest, fail);
  const body = alternatives.map((alt) => globToRegex(alt, fail)).join('|');
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?s:${body})$`);
  } catch (error) {
    return fail(describeRe2Error(error));
  }
  return {
    source: glob,
    matches: (path: string) => re.testExact(path) !== negated,
  };
}

/** Index just past the `]` closing a bracket expression opened at `start`, or -1. */
function classEnd(s: string, start: number): number {
  let i = start + 1;
  if (s[i] === '!' || s[i] === '^') i++;
  if (s[i] === ']') i++; // a `]` right after the opening is a literal
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '[' && s[i + 1] === ':') {
      const close = s.indexOf(':]', i + 2);
      if (close !== -1) {
        i = close + 2;
        continue;
      }
    }
    if (c === ']') return i + 1;
    i++;
  }
  return -1;
}

/** Expands `{a,b}` groups (outside brackets and escapes) into alternatives, leftmost first. */
function expandBraces(s: string, fail: (what: string) => never): string[] {
  const out: string[] = [];
  const expand = (text: string): void => {
    const group = firstBraceGroup(text, fail);
    if (!group) {
      out.push(text);
      if (out.length > PATTERN_LIMITS.maxGlobAlternatives) {
        fail(`{…} groups expand to more than ${PATTERN_LIMITS.maxGlobAlternatives} alternatives`);
      }
      return;
    }
    const prefix = text.slice(0, group.start);
    const suffix = text.slice(group.end);
    for (const alt of group.alternatives) expand(prefix + alt + suffix);
  };
  expand(s);
  return out;
}

/** The first `{…}` holding a top-level comma; `{…}` without one is literal text (as in picomatch). */
function firstBraceGroup(
  s: string,
  fail: (what: string) => never,
): { start: number; end: number; alternatives: string[] } | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      const end = classEnd(s, i);
      if (end !== -1) i = end - 1;
      continue;
    }
    if (c !== '{') continue;
    let depth = 0;
    const commas: number[] = [];
    let close = -1;
    for (let j = i; j < s.length; j++) {
      const d = s[j];
      if (d === '\\') {
        j++;
        continue;
      }
      if (d === '[') {
        const end = classEnd(s, j);
        if (end !== -1) j = end - 1;
        continue;
      }
      if (d === '{') depth++;
      else if (d === '}') {
        depth--;
        if (depth === 0) {
          close = j;
          break;
        }
      } else if (d === ',' && depth === 1) commas.push(j);
    }
    if (close === -1) return undefined; // unbalanced: the rest is literal
    const inner = s.slice(i + 1, close);
    if (commas.length === 0) {
      if (/^(-?\d+|[a-zA-Z])\.\.(-?\d+|[a-zA-Z])(\.\.-?\d+)?$/.test(inner)) {
        fail(`brace ranges such as {${inner}} are not supported: list the alternatives ({1,2,3})`);
      }
      continue; // literal `{…}`; groups inside it are still found on the next turns
    }
    const alternatives: string[] = [];
    let from = i + 1;
    for (const comma of commas) {
      alternatives.push(s.slice(from, comma));
      from = comma + 1;
    }
    alternatives.push(s.slice(from, close));
    return { start: i, end: close + 1, alternatives };
  }
  return undefined;
}

const POSIX_CLASSES = new Set(['alnum', 'alpha', 'ascii', 'blank', 'cntrl', 'digit', 'graph', 'lower', 'print', 'punct', 'space', 'upper', 'word', 'xdigit']);

function escapeRegexChar(c: string): string {
  return /[\\^$.|?*+()[\]{}\-/]/.test(c) ? `\\${c}` : c;
}

type GlobToken = { kind: 'star'; count: number } | { kind: 're'; re: string } | { kind: 'sep' };

/** One brace-free glob → an RE2 regex body (unanchored). */
function globToRegex(glob: string, fail: (what: string) => never): string {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '\\') {
      const next = glob[i + 1];
      if (next === undefined) fail('it ends with a lone backslash');
      tokens.push({ kind: 're', re: escapeRegexChar(next as string) });
      i++;
    } else if (c === '/') {
      tokens.push({ kind: 'sep' });
    } else if (c === '*') {
      let count = 1;
      while (glob[i + 1] === '*') {
        count++;
        i++;
      }
      if (glob[i + 1] === '(') fail('extglobs such as *(…) are not supported');
      tokens.push({ kind: 'star', count });
    } else if (c === '?') {
      if (glob[i + 1] === '(') fail('extglobs such as ?(…) are not supported');
      tokens.push({ kind: 're', re: '[^/]' });
    } else if (c === '[') {
      const end = classEnd(glob, i);
      if (end === -1) {
        tokens.push({ kind: 're', re: '\\[' });
      } else {
        const inner = glob.slice(i + 1, end - 1);
        const cls = bracketToRegex(inner);
        // picomatch also matches a non-negated bracket literally (`pages/[id].tsx` names a file).
        const literal = [...glob.slice(i, end)].map(escapeRegexChar).join('');
        tokens.push({ kind: 're', re: cls.negated ? cls.re : `(?:${literal}|${cls.re})` });
        i = end - 1;
      }
    } else if ((c === '+' || c === '@' || c === '!') && glob[i + 1] === '(') {
      fail(`extglobs such as ${c}(…) are not supported`);
    } else if (c === '(' || c === ')' || c === '|') {
      fail(`"${c}" is not glob syntax here (no regex groups): write {a,b} for alternatives, or \\${c} for the character`);
    } else {
      tokens.push({ kind: 're', re: escapeRegexChar(c) });
    }
  }

  // Split into segments; a segment that is one `**` run is a globstar.
  const segments: GlobToken[][] = [[]];
  for (const t of tokens) {
    if (t.kind === 'sep') segments.push([]);
    else (segments[segments.length - 1] as GlobToken[]).push(t);
  }
  // Exactly two stars (picomatch: `***` is a `*`).
  const isGlobstar = (seg: GlobToken[]) => seg.length === 1 && seg[0]?.kind === 'star' && seg[0].count === 2;
  const endsWithStar = (seg: GlobToken[] | undefined) => seg !== undefined && seg[seg.length - 1]?.kind === 'star';
  // `a/**/**/b` is `a/**/b`.
  const collapsed = segments.filter((seg, i) => !(isGlobstar(seg) && i > 0 && isGlobstar(segments[i - 1] as GlobToken[])));

  let out = '';
  let separatorDone = false;
  collapsed.forEach((seg, i) => {
    const last = i === collapsed.length - 1;
    if (isGlobstar(seg)) {
      if (collapsed.length === 1) out += '.*';
      else if (i === 0) out += '(?:.*/)?';
      // picomatch: `docs/**` also matches `docs` itself, but `*/**` and `a*/**` need a slash.
      else if (last) out += endsWithStar(collapsed[i - 1]) ? '/.*' : '(?:/.*)?';
      else out += '/(?:.*/)?';
      separatorDone = !last;
      return;
    }
    if (i > 0 && !separatorDone) out += '/';
    separatorDone = false;
    if (seg.length === 1 && seg[0]?.kind === 'star') {
      out += '[^/]+'; // a segment that is only `*` is not empty
      return;
    }
    for (const t of seg) out += t.kind === 'star' ? '[^/]*' : t.kind === 're' ? t.re : '';
  });
  return out;
}

/**
 * The inside of `[…]` → an RE2 character class that never matches `/` when negated. `[!a]` is a
 * negation as in POSIX globs and minimatch (picomatch reads it as the set `!`, `a`).
 */
function bracketToRegex(inner: string): { re: string; negated: boolean } {
  let i = 0;
  let negated = false;
  if (inner[0] === '!' || inner[0] === '^') {
    negated = true;
    i = 1;
  }
  let out = '';
  for (; i < inner.length; i++) {
    const c = inner[i] as string;
    if (c === '\\' && i + 1 < inner.length) {
      out += escapeRegexChar(inner[i + 1] as string);
      i++;
    } else if (c === '[' && inner[i + 1] === ':') {
      const close = inner.indexOf(':]', i + 2);
      const name = close === -1 ? '' : inner.slice(i + 2, close);
      if (POSIX_CLASSES.has(name)) {
        out += `[:${name}:]`;
        i = close + 1;
      } else {
        out += '\\[';
      }
    } else if (c === '-' && out.length > 0 && i + 1 < inner.length) {
      out += '-'; // a range
    } else {
      out += escapeRegexChar(c);
    }
  }
  return { re: negated ? `[^${out}/]` : `[${out}]`, negated };
}

/**
 * Compiled globs by source, owned by whoever compiles them: `parseTriageConfig` fills one with the
 * config's globs while it checks them, and `decide` reads them from it for every subject instead of
 * compiling them again. Bounded: past `max` entries it starts over.
 */
export class PatternCache {
  private readonly globs = new Map<string, CompiledGlob>();

  constructor(private readonly max = 2000) {}

  /** The compiled `glob`, compiled now on first use. @throws Error as {@link compileGlob} does. */
  glob(glob: string): CompiledGlob {
    let compiled = this.globs.get(glob);
    if (!compiled) {
      compiled = compileGlob(glob);
      if (this.globs.size >= this.max) this.globs.clear();
      this.globs.set(glob, compiled);
    }
    return compiled;
  }

  /** How many compiled globs it holds. */
  get size(): number {
    return this.globs.size;
  }
}
