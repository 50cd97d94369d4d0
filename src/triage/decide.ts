import { PatternCache, truncateEvidence } from './patterns.js';
import { markdownSections, normalizeHeading, requiredHeadings, type Section, sectionAnswered } from './templates.js';
import type { AllowedCommand, DecideContext, LabelRule, Ownership, Plan, PlannedChange, Reason, SubjectState, TemplateInfo } from './types.js';

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

function filesCondition(rule: string, globs: string[], subject: SubjectState, patterns: PatternCache): Outcome {
  // `files` is about pull requests: on an issue it does not hold.
  if (subject.kind !== 'pull') return FAILS;
  if (!subject.files) return { state: 'unknown', rule, evidence: 'changed files not known' };
  const compiled = globs.map((g) => patterns.glob(g));
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

function evaluate(label: string, rule: LabelRule, subject: SubjectState, templates: readonly TemplateInfo[], sections: BodySections, patterns: PatternCache): Outcome {
  const base = `labels.${label}`;
  const outcomes: Outcome[] = [];
  if (rule.title) outcomes.push(patternsCondition(`${base}.title`, rule.title, subject.title));
  if (rule.body) outcomes.push(patternsCondition(`${base}.body`, rule.body, subject.body));
  if (rule.files) outcomes.push(filesCondition(`${base}.files`, rule.files, subject, patterns));
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

/**
 * The size label a pull request earns: the largest threshold ≤ its changed lines (excluded files not
 * counted). `patterns`: the config's compiled globs; without it they are compiled here.
 */
export function sizeOutcome(
  subject: SubjectState,
  size: NonNullable<DecideContext['config']['size']>,
  patterns = new PatternCache(),
): { label?: string; total: number } | 'unknown' {
  if (!subject.files) return 'unknown';
  const exclude = size.exclude.map((g) => patterns.glob(g));
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

/** The last mention of each label in the commands decides it: add or remove, and who asked. */
type Asked = Map<string, { action: 'add' | 'remove'; user: string }>;

const byCommand = (user: string) => `/label by ${user}`;

/**
 * The plan as it is being decided: what to add and remove, who each change is for, and why.
 * Every change goes through `addLabel`/`removeLabel`, so the reasons and the changes the applier
 * carries out never disagree.
 */
class PlanDraft {
  readonly add = new Set<string>();
  readonly remove = new Set<string>();
  readonly addedByCommand = new Set<string>();
  readonly keptOffByCommand = new Set<string>();
  readonly reasons: Reason[] = [];
  /** Exclusive scope → the label it keeps or gets. */
  readonly claimed = new Map<string, string>();
  /** The changes to write, by label (a label is added or removed once per plan). */
  private readonly writes = new Map<string, PlannedChange>();
  /** Record-only changes of commands: a claim on a bot-owned label already there, a label kept off. */
  private readonly records: PlannedChange[] = [];

  constructor(
    readonly current: ReadonlySet<string>,
    readonly ownership: Ownership,
    private readonly exclusiveLabels: ReadonlySet<string>,
  ) {}

  scopeOf(label: string): string | undefined {
    return exclusiveScope(label, this.exclusiveLabels);
  }

  reason(label: string, action: Reason['action'], rule: string, evidence: string): void {
    this.reasons.push({ label, action, rule, evidence });
  }

  /** `user`: the commenter when a command asked for it; a rule's change is the bot's. */
  addLabel(label: string, rule: string, evidence: string, user?: string): void {
    this.add.add(label);
    this.reason(label, 'add', rule, evidence);
    // What the ownership store keeps for a command's label is who asked, not the reason's text.
    this.writes.set(label, user !== undefined ? { label, action: 'add', by: 'command', user, rule } : { label, action: 'add', by: 'rule', rule, evidence });
  }

  removeLabel(label: string, rule: string, evidence: string, user?: string): void {
    this.remove.add(label);
    this.reason(label, 'remove', rule, evidence);
    this.writes.set(label, { label, action: 'remove', by: user !== undefined ? 'command' : 'rule', ...(user !== undefined ? { user } : {}), rule, evidence });
  }

  /** A command asked for a label already there: it is the person's now (recorded if the rules owned it). */
  claimByCommand(label: string, user: string): void {
    this.addedByCommand.add(label);
    this.reason(label, 'keep', 'command', `${byCommand(user)}: already there`);
    if (this.ownership.botOwned.has(label)) {
      this.records.push({ label, action: 'add', by: 'command', user, rule: 'command', evidence: 'already there', recordOnly: true });
    }
  }

  /** A command removes a label that is not there: nothing to write, but no rule adds it later. */
  keepOffByCommand(label: string, user: string): void {
    this.keptOffByCommand.add(label);
    this.reason(label, 'skip', 'command', `${byCommand(user)}: not on the issue, kept off`);
    this.records.push({ label, action: 'remove', by: 'command', user, rule: 'command', evidence: 'not on the issue, kept off', recordOnly: true });
  }

  toPlan(): Plan {
    const add = [...this.add].sort(byCodeUnit);
    const remove = [...this.remove].sort(byCodeUnit);
    const adds = add.map((l) => this.writes.get(l)!);
    // A person's explicit choice is written (and recorded) before the rules' additions.
    const changes = [
      ...adds.filter((c) => c.by === 'command'),
      ...adds.filter((c) => c.by === 'rule'),
      ...this.records.filter((c) => c.action === 'add').sort((a, b) => byCodeUnit(a.label, b.label)),
      ...this.records.filter((c) => c.action === 'remove').sort((a, b) => byCodeUnit(a.label, b.label)),
      ...remove.map((l) => this.writes.get(l)!),
    ];
    return {
      add,
      remove,
      addedByCommand: [...this.addedByCommand].sort(byCodeUnit),
      keptOffByCommand: [...this.keptOffByCommand].sort(byCodeUnit),
      reasons: this.reasons,
      changes,
    };
  }
}

/**
 * The triage decision: which labels to add and remove on the subject, and why. Pure: no I/O, no clock.
 * It is the one place of label policy; the applier only carries out its `changes`.
 *
 * - Rules (in config order, then the size label) propose labels. A label a person removed is never
 *   re-added by a rule; a label the bot does not own is never removed by a rule; a bot-owned label
 *   whose rule no longer holds (or no longer exists) is removed.
 * - Commands (already permission-checked) apply in order after the rules and beat them: a label a
 *   command removes is not re-added, a label a command adds is not removed, in this plan. A command
 *   label already on the subject is listed in `addedByCommand` too (it is the person's now), and a
 *   command removing a label that is not there is listed in `keptOffByCommand` with a `skip` reason
 *   (`…: not on the issue, kept off`): both are record-only `changes`, or a later plan undoes them.
 * - Exclusive scopes: at most one label per scope is added. A rule never takes a scope from a label
 *   the bot does not own; a command may (the person asked). A displaced sibling goes into `remove`
 *   (Gitea drops it itself when the new label is added: models/issues/issue_label.go,
 *   `RemoveDuplicateExclusiveIssueLabels`), so the plan says whose removal it was.
 * - Applying the plan and deciding again gives an empty plan.
 *
 * Every reason names its rule (`labels.kind/bug.title`, `labels.needs-info.missing_sections`,
 * `size`, `command`, `config`) and its evidence (the matched text, the file, the missing headings,
 * `123 changed lines`, `/label by alice`). Throws only for a config not made by `parseTriageConfig`
 * (an invalid glob).
 */
export function decide(subject: SubjectState, ctx: DecideContext, ownership: Ownership, commands: readonly AllowedCommand[]): Plan {
  const draft = new PlanDraft(new Set(subject.labels), ownership, ctx.exclusiveLabels);
  const asked = askedByCommands(commands);
  applyCommands(draft, asked);
  const { candidates, sizeState } = ruleCandidates(subject, ctx, draft.current);
  const wanted = applyRules(draft, candidates, asked);
  removeUnwanted(draft, subject, ctx.config, wanted, asked, sizeState);
  return draft.toPlan();
}

function askedByCommands(commands: readonly AllowedCommand[]): Asked {
  const asked: Asked = new Map();
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
  return asked;
}

/** Commands first: they beat the rules. Of several labels asked for in one exclusive scope, the last asked wins. */
function applyCommands(draft: PlanDraft, asked: Asked): void {
  const { current, claimed } = draft;
  const commandAdds = [...asked].filter(([, a]) => a.action === 'add').reverse();
  for (const [label, { user }] of commandAdds) {
    const scope = draft.scopeOf(label);
    if (scope !== undefined) {
      const winner = claimed.get(scope);
      if (winner !== undefined) {
        draft.reason(label, 'skip', 'command', `exclusive scope ${scope}: ${winner} was asked for later (${byCommand(user)})`);
        continue;
      }
      claimed.set(scope, label);
      for (const sibling of [...current].sort(byCodeUnit)) {
        if (sibling === label || draft.scopeOf(sibling) !== scope || draft.remove.has(sibling)) continue;
        draft.removeLabel(sibling, 'command', `replaced by ${label} in exclusive scope ${scope} (${byCommand(user)})`, user);
      }
    }
    // Listed even when already there: the person asked for it, so it is theirs now (no rule removes it).
    if (current.has(label)) {
      draft.claimByCommand(label, user);
    } else {
      draft.addedByCommand.add(label);
      draft.addLabel(label, 'command', byCommand(user), user);
    }
  }
  for (const [label, { action, user }] of asked) {
    if (action !== 'remove') continue;
    if (!current.has(label)) draft.keepOffByCommand(label, user);
    else if (!draft.remove.has(label)) draft.removeLabel(label, 'command', byCommand(user), user);
  }
}

/** What the rules propose, in config order, then the size label. */
function ruleCandidates(
  subject: SubjectState,
  ctx: DecideContext,
  current: ReadonlySet<string>,
): { candidates: Candidate[]; sizeState: ReturnType<typeof sizeOutcome> | undefined } {
  const { config, templates } = ctx;
  const candidates: Candidate[] = [];
  const sections = new BodySections(subject.body);
  // A config built by hand (not by parseTriageConfig) has no compiled globs: compile them for this plan.
  const patterns = config.patterns ?? new PatternCache();
  for (const [label, rule] of config.labels) {
    const outcome = evaluate(label, rule, subject, templates, sections, patterns);
    if (outcome.state !== 'fails') candidates.push({ label, ...outcome });
  }
  let sizeState: ReturnType<typeof sizeOutcome> | undefined;
  if (config.size && subject.kind === 'pull') {
    sizeState = sizeOutcome(subject, config.size, patterns);
    if (sizeState === 'unknown') {
      // Without the files the size cannot be judged: the present size labels stay as they are.
      for (const label of config.size.labels.keys()) {
        if (current.has(label)) candidates.push({ label, state: 'unknown', rule: 'size', evidence: 'changed files not known' });
      }
    } else if (sizeState.label !== undefined) {
      candidates.push({ label: sizeState.label, state: 'holds', rule: 'size', evidence: `${sizeState.total} changed lines` });
    }
  }
  return { candidates, sizeState };
}

/** The rules' labels: kept, added, or skipped (a person's removal, a scope taken). Returns the labels the rules want. */
function applyRules(draft: PlanDraft, candidates: readonly Candidate[], asked: Asked): Set<string> {
  const wanted = new Set<string>();
  for (const c of candidates) {
    const { label } = c;
    if (asked.has(label) || wanted.has(label)) continue; // a command decided this label, or an earlier rule did
    if (draft.current.has(label)) {
      if (keepByRule(draft, c)) wanted.add(label);
      continue;
    }
    if (c.state !== 'holds') continue;
    if (draft.ownership.humanRemoved.has(label)) {
      draft.reason(label, 'skip', c.rule, 'removed by a person');
      continue;
    }
    if (!takeScopeForRule(draft, c)) continue;
    wanted.add(label);
    draft.addLabel(label, c.rule, c.evidence);
  }
  return wanted;
}

/** A rule's label already there: kept, unless an earlier label (a rule's or a command's) gets its exclusive scope. */
function keepByRule(draft: PlanDraft, c: Candidate): boolean {
  const { label } = c;
  const scope = draft.scopeOf(label);
  const winner = scope !== undefined ? draft.claimed.get(scope) : undefined;
  if (winner !== undefined && winner !== label) {
    // Only a bot-owned label goes; a command's sibling is already in `remove`.
    if (!draft.remove.has(label) && draft.ownership.botOwned.has(label)) {
      draft.removeLabel(label, c.rule, `replaced by ${winner} in exclusive scope ${scope}`);
    }
    if (draft.remove.has(label)) return false;
  }
  if (scope !== undefined && winner === undefined) draft.claimed.set(scope, label);
  draft.reason(label, 'keep', c.rule, c.evidence);
  return true;
}

/**
 * Whether a rule's new label may take its exclusive scope: not from a person's label, not from an
 * earlier winner. Displaced bot-owned siblings go into `remove`.
 */
function takeScopeForRule(draft: PlanDraft, c: Candidate): boolean {
  const { label } = c;
  const scope = draft.scopeOf(label);
  if (scope === undefined) return true;
  const winner = draft.claimed.get(scope);
  if (winner !== undefined) {
    draft.reason(label, 'skip', c.rule, `exclusive scope ${scope} goes to ${winner}`);
    return false;
  }
  const holders = [...draft.current].filter((l) => l !== label && draft.scopeOf(l) === scope && !draft.remove.has(l)).sort(byCodeUnit);
  const persons = holders.filter((l) => !draft.ownership.botOwned.has(l));
  if (persons.length > 0) {
    draft.reason(label, 'skip', c.rule, `kept the person's label ${persons[0]} (exclusive scope ${scope})`);
    return false;
  }
  for (const sibling of holders) draft.removeLabel(sibling, c.rule, `replaced by ${label} in exclusive scope ${scope}`);
  draft.claimed.set(scope, label);
  return true;
}

/** Bot-owned labels no rule wants any more are removed, with the reason they no longer hold. */
function removeUnwanted(
  draft: PlanDraft,
  subject: SubjectState,
  config: DecideContext['config'],
  wanted: ReadonlySet<string>,
  asked: Asked,
  sizeState: ReturnType<typeof sizeOutcome> | undefined,
): void {
  for (const label of [...draft.current].sort(byCodeUnit)) {
    if (!draft.ownership.botOwned.has(label) || wanted.has(label) || draft.remove.has(label) || asked.has(label)) continue;
    if (config.labels.has(label)) {
      const rule = config.labels.get(label) as LabelRule;
      draft.removeLabel(label, `labels.${label}`, rule.match === 'all' ? 'not every condition holds any more' : 'no condition holds any more');
    } else if (config.size?.labels.has(label)) {
      const now = sizeState && sizeState !== 'unknown' ? sizeState : undefined;
      const evidence = subject.kind !== 'pull' ? 'size labels are for pull requests' : `${now?.total ?? 0} changed lines${now?.label ? `: ${now.label} now` : ''}`;
      draft.removeLabel(label, 'size', evidence);
    } else {
      draft.removeLabel(label, 'config', 'no rule for this label in the config any more');
    }
  }
}
