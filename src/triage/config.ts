import { createHash } from 'node:crypto';
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { z } from 'zod';
import { errorText } from '../errors.js';
import { compilePattern, PatternCache } from './patterns.js';
import type { CompiledPattern, ConfigLocation, ConfigProblem, LabelRule, TriageConfig } from './types.js';

/**
 * A repository's `.gitea/triage.yml`: written by whoever can push to the repo, parsed inside the
 * service. Every limit below keeps one repo's config from costing the service more than a few
 * milliseconds, and each is named in the problem reported when a config goes past it.
 */
export const CONFIG_LIMITS = {
  /** Size of the config text. */
  maxBytes: 256 * 1024,
  /** Labels named by the config (rules and size labels together). */
  maxLabels: 500,
  /** Entries of one list (`title`, `body`, `files`, `missing_sections`, `size.exclude`). */
  maxListEntries: 200,
  /**
   * Regexes in the whole config. Each one scans up to 64 KiB of a body per evaluation (~1 ms here):
   * 500 body regexes cost about half a second per issue, which is as far as one repo may go.
   */
  maxPatterns: 500,
  /**
   * YAML aliases resolved (counted the way `yaml` does: uses × the aliases inside what they point
   * to). Reusing a list a few times is fine; a "billion laughs" alias bomb is not.
   */
  maxAliasCount: 50,
  /** Nesting of YAML collections: the triage config needs 4; the parser recurses per level. */
  maxDepth: 32,
} as const;

const CONDITION_KEYS = ['title', 'body', 'files', 'missing_sections'] as const;

// --- schema ------------------------------------------------------------------------------------

const stringList = (what: string) =>
  z.preprocess(
    // A single string is a list of one.
    (v) => (typeof v === 'string' ? [v] : v),
    z
      .array(z.string({ error: `expected ${what} (a string)` }), { error: `expected ${what} or a list of them` })
      .min(1, { error: `empty list: give at least one ${what}` })
      .max(CONFIG_LIMITS.maxListEntries, {
        error: `more than ${CONFIG_LIMITS.maxListEntries} entries (limit ${CONFIG_LIMITS.maxListEntries} per list)`,
      }),
  );

const ruleSchema = z.strictObject(
  {
    match: z.enum(['any', 'all'], { error: 'expected any or all' }).optional(),
    title: stringList('a regex').optional(),
    body: stringList('a regex').optional(),
    files: stringList('a glob').optional(),
    missing_sections: z
      .union(
        [
          z.literal('template'),
          z
            .array(z.string({ error: 'expected a heading (a string)' }), { error: 'expected template or a list of headings' })
            .min(1, { error: 'empty list: give at least one heading, or template' })
            .max(CONFIG_LIMITS.maxListEntries, {
              error: `more than ${CONFIG_LIMITS.maxListEntries} entries (limit ${CONFIG_LIMITS.maxListEntries} per list)`,
            }),
        ],
        { error: 'expected template or a list of headings' },
      )
      .optional(),
    optional_sections: stringList('a heading').optional(),
  },
  { error: 'expected a mapping of conditions (title, body, files, missing_sections, match, optional_sections)' },
);

const sizeSchema = z.strictObject(
  {
    labels: z.record(
      z.string(),
      z.number({ error: 'expected a number of changed lines' }).int({ error: 'expected a whole number of changed lines' }).min(0, {
        error: 'expected a number of changed lines ≥ 0',
      }),
      { error: 'expected a mapping of label → smallest number of changed lines' },
    ),
    exclude: stringList('a glob').optional(),
  },
  { error: 'expected a mapping with labels (and exclude)' },
);

const commandsSchema = z.strictObject(
  {
    enabled: z.boolean({ error: 'expected true or false' }).default(false),
    min_permission: z.enum(['read', 'write', 'admin'], { error: 'expected read, write or admin' }).default('write'),
    reply: z.boolean({ error: 'expected true or false' }).default(false),
  },
  { error: 'expected a mapping with enabled, min_permission and reply' },
);

const topSchema = z.strictObject(
  {
    labels: z.unknown().optional(),
    size: sizeSchema.nullable().optional(),
    commands: commandsSchema.nullable().optional(),
  },
  { error: 'expected a mapping with labels, size and commands' },
);

/** The keys a mapping at `path` may hold, for an unknown key's message. */
function knownKeys(path: readonly PathSegment[]): string | undefined {
  if (path.length === 0) return 'labels, size, commands';
  if (path.length === 2 && path[0] === 'labels') return 'match, title, body, files, missing_sections, optional_sections';
  if (path.length === 1 && path[0] === 'size') return 'labels, exclude';
  if (path.length === 1 && path[0] === 'commands') return 'enabled, min_permission, reply';
  return undefined;
}

// --- locating problems in the YAML -------------------------------------------------------------

type PathSegment = string | number;

/** `labels.kind/bug.title[0]` */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out.length === 0 ? seg : `.${seg}`;
  }
  return out;
}

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private lineOf(node: { range?: [number, number, number] | null } | null | undefined): number | undefined {
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  /** The line of the node at `path`; `key: true` → the line of the last segment's key. */
  line(path: readonly PathSegment[], key = false): number | undefined {
    let node: unknown = this.doc.contents;
    let line = this.lineOf(node as Node);
    for (let i = 0; i < path.length; i++) {
      const seg = path[i] as PathSegment;
      if (isAlias(node)) {
        try {
          node = node.resolve(this.doc);
        } catch {
          return line;
        }
      }
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && scalarKey(p.key) === String(seg));
        if (!pair) return line;
        const keyLine = this.lineOf(pair.key as Node);
        if (key && i === path.length - 1) return keyLine ?? line;
        node = pair.value;
        line = this.lineOf(node as Node) ?? keyLine ?? line;
      } else if (isSeq(node) && typeof seg === 'number') {
        node = node.items[seg];
        line = this.lineOf(node as Node) ?? line;
      } else {
        return line;
      }
    }
    return line;
  }

  /** Keys of the mapping at `path`, in the file's order (JS objects put integer-like keys first). */
  keys(path: readonly PathSegment[]): string[] | undefined {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (!isMap(node)) return undefined;
      const pair = node.items.find((p) => isPair(p) && scalarKey(p.key) === String(seg));
      node = pair?.value;
    }
    if (isAlias(node)) node = node.resolve(this.doc);
    if (!isMap(node)) return undefined;
    return node.items.map((p) => scalarKey(p.key) ?? '');
  }
}

function scalarKey(key: unknown): string | undefined {
  if (isScalar(key)) return key.value === null ? '' : String(key.value);
  return undefined;
}

// --- parsing -----------------------------------------------------------------------------------

export type ParseResult = { config: TriageConfig } | { problem: ConfigProblem };

class Problem extends Error {
  constructor(
    readonly path: PathSegment[] | undefined,
    message: string,
    readonly keyLine = false,
  ) {
    super(message);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v === 'string' ? 'the text' : typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;
}

/** The value at `path` inside `data`. */
function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = Object.prototype.hasOwnProperty.call(v, seg) ? (v as Record<string | number, unknown>)[seg] : undefined;
  }
  return v;
}

/** Runs a zod schema; the first issue becomes a Problem at `base` + the issue's path. */
function check<T>(schema: z.ZodType<T>, data: unknown, base: PathSegment[]): T {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const at = [...base, ...(issue.path as PathSegment[])];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] as string;
    const path = [...at, key];
    const known = knownKeys(at);
    throw new Problem(path, `${formatPath(path)}: unknown key${known ? ` (expected ${known})` : ''}`, true);
  }
  const got = valueAt(data, issue.path as PathSegment[]);
  const message = issue.code === 'invalid_type' || issue.code === 'invalid_value' || issue.code === 'invalid_union' ? `${issue.message}, got ${describe(got)}` : issue.message;
  throw new Problem(at, `${formatPath(at) || 'the config'}: ${message}`);
}

function compileList(
  raw: unknown,
  list: string[],
  path: PathSegment[],
  compile: (s: string) => void,
  what: string,
): void {
  list.forEach((entry, i) => {
    // A single string was given as is: its path has no index.
    const at = typeof raw === 'string' ? path : [...path, i];
    if (entry.trim().length === 0) throw new Problem(at, `${formatPath(at)}: empty ${what}`);
    try {
      compile(entry);
    } catch (error) {
      throw new Problem(at, `${formatPath(at)}: ${errorText(error)}`);
    }
  });
}

/**
 * `optional_sections`: headings of a markdown template that never count (it counts every other
 * heading; a form counts its required fields and this does not apply to it). Only with
 * `missing_sections: template`.
 */
function parseOptionalSections(raw: unknown, list: string[], rule: LabelRule, path: PathSegment[]): void {
  const at = [...path, 'optional_sections'];
  if (rule.missingSections !== 'template') {
    throw new Problem(at, `${formatPath(at)}: only with missing_sections: template (a list of headings names the ones that count)`);
  }
  compileList(raw, list, at, () => undefined, 'heading');
  rule.optionalSections = list.map((h) => h.trim());
}

function parseRule(name: string, raw: unknown, globs: PatternCache): LabelRule {
  const path: PathSegment[] = ['labels', name];
  // `needs-info:` with nothing under it: reported as a rule without conditions.
  const value = check(ruleSchema, raw ?? {}, path);
  const given = CONDITION_KEYS.filter((k) => value[k] !== undefined);
  if (given.length === 0) {
    throw new Problem(path, `${formatPath(path)}: no condition (give at least one of ${CONDITION_KEYS.join(', ')})`, true);
  }
  const rawRule = isPlainObject(raw) ? raw : {};
  const rule: LabelRule = { match: value.match ?? 'any' };
  for (const key of ['title', 'body'] as const) {
    const list = value[key];
    if (!list) continue;
    const compiled: CompiledPattern[] = [];
    compileList(rawRule[key], list, [...path, key], (s) => compiled.push(compilePattern(s)), 'regex');
    rule[key] = compiled;
  }
  if (value.files) {
    compileList(rawRule.files, value.files, [...path, 'files'], (s) => globs.glob(s), 'glob');
    rule.files = value.files;
  }
  const sections = value.missing_sections;
  if (sections !== undefined) {
    if (sections === 'template') {
      rule.missingSections = 'template';
    } else {
      sections.forEach((h, i) => {
        if (h.trim().length === 0) throw new Problem([...path, 'missing_sections', i], `${formatPath([...path, 'missing_sections', i])}: empty heading`);
      });
      rule.missingSections = sections.map((h) => h.trim());
    }
  }
  if (value.optional_sections) parseOptionalSections(rawRule.optional_sections, value.optional_sections, rule, path);
  return rule;
}

function parse(text: string, file: string): ParseResult {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > CONFIG_LIMITS.maxBytes) {
    return { problem: { file, message: `the config is ${bytes} bytes (limit ${CONFIG_LIMITS.maxBytes})` } };
  }
  const depth = nestingDepth(text);
  if (depth > CONFIG_LIMITS.maxDepth) {
    return { problem: { file, message: `the config nests more than ${CONFIG_LIMITS.maxDepth} levels deep (limit ${CONFIG_LIMITS.maxDepth})` } };
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: '1.2' });
  const syntax = doc.errors[0];
  if (syntax) {
    const line = lineCounter.linePos(syntax.pos[0]).line;
    return { problem: { file, line, message: `YAML: ${firstLine(syntax.message)}` } };
  }
  const locator = new Locator(doc, lineCounter);
  // Collections or aliases as keys: `yaml` turns them into strings by serialising them, which
  // costs seconds for a few hundred nested `? ` (and the config never needs them).
  const badKey = complexKey(doc.contents);
  if (badKey) {
    const offset = badKey.range?.[0];
    return {
      problem: {
        file,
        ...(offset !== undefined ? { line: lineCounter.linePos(offset).line } : {}),
        message: 'YAML: a mapping key must be plain text (no `? …` collection keys or aliases as keys)',
      },
    };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: CONFIG_LIMITS.maxAliasCount });
  } catch (error) {
    if (error instanceof ReferenceError && /alias/i.test(error.message)) {
      return {
        problem: { file, message: `YAML: too many aliases (limit ${CONFIG_LIMITS.maxAliasCount} alias expansions; an alias bomb?)` },
      };
    }
    return { problem: { file, message: `YAML: ${error instanceof Error ? firstLine(error.message) : String(error)}` } };
  }

  try {
    return { config: build(data, text, locator) };
  } catch (error) {
    if (!(error instanceof Problem)) throw error;
    const line = error.path ? locator.line(error.path, error.keyLine) : undefined;
    const problem: ConfigProblem = { file, message: error.message };
    if (line !== undefined) problem.line = line;
    if (error.path && error.path.length > 0) problem.path = formatPath(error.path);
    return { problem };
  }
}

function build(data: unknown, text: string, locator: Locator): TriageConfig {
  // An empty file (or only comments) is a config without rules.
  const top = check(topSchema, data ?? {}, []);

  const rawLabels = top.labels ?? {};
  if (!isPlainObject(rawLabels)) {
    throw new Problem(['labels'], `labels: expected a mapping of label name → rule, got ${describe(rawLabels)}`);
  }
  const names = locator.keys(['labels']) ?? Object.keys(rawLabels);
  const sizeLabels = top.size ? Object.keys(top.size.labels) : [];
  if (names.length + sizeLabels.length > CONFIG_LIMITS.maxLabels) {
    throw new Problem(
      names.length > CONFIG_LIMITS.maxLabels ? ['labels'] : ['size', 'labels'],
      `the config names ${names.length + sizeLabels.length} labels (limit ${CONFIG_LIMITS.maxLabels})`,
    );
  }

  const labels = new Map<string, LabelRule>();
  // The globs are compiled here to check them, and kept with the config for `decide`.
  const globs = new PatternCache();
  for (const name of names) {
    if (name.trim().length === 0) throw new Problem(['labels', name], 'labels: a label name is empty', true);
    labels.set(name, parseRule(name, rawLabels[name], globs));
  }

  let patterns = 0;
  for (const rule of labels.values()) patterns += (rule.title?.length ?? 0) + (rule.body?.length ?? 0);
  if (patterns > CONFIG_LIMITS.maxPatterns) {
    throw new Problem(['labels'], `the config has ${patterns} regexes (limit ${CONFIG_LIMITS.maxPatterns} in all)`);
  }

  let size: TriageConfig['size'];
  if (top.size) {
    const order = locator.keys(['size', 'labels']) ?? sizeLabels;
    const thresholds = new Map<string, number>();
    const byValue = new Map<number, string>();
    for (const name of order) {
      const value = top.size.labels[name] as number;
      const at: PathSegment[] = ['size', 'labels', name];
      if (name.trim().length === 0) throw new Problem(at, 'size.labels: a label name is empty', true);
      if (labels.has(name)) throw new Problem(at, `${formatPath(at)}: ${name} is also a rule under labels (a label is either a size or a rule)`, true);
      const other = byValue.get(value);
      if (other !== undefined) throw new Problem(at, `${formatPath(at)}: ${other} and ${name} both start at ${value} changed lines`);
      byValue.set(value, name);
      thresholds.set(name, value);
    }
    const exclude = top.size.exclude ?? [];
    compileList(valueAt(data, ['size', 'exclude']), exclude, ['size', 'exclude'], (s) => globs.glob(s), 'glob');
    // Without size labels there is nothing to earn (and no reason to read a pull request's files).
    if (thresholds.size > 0) size = { labels: thresholds, exclude };
  }

  const commands = top.commands ?? { enabled: false, min_permission: 'write' as const, reply: false };
  const config: TriageConfig = {
    labels,
    commands: { enabled: commands.enabled, minPermission: commands.min_permission, reply: commands.reply },
    version: configVersion(text),
    locations: labelLocations(labels.keys(), size?.labels.keys() ?? [], locator),
    patterns: globs,
  };
  if (size) config.size = size;
  return config;
}

/** Where each label of the config is written (for reports about a label, e.g. one the repo lacks). */
function labelLocations(rules: Iterable<string>, sizes: Iterable<string>, locator: Locator): Map<string, ConfigLocation> {
  const locations = new Map<string, ConfigLocation>();
  const locate = (path: PathSegment[]) => {
    const line = locator.line(path, true);
    locations.set(path[path.length - 1] as string, { path: formatPath(path), ...(line !== undefined ? { line } : {}) });
  };
  for (const name of rules) locate(['labels', name]);
  for (const name of sizes) locate(['size', 'labels', name]);
  return locations;
}

/** A short hash of the config's text, recorded with every label the service adds. */
export function configVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/**
 * How deeply the text nests collections, estimated before the YAML parser sees it: flow brackets
 * (`[`, `{`) outside quotes and comments, and block indicators stacked on one line (`- - - x`).
 * Pathological nesting makes `yaml` recurse or allocate per level (100,000 `- ` exhaust the heap).
 */
function nestingDepth(text: string): number {
  let flow = 0;
  let max = 0;
  let quote: string | undefined;
  let lineStart = true;
  let stacked = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '\n') {
      lineStart = true;
      stacked = 0;
      if (quote === "'") continue; // single-quoted scalars may span lines
      continue;
    }
    if (quote) {
      if (quote === '"' && c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (lineStart) {
      // `- `, `? `, `: ` at the start of a line (after spaces) each open a level.
      if (c === ' ' || c === '\t') continue;
      if ((c === '-' || c === '?' || c === ':') && (text[i + 1] === ' ' || text[i + 1] === '\t')) {
        stacked++;
        if (stacked > max) max = stacked;
        i++;
        continue;
      }
      lineStart = false;
    }
    if (c === '#' && (i === 0 || /\s/.test(text[i - 1] as string))) {
      const nl = text.indexOf('\n', i);
      i = nl === -1 ? text.length : nl - 1;
    } else if ((c === '"' || c === "'") && (i === 0 || /[\s,[{:]/.test(text[i - 1] as string))) {
      // Only where YAML starts a quoted scalar (`a"b` is plain text, and must not hide what follows).
      quote = c;
    } else if (c === '[' || c === '{') {
      flow++;
      if (flow > max) max = flow;
    } else if (c === ']' || c === '}') {
      flow = Math.max(0, flow - 1);
    }
  }
  return max;
}

/** The first mapping key that is not a plain scalar (a `? [a, b]` key, an alias), if any. */
function complexKey(node: unknown, depth = 0): Node | undefined {
  if (depth > CONFIG_LIMITS.maxDepth * 2) return undefined;
  if (isMap(node)) {
    for (const pair of node.items) {
      if (!isScalar(pair.key) && pair.key !== null) return pair.key as Node;
      const inner = complexKey(pair.value, depth + 1);
      if (inner) return inner;
    }
  } else if (isSeq(node)) {
    for (const item of node.items) {
      const inner = complexKey(item, depth + 1);
      if (inner) return inner;
    }
  }
  return undefined;
}

/**
 * Parses and checks a triage config. Never throws for what the text holds: a config that cannot be
 * used comes back as a problem naming the file, the line when known, the key path and the reason
 * (`labels.kind/bug.titel: unknown key (expected …)`).
 */
export function parseTriageConfig(text: string, file: string): ParseResult {
  try {
    return parse(text, file);
  } catch (error) {
    // The YAML library's own limits (stack depth on pathological input) end up here.
    return { problem: { file, message: `the config could not be read: ${error instanceof Error ? firstLine(error.message) : String(error)}` } };
  }
}

/** The key path and line of `label` in the config it was parsed from (`labels.kind/bug`, `size.labels.size/S`). */
export function configLabelLocation(config: TriageConfig, label: string): ConfigLocation | undefined {
  return config.locations?.get(label);
}

/** Every label the config names, in the config's order: its rules' labels, then its size labels. */
export function configLabelNames(config: TriageConfig): string[] {
  return [...config.labels.keys(), ...(config.size ? config.size.labels.keys() : [])];
}
