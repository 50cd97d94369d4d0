import { cachedGlob, truncateEvidence } from './patterns.js';
import { markdownSections, normalizeHeading, requiredHeadings, type Section, sectionAnswered } from './templates.js';
import type { AllowedCommand, DecideContext, LabelRule, Ownership, Plan, Reason, SubjectState, TemplateInfo } from './types.js';

/** A changed file; `previousFilename` (Gitea's `previous_filename`) lets a rename out of a folder count for it. */
export type ChangedFile = NonNullable<SubjectState['files']>[number];

/** A condition's outcome. `unknown`: a pull request's files were not given, so `files` and size cannot be judged. */
export type Outcome = { state: 'holds'; rule: string; evidence: string } | { state: 'fails' } | { state: 'unknown'; rule: string; evidence: string };

const FAILS: Outcome = { state: 'fails' };

function quoteMatch(text: string, source: string): string {
  return `${JSON.stringify(text)} (pattern ${truncateEvidence(source, 60)})`;
}

function patternsCondition(rule: string, patterns: LabelRule['title'], text: string): Outcome {
  for (const p of patterns ?? []) {
    const m = p.match(text);
    if (m !== undefined) return { state: 'holds', rule, evidence: quoteMatch(m, p.source) };
  }
  return FAILS;
}

function filesCondition(rule: string, globs: string[], subject: SubjectState): Outcome {
  // `files` is about pull requests: on an issue it does not hold.
  if (subject.kind !== 'pull') return FAILS;
  if (!subject.files) return { state: 'unknown', rule, evidence: 'changed files not known' };
  const compiled = globs.map((g) => cachedGlob(g));
  for (const file of subject.files) {
    for (const name of file.previousFilename ? [file.filename, file.previousFilename] : [file.filename]) {
      const glob = compiled.find((g) => g.matches(name));
      if (glob) return { state: 'holds', rule, evidence: truncateEvidence(`${name} (glob ${glob.source})`) };
    }
  }
  return FAILS;
}

/** The template an issue body is held against: the one whose headings it shares most (ties: the first). */
export function matchTemplate(headings: ReadonlySet<string>, templates: readonly TemplateInfo[]): TemplateInfo | undefined {
  let best: TemplateInfo | undefined;
  let bestShared = 0;
  for (const t of templates) {
    const shared = new Set(t.headings.map(normalizeHeading).filter((h) => headings.has(h))).size;
    if (shared > bestShared) {
      best = t;
      bestShared = shared;
    }
  }
  return best;
}

/** The body's sections, scanned once per decision however many rules look at them. */
class BodySections {
  private sections: Section[] | undefined;
  constructor(private readonly body: string) {}
  get(): Section[] {
    this.sections ??= markdownSections(this.body);
    return this.sections;
  }
}

/**
 * Headings of `wanted` that the body lacks, or whose section is empty (blank, HTML comments only,
 * `_No response_` as Gitea writes for an empty form field, a bare `...`, list items without text)
 * or holds nothing but the template's own text under that heading (`placeholders`).
 */
export function missingSections(
  body: string | readonly Section[],
  wanted: readonly string[],
  placeholders: Readonly<Record<string, readonly string[]>> = {},
): string[] {
  const sections = typeof body === 'string' ? markdownSections(body) : body;
  const filled = new Map<string, boolean>();
  for (const s of sections) {
    const key = normalizeHeading(s.heading);
    filled.set(key, (filled.get(key) ?? false) || sectionAnswered(s, placeholders[key]));
  }
  const missing: string[] = [];
  const seen = new Set<string>();
  for (const heading of wanted) {
    const key = normalizeHeading(heading);
    if (key.length === 0 || seen.has(key)) continue;
    seen.add(key);
    if (filled.get(key) !== true) missing.push(heading);
  }
  return missing;
}

function sectionsCondition(
  rule: string,
  wanted: 'template' | string[],
  subject: SubjectState,
  templates: readonly TemplateInfo[],
  sections: BodySections,
  optional?: readonly string[],
): Outcome {
  // Issue templates are about issues: on a pull request the condition does not hold.
  if (subject.kind !== 'issue') return FAILS;
  let headings: readonly string[];
  let placeholders: TemplateInfo['placeholders'];
  let from = '';
  if (wanted === 'template') {
    const present = new Set(sections.get().map((s) => normalizeHeading(s.heading)));
    const template = matchTemplate(present, templates);
    // No template shares a heading with the body: nothing to hold it against.
    if (!template) return FAILS;
    headings = requiredHeadings(template, optional);
    placeholders = template.placeholders;
    from = ` (template ${JSON.stringify(template.name)})`;
  } else {
    headings = wanted;
  }
  const missing = missingSections(sections.get(), headings, placeholders);
  if (missing.length === 0) return FAILS;
  return { state: 'holds', rule, evidence: `missing or empty: ${missing.join(', ')}${from}` };
}

/** Whether a label rule holds for the subject, with the condition and evidence that say so. */
export function evaluateRule(label: string, rule: LabelRule, subject: SubjectState, templates: readonly TemplateInfo[]): Outcome {
  return evaluate(label, rule, subject, templates, new BodySections(subject.body));
}

function evaluate(label: string, rule: LabelRule, subject: SubjectState, templates: readonly TemplateInfo[], sections: BodySections): Outcome {
  const base = `labels.${label}`;
  const outcomes: Outcome[] = [];
  if (rule.title) outcomes.push(patternsCondition(`${base}.title`, rule.title, subject.title));
  if (rule.body) outcomes.push(patternsCondition(`${base}.body`, rule.body, subject.body));
  if (rule.files) outcomes.push(filesCondition(`${base}.files`, rule.files, subject));
  if (rule.missingSections) outcomes.push(sectionsCondition(`${base}.missing_sections`, rule.missingSections, subject, templates, sections, rule.optionalSections));
  if (outcomes.length === 0) return FAILS;

  if (rule.match === 'all') {
    if (outcomes.some((o) => o.state === 'fails')) return FAILS;
    const parts = outcomes as Exclude<Outcome, { state: 'fails' }>[];
    const evidence = parts.map((o) => `${o.rule.slice(base.length + 1)}: ${o.evidence}`).join('; ');
    return { state: parts.some((o) => o.state === 'unknown') ? 'unknown' : 'holds', rule: base, evidence };
  }
  const holding = outcomes.find((o) => o.state === 'holds');
  if (holding) return holding;
  return outcomes.find((o) => o.state === 'unknown') ?? FAILS;
}

/** The size label a pull request earns: the largest threshold ≤ its changed lines (excluded files not counted). */
export function sizeOutcome(subject: SubjectState, size: NonNullable<DecideContext['config']['size']>): { label?: string; total: number } | 'unknown' {
  if (!subject.files) return 'unknown';
  const exclude = size.exclude.map((g) => cachedGlob(g));
  let total = 0;
  for (const f of subject.files) {
    if (exclude.some((g) => g.matches(f.filename))) continue;
    total += Math.max(0, f.additions) + Math.max(0, f.deletions);
  }
  let label: string | undefined;
  let best = -1;
  for (const [name, threshold] of size.labels) {
    if (threshold <= total && threshold > best) {
      label = name;
      best = threshold;
    }
  }
  return label === undefined ? { total } : { label, total };
}

/** `scope/name` → `scope` (up to the last `/`) for exclusive labels; undefined otherwise. */
export function exclusiveScope(label: string, exclusive: ReadonlySet<string>): string | undefined {
  if (!exclusive.has(label)) return undefined;
  const slash = label.lastIndexOf('/');
  return slash > 0 ? label.slice(0, slash) : undefined;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Candidate {
  label: string;
  state: 'holds' | 'unknown';
  rule: string;
  evidence: string;
}

/**
 * The triage decision: which labels to add and remove on the subject, and why. Pure: no I/O, no clock.
 *
 * - Rules (in config order, then the size label) propose labels. A label a person removed is never
 *   re-added by a rule; a label the bot does not own is never removed by a rule; a bot-owned label
 *   whose rule no longer holds (or no longer exists) is removed.
 * - Commands (already permission-checked) apply in order after the rules and beat them: a label a
 *   command removes is not re-added, a label a command adds is not removed, in this plan. A command
 *   label already on the subject is listed in `addedByCommand` too (it is the person's now), and a
 *   command removing a label that is not there is listed in `keptOffByCommand` with a `skip` reason
 *   (`…: not on the issue, kept off`): the ownership store must count both as the person's, or a
 *   later plan undoes them.
 * - Exclusive scopes: at most one label per scope is added. A rule never takes a scope from a label
 *   the bot does not own; a command may (the person asked). A displaced sibling goes into `remove`.
 * - Applying the plan and deciding again gives an empty plan.
 *
 * Every reason names its rule (`labels.kind/bug.title`, `labels.needs-info.missing_sections`,
 * `size`, `command`, `config`) and its evidence (the matched text, the file, the missing headings,
 * `123 changed lines`, `/label by alice`). Throws only for a config not made by `parseTriageConfig`
 * (an invalid glob).
 */
export function decide(subject: SubjectState, ctx: DecideContext, ownership: Ownership, commands: readonly AllowedCommand[]): Plan {
  const { config, templates, exclusiveLabels } = ctx;
  const current = new Set(subject.labels);
  const add = new Set<string>();
  const remove = new Set<string>();
  const addedByCommand = new Set<string>();
  const keptOffByCommand = new Set<string>();
  const reasons: Reason[] = [];
  const claimed = new Map<string, string>(); // exclusive scope → the label it keeps or gets
  const scopeOf = (label: string) => exclusiveScope(label, exclusiveLabels);
  const reason = (label: string, action: Reason['action'], rule: string, evidence: string) =>
    reasons.push({ label, action, rule, evidence });

  // --- commands: the last mention of a label decides; they beat the rules -----------------------
  const asked = new Map<string, { action: 'add' | 'remove'; user: string }>();
  for (const c of commands) {
    for (const label of c.add) {
      asked.delete(label);
      asked.set(label, { action: 'add', user: c.user });
    }
    for (const label of c.remove) {
      asked.delete(label);
      asked.set(label, { action: 'remove', user: c.user });
    }
  }
  const byCommand = (user: string) => `/label by ${user}`;
  // Of several labels asked for in one exclusive scope, the last asked wins.
  const commandAdds = [...asked].filter(([, a]) => a.action === 'add').reverse();
  for (const [label, { user }] of commandAdds) {
    const scope = scopeOf(label);
    if (scope !== undefined) {
      const winner = claimed.get(scope);
      if (winner !== undefined) {
        reason(label, 'skip', 'command', `exclusive scope ${scope}: ${winner} was asked for later (${byCommand(user)})`);
        continue;
      }
      claimed.set(scope, label);
      for (const sibling of [...current].sort(byCodeUnit)) {
        if (sibling === label || scopeOf(sibling) !== scope || remove.has(sibling)) continue;
        remove.add(sibling);
        reason(sibling, 'remove', 'command', `replaced by ${label} in exclusive scope ${scope} (${byCommand(user)})`);
      }
    }
    // Listed even when already there: the person asked for it, so it is theirs now (no rule removes it).
    addedByCommand.add(label);
    if (current.has(label)) {
      reason(label, 'keep', 'command', `${byCommand(user)}: already there`);
    } else {
      add.add(label);
      reason(label, 'add', 'command', byCommand(user));
    }
  }
  for (const [label, { action, user }] of asked) {
    if (action !== 'remove') continue;
    if (!current.has(label)) {
      // Nothing to write, but the person wants it off: no rule adds it in this plan, and the
      // applier records it as removed by the person (so no later plan adds it either).
      keptOffByCommand.add(label);
      reason(label, 'skip', 'command', `${byCommand(user)}: not on the issue, kept off`);
    } else if (!remove.has(label)) {
      remove.add(label);
      reason(label, 'remove', 'command', byCommand(user));
    }
  }

  // --- rules, in config order, then the size label ---------------------------------------------
  const candidates: Candidate[] = [];
  const sections = new BodySections(subject.body);
  for (const [label, rule] of config.labels) {
    const outcome = evaluate(label, rule, subject, templates, sections);
    if (outcome.state !== 'fails') candidates.push({ label, ...outcome });
  }
  let sizeState: ReturnType<typeof sizeOutcome> | undefined;
  if (config.size && subject.kind === 'pull') {
    sizeState = sizeOutcome(subject, config.size);
    if (sizeState === 'unknown') {
      // Without the files the size cannot be judged: the present size labels stay as they are.
      for (const label of config.size.labels.keys()) {
        if (current.has(label)) candidates.push({ label, state: 'unknown', rule: 'size', evidence: 'changed files not known' });
      }
    } else if (sizeState.label !== undefined) {
      candidates.push({ label: sizeState.label, state: 'holds', rule: 'size', evidence: `${sizeState.total} changed lines` });
    }
  }

  const wanted = new Set<string>(); // labels the rules keep or add
  for (const c of candidates) {
    const { label } = c;
    if (asked.has(label)) continue; // a command decided this label
    if (wanted.has(label)) continue;
    const scope = scopeOf(label);
    if (current.has(label)) {
      const winner = scope !== undefined ? claimed.get(scope) : undefined;
      if (winner !== undefined && winner !== label) {
        // An earlier rule's label (or a command's) gets this scope. Only a bot-owned label goes;
        // a command's sibling is already in `remove`.
        if (!remove.has(label) && ownership.botOwned.has(label)) {
          remove.add(label);
          reason(label, 'remove', c.rule, `replaced by ${winner} in exclusive scope ${scope}`);
        }
        if (remove.has(label)) continue;
      }
      wanted.add(label);
      if (scope !== undefined && winner === undefined) claimed.set(scope, label);
      reason(label, 'keep', c.rule, c.evidence);
      continue;
    }
    if (c.state !== 'holds') continue;
    if (ownership.humanRemoved.has(label)) {
      reason(label, 'skip', c.rule, 'removed by a person');
      continue;
    }
    if (scope !== undefined) {
      const winner = claimed.get(scope);
      if (winner !== undefined) {
        reason(label, 'skip', c.rule, `exclusive scope ${scope} goes to ${winner}`);
        continue;
      }
      const holders = [...current].filter((l) => l !== label && scopeOf(l) === scope && !remove.has(l)).sort(byCodeUnit);
      const persons = holders.filter((l) => !ownership.botOwned.has(l));
      if (persons.length > 0) {
        reason(label, 'skip', c.rule, `kept the person's label ${persons[0]} (exclusive scope ${scope})`);
        continue;
      }
      for (const sibling of holders) {
        remove.add(sibling);
        reason(sibling, 'remove', c.rule, `replaced by ${label} in exclusive scope ${scope}`);
      }
      claimed.set(scope, label);
    }
    wanted.add(label);
    add.add(label);
    reason(label, 'add', c.rule, c.evidence);
  }

  // --- bot-owned labels no rule wants any more -------------------------------------------------
  for (const label of [...current].sort(byCodeUnit)) {
    if (!ownership.botOwned.has(label) || wanted.has(label) || remove.has(label) || asked.has(label)) continue;
    remove.add(label);
    if (config.labels.has(label)) {
      const rule = config.labels.get(label) as LabelRule;
      reason(label, 'remove', `labels.${label}`, rule.match === 'all' ? 'not every condition holds any more' : 'no condition holds any more');
    } else if (config.size?.labels.has(label)) {
      const now = sizeState && sizeState !== 'unknown' ? sizeState : undefined;
      const evidence = subject.kind !== 'pull' ? 'size labels are for pull requests' : `${now?.total ?? 0} changed lines${now?.label ? `: ${now.label} now` : ''}`;
      reason(label, 'remove', 'size', evidence);
    } else {
      reason(label, 'remove', 'config', 'no rule for this label in the config any more');
    }
  }

  return {
    add: [...add].sort(byCodeUnit),
    remove: [...remove].sort(byCodeUnit),
    addedByCommand: [...addedByCommand].sort(byCodeUnit),
    keptOffByCommand: [...keptOffByCommand].sort(byCodeUnit),
    reasons,
  };
}
