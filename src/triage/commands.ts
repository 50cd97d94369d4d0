import { capText } from './patterns.js';
import { scanMarkdown } from './templates.js';

export const COMMAND_LIMITS = {
  /** Characters of a comment read for commands. */
  maxCommentLength: 64 * 1024,
  /** `/label` lines taken from one comment; later ones are ignored. */
  maxCommands: 20,
  /** Labels taken from one `/label` line; later ones are ignored. */
  maxLabelsPerCommand: 50,
} as const;

export interface LabelCommand {
  add: string[];
  remove: string[];
}

/**
 * Blanks out what a reader does not see as text in a paragraph: code spans (`` `…` ``, any
 * backtick-run length, across lines) and HTML comments (`<!-- … -->`, an unclosed one to the end).
 * Newlines are kept, so lines keep their numbers. Linear: closing runs are looked up by length.
 */
function maskInline(text: string): string {
  // Backtick runs; a backslash right before a run escapes its first backtick (outside code spans).
  const runs: { start: number; end: number; escaped: boolean }[] = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] !== '`') {
      i++;
      continue;
    }
    let j = i;
    while (j < text.length && text[j] === '`') j++;
    let slashes = 0;
    for (let k = i - 1; k >= 0 && text[k] === '\\'; k--) slashes++;
    runs.push({ start: i, end: j, escaped: slashes % 2 === 1 });
    i = j;
  }
  const byLength = new Map<number, number[]>();
  runs.forEach((r, index) => {
    const list = byLength.get(r.end - r.start) ?? [];
    list.push(index);
    byLength.set(r.end - r.start, list);
  });
  /** The first run after run `index` with exactly `length` backticks. */
  const closing = (index: number, length: number): number | undefined => {
    const list = byLength.get(length);
    if (!list) return undefined;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((list[mid] as number) <= index) lo = mid + 1;
      else hi = mid;
    }
    return list[lo];
  };

  const out = text.split('');
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  let pos = 0;
  let runIndex = 0;
  while (pos < text.length) {
    while (runIndex < runs.length && (runs[runIndex] as { start: number }).start < pos) runIndex++;
    const run = runs[runIndex];
    const comment = text.indexOf('<!--', pos);
    if (comment !== -1 && (!run || comment < run.start)) {
      const close = text.indexOf('-->', comment + 4);
      const end = close === -1 ? text.length : close + 3;
      blank(comment, end);
      pos = end;
      continue;
    }
    if (!run) break;
    const openStart = run.escaped ? run.start + 1 : run.start;
    const openLength = run.end - openStart;
    const closeIndex = openLength > 0 ? closing(runIndex, openLength) : undefined;
    if (closeIndex === undefined) {
      pos = run.end; // no closing run: literal backticks
      continue;
    }
    const close = runs[closeIndex] as { end: number };
    blank(openStart, close.end);
    pos = close.end;
  }
  return out.join('');
}

const COMMAND = /^\/label(?=[ \t]|$)/i;

/** The label names of one `/label` line: `name`, `+name`, `-name`, `"name with spaces"`, `-"…"`. */
function parseArguments(args: string): LabelCommand | undefined {
  const wanted = new Map<string, 'add' | 'remove'>(); // first mention fixes the order, the last one the action
  let i = 0;
  while (i < args.length && wanted.size < COMMAND_LIMITS.maxLabelsPerCommand) {
    while (i < args.length && (args[i] === ' ' || args[i] === '\t')) i++;
    if (i >= args.length) break;
    let action: 'add' | 'remove' = 'add';
    if (args[i] === '-' || args[i] === '+') {
      action = args[i] === '-' ? 'remove' : 'add';
      i++;
    }
    let name: string;
    // Only double quotes quote: an apostrophe belongs to names like `won't fix`.
    if (args[i] === '"') {
      const close = args.indexOf('"', i + 1);
      if (close === -1) break; // an unterminated quote: the rest is not a name
      name = args.slice(i + 1, close).trim();
      i = close + 1;
    } else {
      let j = i;
      while (j < args.length && args[j] !== ' ' && args[j] !== '\t') j++;
      name = args.slice(i, j);
      i = j;
    }
    if (name.length === 0) continue;
    wanted.delete(name); // re-inserted below: a later mention of a name decides its action
    wanted.set(name, action);
  }
  const add = [...wanted].filter(([, a]) => a === 'add').map(([n]) => n);
  const remove = [...wanted].filter(([, a]) => a === 'remove').map(([n]) => n);
  return add.length + remove.length > 0 ? { add, remove } : undefined;
}

/**
 * The `/label` commands of a comment, in order: one per line that starts with `/label` (any case)
 * in the comment's own text — not in code (fenced, indented or inline), block quotes (a reply
 * quoting someone's command must not run it again), HTML comments or other HTML blocks.
 * `/label kind/bug -area/docs +"good first issue"`: a leading `-` removes, `+` (or nothing) adds;
 * label names keep their case. At most `COMMAND_LIMITS.maxCommands` commands per comment and
 * `maxLabelsPerCommand` labels per command; the rest is ignored.
 */
export function parseCommands(commentBody: string): LabelCommand[] {
  const commands: LabelCommand[] = [];
  const blocks = scanMarkdown(capText(commentBody, COMMAND_LIMITS.maxCommentLength));
  for (const block of blocks) {
    if (block.kind !== 'paragraph') continue;
    const text = maskInline(block.lines.join('\n'));
    for (const line of text.split('\n')) {
      const trimmed = line.trim();
      const m = COMMAND.exec(trimmed);
      if (!m) continue;
      const command = parseArguments(trimmed.slice(m[0].length));
      if (!command) continue;
      commands.push(command);
      if (commands.length >= COMMAND_LIMITS.maxCommands) return commands;
    }
  }
  return commands;
}
