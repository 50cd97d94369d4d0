import { capText } from './patterns.js';
import type { IssueTemplateSource, TemplateInfo } from './types.js';

/**
 * Markdown as far as triage needs it: the top-level blocks of an issue body or a comment —
 * headings, paragraphs, code, quotes, lists, HTML comments — found line by line in linear time.
 * It follows CommonMark for what it reports (ATX and setext headings, fenced and indented code,
 * block quotes with lazy continuation, HTML comment blocks, list items), and the unit tests hold its
 * headings against `marked`'s on ordinary documents.
 *
 * Why not `marked`'s lexer in production: an issue body is written by anyone who can open an issue,
 * it is parsed on the event loop that answers webhooks, and marked 18 is not linear on hostile input.
 * `node --import tsx scripts/bench/markdown.ts --rounds 1000` (2-core machine shared with other
 * work, so figures vary by 2× between runs): on 53 real issue bodies this scanner takes 26 µs per
 * body (36 µs with the sections), marked's block lexer 72 µs (GFM) or 87 µs (CommonMark) — no cost
 * that matters. But 64 KiB of `> a\nb\n` (a quote with lazy lines) takes marked 7–9 s, 64 KiB of
 * `a\n-\n` 4.8–7.6 s with GFM, and 16 KiB of `>` or `1. ` nesting overflows its stack (RangeError
 * after 0.2–1 s), where this scanner needs 0.1–440 ms. That cost matters: one such issue would stall
 * every delivery for seconds. So `marked` is the tests' reference, not the parser.
 */
export const MARKDOWN_LIMITS = {
  /** Characters of a body scanned for headings and sections (headings after this are not seen). */
  maxScanLength: 256 * 1024,
} as const;

export type BlockKind = 'heading' | 'paragraph' | 'code' | 'quote' | 'list' | 'comment' | 'html' | 'hr' | 'blank';

export interface Block {
  kind: BlockKind;
  /** 1-based line of the block's first line. */
  line: number;
  /** The block's lines as written (fence lines included for code). */
  lines: string[];
  /** Headings: 1-6. */
  depth?: number;
  /** Headings: the heading's text (closing `#`s and surrounding spaces removed). */
  text?: string;
  /** Code: a fenced block (else indented). */
  fenced?: boolean;
  /** Fenced code: whether its closing fence was found. */
  closed?: boolean;
}

interface Line {
  raw: string;
  indent: number;
  /** The line without its indentation. */
  rest: string;
}

function measure(raw: string): Line {
  let indent = 0;
  let i = 0;
  for (; i < raw.length; i++) {
    const c = raw[i];
    if (c === ' ') indent++;
    else if (c === '\t') indent += 4 - (indent % 4);
    else break;
  }
  return { raw, indent, rest: raw.slice(i) };
}

function isBlank(line: Line): boolean {
  return line.rest.trim().length === 0;
}

/** `#`…`######` followed by a space, a tab or the end of the line. */
function atxHeading(line: Line): { depth: number; text: string } | undefined {
  if (line.indent > 3) return undefined;
  const s = line.rest;
  let n = 0;
  while (n < s.length && s[n] === '#') n++;
  if (n < 1 || n > 6) return undefined;
  if (n < s.length && s[n] !== ' ' && s[n] !== '\t') return undefined;
  let text = s.slice(n).trim();
  // An optional closing sequence: spaces, then only `#`s.
  let end = text.length;
  while (end > 0 && text[end - 1] === '#') end--;
  if (end === 0) text = '';
  else if (end < text.length && (text[end - 1] === ' ' || text[end - 1] === '\t')) text = text.slice(0, end).trim();
  return { depth: n, text };
}

/** A line of one repeated character (spaces allowed between when `spaced`), at least `min` long. */
function runOf(s: string, chars: string, min: number, spaced: boolean): boolean {
  const t = s.trimEnd();
  if (t.length === 0 || !chars.includes(t[0] as string)) return false;
  const c = t[0];
  let count = 0;
  for (const ch of t) {
    if (ch === c) count++;
    else if (!(spaced && (ch === ' ' || ch === '\t'))) return false;
  }
  return count >= min;
}

function setextUnderline(line: Line): 1 | 2 | undefined {
  if (line.indent > 3) return undefined;
  if (runOf(line.rest, '=', 1, false)) return 1;
  if (runOf(line.rest, '-', 1, false)) return 2;
  return undefined;
}

function thematicBreak(line: Line): boolean {
  return line.indent <= 3 && runOf(line.rest, '-*_', 3, true);
}

function fenceOpening(line: Line): { char: string; length: number } | undefined {
  if (line.indent > 3) return undefined;
  const s = line.rest;
  const c = s[0];
  if (c !== '`' && c !== '~') return undefined;
  let n = 0;
  while (n < s.length && s[n] === c) n++;
  if (n < 3) return undefined;
  // A backtick fence's info string may not contain a backtick.
  if (c === '`' && s.slice(n).includes('`')) return undefined;
  return { char: c, length: n };
}

function closesFence(line: Line, fence: { char: string; length: number }): boolean {
  if (line.indent > 3) return false;
  const s = line.rest.trimEnd();
  if (s.length < fence.length) return false;
  for (const ch of s) if (ch !== fence.char) return false;
  return true;
}

/** A list item's marker: the column where the item's content starts, and whether the item is empty. */
function listItem(line: Line): { contentIndent: number; empty: boolean } | undefined {
  if (line.indent > 3) return undefined;
  const s = line.rest;
  let marker = 0;
  const c = s[0];
  if (c === '-' || c === '+' || c === '*') {
    marker = 1;
  } else {
    while (marker < s.length && marker < 10 && (s[marker] as string) >= '0' && (s[marker] as string) <= '9') marker++;
    if (marker === 0 || marker > 9 || (s[marker] !== '.' && s[marker] !== ')')) return undefined;
    marker++;
  }
  if (s.length === marker) return { contentIndent: line.indent + marker + 1, empty: true };
  if (s[marker] !== ' ' && s[marker] !== '\t') return undefined;
  const after = measure(s.slice(marker));
  if (after.rest.length === 0) return { contentIndent: line.indent + marker + 1, empty: true };
  // 5+ spaces after the marker: the content is indented code starting one space in.
  return { contentIndent: line.indent + marker + (after.indent > 4 ? 1 : after.indent), empty: false };
}

/** Whether a line (inside a container) is paragraph text, which lazy continuation lines may extend. */
function paragraphText(inner: Line): boolean {
  if (isBlank(inner) || inner.indent >= 4) return false;
  return !atxHeading(inner) && !fenceOpening(inner) && !thematicBreak(inner) && !htmlStart(inner);
}

/** Whether a quote line ends in paragraph text. */
function quoteLineIsText(line: Line): boolean {
  return paragraphText(measure(line.rest.replace(/^(>[ \t]?)+/, '')));
}

/** CommonMark's HTML block kind 6 (and kind 1) tags: such a block may interrupt a paragraph. */
const BLOCK_TAGS = new Set(
  (
    'address article aside base basefont blockquote body caption center col colgroup dd details dialog dir div dl dt ' +
    'fieldset figcaption figure footer form frame frameset h1 h2 h3 h4 h5 h6 head header hr html iframe legend li link ' +
    'main menu menuitem nav noframes ol optgroup option p param pre script search section style summary table tbody td ' +
    'textarea tfoot th thead title tr track ul'
  ).split(' '),
);

/**
 * An HTML block's first line: a comment, a block-level tag (may interrupt a paragraph), or another
 * tag alone on its line (may not). Such blocks end at a blank line (comments: at `-->`).
 */
function htmlStart(line: Line): 'comment' | 'block' | 'inline' | undefined {
  if (line.indent > 3) return undefined;
  const s = line.rest;
  if (s.startsWith('<!--')) return 'comment';
  const tag = /^<\/?([A-Za-z][A-Za-z0-9-]*)(\s|\/?>|$)/.exec(s.slice(0, 64));
  if (!tag) return undefined;
  if (BLOCK_TAGS.has((tag[1] as string).toLowerCase())) return 'block';
  return /^<\/?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?\/?>\s*$/.test(s) ? 'inline' : undefined;
}

/** The top-level blocks of `markdown` (at most `MARKDOWN_LIMITS.maxScanLength` characters of it). */
export function scanMarkdown(markdown: string): Block[] {
  const scanner = new BlockScanner();
  capText(markdown, MARKDOWN_LIMITS.maxScanLength)
    .split(/\r\n|\r|\n/)
    .forEach((raw, index) => scanner.line(raw, index + 1));
  return scanner.blocks;
}

/** The scan's state between lines: the block continuation lines join, and what may continue it. */
class BlockScanner {
  readonly blocks: Block[] = [];
  /** The block that continuation lines join. */
  private open: Block | undefined;
  private fence: { char: string; length: number } | undefined;
  /**
   * Inside a list item: lines indented to its content column belong to it, and so does text
   * (lazily) while the item's paragraph is open.
   */
  private list: { contentIndent: number; lazy: boolean; empty: boolean } | undefined;
  /** The open quote ends in paragraph text (lazy continuation lines join it). */
  private quoteLazy = false;
  private blankSeen = false;

  line(raw: string, lineNo: number): void {
    const line = measure(raw);
    if (this.insideOpenBlock(raw, line)) return;
    if (isBlank(line)) {
      this.start('blank', lineNo, raw);
      // Blank lines do not end an indented code block (more indented lines may follow).
      if (!(this.open?.kind === 'code' && !this.open.fenced)) this.open = undefined;
      this.blankSeen = true;
      return;
    }
    const afterBlank = this.blankSeen;
    this.blankSeen = false;
    if (this.inList(raw, line, lineNo, afterBlank)) return;
    if (line.indent >= 4) {
      this.indented(raw, lineNo);
      return;
    }
    if (this.open?.kind === 'code') this.open = undefined;
    if (this.leafStart(raw, line, lineNo)) return;
    this.containerOrText(raw, line, lineNo);
  }

  private start(kind: BlockKind, lineNo: number, raw: string, extra?: Partial<Block>): Block {
    const block: Block = { kind, line: lineNo, lines: [raw], ...extra };
    this.blocks.push(block);
    return block;
  }

  /** Fenced code until its closing fence, an HTML comment until `-->`, another HTML block until a blank line. */
  private insideOpenBlock(raw: string, line: Line): boolean {
    const open = this.open;
    if (this.fence && open) {
      open.lines.push(raw);
      if (closesFence(line, this.fence)) {
        open.closed = true;
        this.fence = undefined;
        this.open = undefined;
      }
      return true;
    }
    if (open?.kind === 'comment') {
      open.lines.push(raw);
      if (raw.includes('-->')) this.open = undefined;
      return true;
    }
    if (open?.kind === 'html' && !isBlank(line)) {
      open.lines.push(raw);
      return true;
    }
    return false;
  }

  /** A line indented to the open list item's content column: the item's (not top-level) content. */
  private inList(raw: string, line: Line, lineNo: number, afterBlank: boolean): boolean {
    // An empty item followed by a blank line has ended (an item starts with at most one blank line).
    if (this.list?.empty && afterBlank) this.list = undefined;
    const list = this.list;
    if (!list) return false;
    if (line.indent >= list.contentIndent) {
      list.empty = false;
      if (this.open?.kind === 'list') this.open.lines.push(raw);
      else this.open = this.start('list', lineNo, raw);
      list.lazy = paragraphText({ raw, indent: line.indent - list.contentIndent, rest: line.rest });
      return true;
    }
    if (afterBlank) this.list = undefined;
    return false;
  }

  /** 4+ columns: indented code, unless it continues a paragraph (or code). */
  private indented(raw: string, lineNo: number): void {
    const open = this.open;
    if (open && (open.kind === 'paragraph' || (open.kind === 'quote' && this.quoteLazy) || (open.kind === 'list' && this.list?.lazy) || open.kind === 'code')) {
      open.lines.push(raw);
    } else {
      this.open = this.start('code', lineNo, raw, { fenced: false });
    }
  }

  /** A fence, an ATX heading, an HTML comment, a setext underline or a thematic break. */
  private leafStart(raw: string, line: Line, lineNo: number): boolean {
    const opening = fenceOpening(line);
    if (opening) {
      this.fence = opening;
      this.open = this.start('code', lineNo, raw, { fenced: true, closed: false });
      this.list = undefined;
      return true;
    }
    const heading = atxHeading(line);
    if (heading) {
      this.start('heading', lineNo, raw, heading);
      this.open = undefined;
      this.list = undefined;
      return true;
    }
    if (htmlStart(line) === 'comment') {
      const block = this.start('comment', lineNo, raw);
      this.open = raw.indexOf('-->', raw.indexOf('<!--') + 4) === -1 ? block : undefined;
      this.list = undefined;
      return true;
    }
    const open = this.open;
    const depth = open?.kind === 'paragraph' ? setextUnderline(line) : undefined;
    if (open && depth) {
      // The paragraph was a setext heading.
      open.kind = 'heading';
      open.depth = depth;
      open.text = open.lines.map((l) => l.trim()).join('\n');
      open.lines.push(raw);
      this.open = undefined;
      return true;
    }
    if (thematicBreak(line)) {
      this.start('hr', lineNo, raw);
      this.open = undefined;
      this.list = undefined;
      return true;
    }
    return false;
  }

  /** A quote line, a list item, an HTML block, or text (which may continue a paragraph, lazily a quote or an item). */
  private containerOrText(raw: string, line: Line, lineNo: number): void {
    const open = this.open;
    if (line.rest.startsWith('>')) {
      if (open?.kind !== 'quote') this.open = this.start('quote', lineNo, raw);
      else open.lines.push(raw);
      this.quoteLazy = quoteLineIsText(line);
      this.list = undefined;
      return;
    }
    const item = listItem(line);
    if (item) {
      this.open = this.start('list', lineNo, raw);
      this.list = {
        contentIndent: item.contentIndent,
        lazy: !item.empty && paragraphText(measure(line.rest.replace(/^([-+*]|\d{1,9}[.)])/, ''))),
        empty: item.empty,
      };
      return;
    }
    const html = htmlStart(line);
    if (html === 'block' || (html === 'inline' && !(open && (open.kind === 'paragraph' || open.kind === 'quote' || open.kind === 'list')))) {
      this.open = this.start('html', lineNo, raw);
      this.list = undefined;
      return;
    }
    if (open && (open.kind === 'paragraph' || (open.kind === 'quote' && this.quoteLazy) || (open.kind === 'list' && this.list?.lazy))) {
      open.lines.push(raw);
      return;
    }
    this.open = this.start('paragraph', lineNo, raw);
    this.list = undefined;
  }
}

/**
 * A heading as it is compared: trimmed, inner whitespace collapsed, case-folded, emphasis and code
 * marks (`*`, `_`, `` ` ``) dropped, a trailing `:` ignored — `## Steps to reproduce:` in a body
 * answers `### **Steps to  Reproduce**` of a template.
 */
export function normalizeHeading(heading: string): string {
  return heading
    .replace(/[*_`]/g, '')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\s*:+$/, '')
    .toLowerCase();
}

/** The `##` and `###` headings of a markdown text, in order, outside code, quotes and comments. */
export function markdownHeadings(markdown: string): string[] {
  return scanMarkdown(markdown)
    .filter((b) => b.kind === 'heading' && (b.depth === 2 || b.depth === 3) && (b.text ?? '') !== '')
    .map((b) => b.text as string);
}

/** A heading of a body with what follows it (up to the next heading of the same or a higher level). */
export interface Section {
  heading: string;
  depth: number;
  /** Whether the section holds something besides blank lines, HTML comments, `_No response_`, `...`, empty list items and sub-headings. */
  filled: boolean;
  /**
   * The section's text lines as `answerText` gives them, distinct, at most `MAX_ANSWERS`: what a
   * template's own text under the same heading is compared with (`sectionAnswered`).
   */
  answers: string[];
}

/**
 * What Gitea writes for an empty form field: `_No response_` (modules/issue/template/template.go,
 * `blankPlaceholder` in `valuedField.WriteTo`, for input, textarea and dropdown fields; GitHub
 * writes the same for an empty optional field, or leaves the field out).
 */
export const NO_RESPONSE = '_No response_';

/**
 * Distinct lines kept per section, and template lines kept per heading: a section with more
 * distinct lines than its template has is answered whatever they are, so `MAX_ANSWERS` template
 * lines and `MAX_ANSWERS + 1` body lines decide it, however long the body is.
 */
const MAX_ANSWERS = 64;

/** Drops HTML comments (`<!-- … -->`, also across lines; an unclosed one runs to the end). */
export function stripHtmlComments(text: string): string {
  let out = '';
  let from = 0;
  for (;;) {
    const open = text.indexOf('<!--', from);
    if (open === -1) return out + text.slice(from);
    out += text.slice(from, open);
    const close = text.indexOf('-->', open + 4);
    if (close === -1) return out;
    from = close + 3;
  }
}

/**
 * A line of a section as it is compared: list marker and task box (`1.`, `-`, `- [ ]`) dropped,
 * whitespace collapsed, case-folded; `''` for a line that answers nothing — blank, `_No response_`,
 * or a bare `...` (`…`), the placeholder of many templates (Gitea's own issue_template.md had one
 * under `## Description`).
 */
export function answerText(line: string): string {
  const text = line
    .trim()
    .replace(/^([-+*]|\d{1,9}[.)])(\s+\[[ xX]?\])?(\s|$)/, '')
    .replace(/\s+/g, ' ')
    .trim();
  if (text === NO_RESPONSE || text === '...' || text === '…') return '';
  return text.toLowerCase();
}

/** The lines of a block that may answer a section (fences, comments, headings and rules are not text). */
function blockText(block: Block): string[] {
  switch (block.kind) {
    case 'blank':
    case 'comment':
    case 'heading':
    case 'hr':
      return [];
    case 'code':
      // A fenced block's fence lines are not content: an empty block is empty.
      return block.fenced ? block.lines.slice(1, block.closed ? -1 : undefined) : block.lines;
    default:
      return stripHtmlComments(block.lines.join('\n')).split('\n');
  }
}

/** Adds a block's answering lines to `answers` (distinct, up to `MAX_ANSWERS + 1`). */
function collectAnswers(block: Block, answers: Set<string>): void {
  for (const line of blockText(block)) {
    if (answers.size > MAX_ANSWERS) return;
    const text = answerText(line);
    if (text !== '') answers.add(text);
  }
}

/** The sections of a body, in order. */
export function markdownSections(markdown: string): Section[] {
  const blocks = scanMarkdown(markdown);
  const sections: Section[] = [];
  blocks.forEach((block, i) => {
    if (block.kind !== 'heading' || !block.text) return;
    const depth = block.depth ?? 1;
    const answers = new Set<string>();
    for (let j = i + 1; j < blocks.length && answers.size <= MAX_ANSWERS; j++) {
      const next = blocks[j] as Block;
      if (next.kind === 'heading' && (next.depth ?? 1) <= depth) break;
      collectAnswers(next, answers);
    }
    sections.push({ heading: block.text, depth, filled: answers.size > 0, answers: [...answers] });
  });
  return sections;
}

/**
 * Whether a section answers its heading: it holds a line that is not the template's own text under
 * that heading (`placeholders`, as `answerText` gives them).
 */
export function sectionAnswered(section: Section, placeholders: readonly string[] = []): boolean {
  if (placeholders.length === 0) return section.filled;
  const own = new Set(placeholders);
  return section.answers.some((line) => !own.has(line));
}

/** Field types Gitea renders into the issue body with a `### <label>` heading. */
const HEADED_FIELDS = new Set(['input', 'textarea', 'dropdown', 'checkboxes']);

/**
 * The headings a YAML issue form puts into the issue body, as Gitea renders a submitted form
 * (modules/issue/template/template.go, `RenderToMarkdown` / `valuedField.WriteTo`, Gitea 1.21+):
 * - every field visible in the content gets `### <label>` then its value — `_No response_` when an
 *   input, textarea or dropdown is left empty; checkboxes always list their options (`- [ ] …`);
 * - `markdown` fields are not in the content by default (`visible: [form]`); one made visible in
 *   the content is written as its text, without a heading;
 * - a field whose `visible` list lacks `content` is not written at all;
 * - `attributes.hide_label: true` writes the value without the heading.
 */
export function formHeadings(body: NonNullable<IssueTemplateSource['body']>): string[] {
  return formSections(body).map((f) => f.heading);
}

/** A form field as the issue body shows it: its heading, whether the form requires it, its own text. */
interface FormSection {
  heading: string;
  required: boolean;
  /** The field's `placeholder` and `value` lines, as `answerText` gives them. */
  placeholders: string[];
}

function formSections(body: NonNullable<IssueTemplateSource['body']>): FormSection[] {
  const sections: FormSection[] = [];
  for (const field of body) {
    if (!field || !HEADED_FIELDS.has(field.type)) continue;
    // Gitea renders only content-visible fields into the body; an empty or absent list means the
    // default, in the content for every field but markdown (modules/structs/issue.go, VisibleInContent).
    const visible = field.visible;
    if (Array.isArray(visible) && visible.length > 0 && !visible.includes('content')) continue;
    const attributes = field.attributes ?? {};
    if (attributes.hide_label === true) continue;
    const label = attributes.label;
    if (typeof label !== 'string' || label.trim() === '') continue;
    // The body holds `### <label>`: read it back as a heading is read from a body (first line,
    // closing `#`s dropped), so the template and the body compare the same text.
    const heading = atxHeading(measure(`### ${label.split(/\r\n|\r|\n/)[0] ?? ''}`));
    if (!heading || heading.text === '') continue;
    // `validations.required` is checked by the browser only (the `required` attribute in
    // templates/repo/issue/fields/input.tmpl and textarea.tmpl; dropdown.tmpl: "FIXME: required
    // validation"); NewIssuePost (routers/web/repo/issue_new.go) renders the form with
    // `RenderToMarkdown` without checking it, and the API takes any body. So a required field can be
    // empty (`_No response_`), and only required fields are held against the issue.
    const required = field.validations?.required === true;
    // `value` pre-fills the field and `placeholder` is its hint (the same templates): text the author
    // left as it was, or copied from the hint, is not an answer.
    const own = [attributes.placeholder, attributes.value].filter((v): v is string => typeof v === 'string');
    sections.push({ heading: heading.text, required, placeholders: ownLines(own.join('\n').split(/\r\n|\r|\n/)) });
  }
  return sections;
}

/** Distinct `answerText`s of a template's lines, at most `MAX_ANSWERS`. */
function ownLines(lines: readonly string[]): string[] {
  const own = new Set<string>();
  for (const line of lines) {
    const text = answerText(line);
    if (text !== '') own.add(text);
    if (own.size >= MAX_ANSWERS) break;
  }
  return [...own];
}

/**
 * An issue template reduced to what `missing_sections: template` needs: its headings (a markdown
 * template's `##`/`###`, a form's field labels), a form's required fields (`validations.required:
 * true`), and the template's own text under each heading (a markdown template's placeholder text,
 * a field's `placeholder`/`value`).
 */
export function templateInfo(t: IssueTemplateSource): TemplateInfo {
  if (Array.isArray(t.body) && t.body.length > 0) {
    const fields = formSections(t.body);
    const placeholders: Record<string, string[]> = {};
    for (const f of fields) if (f.placeholders.length > 0) placeholders[normalizeHeading(f.heading)] = f.placeholders;
    return {
      name: t.name,
      fileName: t.file_name,
      headings: fields.map((f) => f.heading),
      required: fields.filter((f) => f.required).map((f) => f.heading),
      placeholders,
    };
  }
  const sections = markdownSections(t.content ?? '').filter((s) => s.depth === 2 || s.depth === 3);
  const placeholders: Record<string, string[]> = {};
  for (const s of sections) if (s.answers.length > 0) placeholders[normalizeHeading(s.heading)] = s.answers.slice(0, MAX_ANSWERS);
  // No `required`: every heading of a markdown template counts, but those a rule names optional.
  return { name: t.name, fileName: t.file_name, headings: sections.map((s) => s.heading), placeholders };
}

/**
 * The headings of `template` an issue must fill under a rule: a form's required fields (the form
 * says which; `optional_sections` does not apply); every heading of a markdown template but those
 * the rule names in `optional_sections`.
 */
export function requiredHeadings(template: TemplateInfo, optional: readonly string[] = []): string[] {
  if (template.required) return template.required;
  const skip = new Set(optional.map(normalizeHeading));
  return template.headings.filter((h) => !skip.has(normalizeHeading(h)));
}
