/**
 * The triage decision's inputs and output. `decide` (in `decide.ts`) is a pure function of these:
 * no I/O, no clock.
 */
import type { PatternCache } from './patterns.js';

/** A list of regexes compiled with a linear-time engine (RE2 semantics): a repo's config is untrusted. */
export interface CompiledPattern {
  source: string;
  /** Returns the matched text, or undefined. */
  match(text: string): string | undefined;
}

export interface LabelRule {
  /** `any` (default): one condition holding is enough; `all`: every condition given must hold. */
  match: 'any' | 'all';
  title?: CompiledPattern[];
  body?: CompiledPattern[];
  /** Globs over a pull request's changed files (picomatch, dotfiles included). */
  files?: string[];
  /** `template`: the headings of the issue's matching template; or an explicit list of headings. */
  missingSections?: 'template' | string[];
  /** With `missingSections: 'template'`: headings of a markdown template that never count (`optional_sections`). */
  optionalSections?: string[];
}

export interface TriageConfig {
  /** Label name (as it exists in the repo or org) → its rule, in the config's order. */
  labels: Map<string, LabelRule>;
  size?: {
    /** Label → smallest size (additions + deletions) that earns it. */
    labels: Map<string, number>;
    exclude: string[];
  };
  commands: { enabled: boolean; minPermission: 'read' | 'write' | 'admin'; reply: boolean };
  /** A short hash of the config's source text: recorded with every label the service adds. */
  version: string;
  /**
   * Where each label is written in the config's text (`labels.kind/bug`, `size.labels.size/S`, and
   * the line), for reports about a label; set by `parseTriageConfig` (see `configLabelLocation`).
   */
  locations?: ReadonlyMap<string, ConfigLocation>;
  /** The config's globs, compiled once by `parseTriageConfig`; absent on a config built by hand. */
  patterns?: PatternCache;
}

/** Where a label is written in a triage config: its key path and, when known, its line. */
export interface ConfigLocation {
  path: string;
  line?: number;
}

/** A triage config that could not be used: reported once per repo (cached), the issue is left alone. */
export interface ConfigProblem {
  /** The file, e.g. `.gitea/triage.yml`. */
  file: string;
  /** Line in the file when known. */
  line?: number;
  /** Key path, e.g. `labels.kind/bug.title[0]`. */
  path?: string;
  message: string;
}

/**
 * An issue template as Gitea's API serves it (`GET /repos/{owner}/{repo}/issue_templates`, Gitea's
 * `api.IssueTemplate` in modules/structs/issue.go), only the fields triage reads. Declared here so
 * the pure part needs nothing from `gitea/`; the client's `GiteaIssueTemplate` fits it.
 */
export interface IssueTemplateSource {
  name: string;
  file_name: string;
  /** Markdown template: the text after the front matter. */
  content?: string;
  /** YAML issue form: its fields (`type`, `attributes.label`, `visible`, `validations.required`). */
  body?: { type: string; attributes?: Record<string, unknown>; visible?: string[]; validations?: Record<string, unknown> }[] | null;
}

/** An issue template reduced to what `missing_sections: template` needs. */
export interface TemplateInfo {
  name: string;
  fileName: string;
  /** `##`/`###` headings of a markdown template, or the field labels of a YAML form; in order. */
  headings: string[];
  /** A form's fields with `validations.required: true`; absent for a markdown template (every heading counts). */
  required?: string[];
  /** Per heading (as `normalizeHeading` gives it): the template's own text under it, which answers nothing. */
  placeholders?: Record<string, string[]>;
}

/** The issue or pull request as it is now (the payload's newest state plus re-read labels). */
export interface SubjectState {
  kind: 'issue' | 'pull';
  number: number;
  title: string;
  body: string;
  /** Label names currently on it. */
  labels: string[];
  /**
   * Pull requests: every changed file (all pages). A renamed file has its old name in
   * `previousFilename` (Gitea's `previous_filename`): moving a file out of `docs/` still touches docs.
   */
  files?: { filename: string; additions: number; deletions: number; previousFilename?: string }[];
}

/** Who owns which label of this issue, from the ownership records. */
export interface Ownership {
  /** Labels the service added under a rule and that are still its own. */
  botOwned: ReadonlySet<string>;
  /** Labels a person removed: never re-added by a rule. */
  humanRemoved: ReadonlySet<string>;
}

/** A `/label` command already checked against the commenter's permission. */
export interface AllowedCommand {
  user: string;
  add: string[];
  remove: string[];
}

export interface Reason {
  label: string;
  action: 'add' | 'remove' | 'keep' | 'skip';
  /** `labels.kind/bug.title`, `size`, `command`, … */
  rule: string;
  /** The matched text, the file, the missing headings, the size, the command's author… */
  evidence: string;
}

/**
 * One change of a plan as the applier carries it out: the label, whose change it is, and what the
 * ownership store keeps about it. The applier writes it (by label id) and records it; it decides nothing.
 */
export interface PlannedChange {
  label: string;
  action: 'add' | 'remove';
  /** `rule`: the service's (recorded with the bot's login, bot-owned while present); `command`: the person's. */
  by: 'rule' | 'command';
  /** The commenter whose `/label` asked for it (`by: 'command'`). */
  user?: string;
  /** The rule recorded with it: `labels.kind/bug.title`, `size`, `config`, `command`. */
  rule: string;
  /** The evidence recorded with it (the reason's; none for a command's addition). */
  evidence?: string;
  /**
   * Nothing to write, only to record: a command asking for a bot-owned label already there (the
   * person's now), or a command removing a label that is not there (kept off: no rule adds it later).
   */
  recordOnly?: true;
}

/** What to change, and why. `add` and `remove` never overlap; `add` holds at most one label per exclusive scope. */
export interface Plan {
  add: string[];
  remove: string[];
  /** Labels added by command: owned by the person, not by the rules. */
  addedByCommand: string[];
  /**
   * Labels a command removes that are not on the subject: nothing to write, but the person wants
   * them off, so the applier records them as removed by that person (no later rule adds them).
   * Optional for plans made elsewhere; `decide` always sets it.
   */
  keptOffByCommand?: string[];
  reasons: Reason[];
  /**
   * What the applier carries out, in order: the additions (commands' first), the record-only
   * changes, the removals. Every label of `add` and `remove` is here once, with whose change it is.
   */
  changes: PlannedChange[];
}

/** Everything `decide` needs about the repo. */
export interface DecideContext {
  config: TriageConfig;
  templates: TemplateInfo[];
  /** Exclusive label names (Gitea `exclusive: true`): scope = name up to the last `/`. */
  exclusiveLabels: ReadonlySet<string>;
}
