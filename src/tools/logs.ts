import fs from 'node:fs';
import { Command } from 'commander';
import { errorText } from '../errors.js';
import { EXIT_USAGE, parseArgs, parseUsage, runTool, ToolError, type ToolIO } from './cli.js';

/**
 * `logs`: a readable timeline of one delivery or one issue from the service's JSON log lines
 * (docs/architecture.md, "Structured logs": `received → journaled → batched → evaluated → applied | failed`).
 */
export const LOGS_TOOL = 'logs';

export type LogRecord = Record<string, unknown>;

export interface LogFilter {
  /** Lines whose `delivery` is this id, or whose `deliveries` array holds it. */
  delivery?: string;
  /** Lines of this issue or pull request (`repo` + `number`, or `subject`), and the lines of its deliveries. */
  issue?: { repo: string; number: number };
}

export interface Timeline {
  /** One formatted line per kept log line, in time order. */
  lines: string[];
  /** `first → last (duration) · N lines · outcome: …`; undefined when nothing was kept. */
  summary: string | undefined;
  kept: LogRecord[];
  /** Lines read that were JSON objects. */
  read: number;
  /** Lines skipped because they were not JSON objects (npm's banner, pretty-format lines, garbage). */
  skipped: number;
}

/** `owner/repo#n` → repo and number; a {@link ToolError} otherwise. */
export function parseIssueArg(text: string): { repo: string; number: number } {
  const m = /^([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)#(\d+)$/.exec(text.trim());
  if (!m) throw new ToolError(`--issue must be owner/repo#number, got ${JSON.stringify(text)}`);
  return { repo: m[1] as string, number: Number(m[2]) };
}

/** Parses one line; undefined for anything that is not a JSON object. */
export function parseLogLine(line: string): LogRecord | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

function deliveriesOf(record: LogRecord): string[] {
  const ids: string[] = [];
  if (typeof record.delivery === 'string') ids.push(record.delivery);
  if (Array.isArray(record.deliveries)) for (const d of record.deliveries) if (typeof d === 'string') ids.push(d);
  return ids;
}

function isOfIssue(record: LogRecord, issue: { repo: string; number: number }): boolean {
  if (typeof record.subject === 'string' && record.subject.toLowerCase() === `${issue.repo}#${issue.number}`.toLowerCase()) return true;
  return (
    typeof record.repo === 'string' &&
    record.repo.toLowerCase() === issue.repo.toLowerCase() &&
    (record.number === issue.number || record.number === String(issue.number))
  );
}

/**
 * The lines a filter keeps. For an issue: its own lines, plus every line of a delivery seen on one of
 * them (a `batched` line names the subject but not repo/number; a retry line only the deliveries).
 */
export function selectRecords(records: readonly LogRecord[], filter: LogFilter): LogRecord[] {
  const { delivery, issue } = filter;
  if (delivery !== undefined) return records.filter((r) => deliveriesOf(r).includes(delivery));
  if (issue !== undefined) {
    const ids = new Set<string>();
    for (const r of records) if (isOfIssue(r, issue)) for (const id of deliveriesOf(r)) ids.add(id);
    return records.filter((r) => isOfIssue(r, issue) || deliveriesOf(r).some((id) => ids.has(id)));
  }
  return [...records];
}

function timeOf(record: LogRecord): number | undefined {
  if (typeof record.time !== 'string') return undefined;
  const t = Date.parse(record.time);
  return Number.isNaN(t) ? undefined : t;
}

/** `HH:MM:SS.mmm` of an ISO time (UTC, like the logger's pretty format); the raw text otherwise. */
export function clockTime(time: unknown): string {
  if (typeof time !== 'string') return '--:--:--.---';
  const m = /T(\d{2}:\d{2}:\d{2})(\.\d+)?/.exec(time);
  if (!m) return time;
  const ms = ((m[2] ?? '.000') + '000').slice(1, 4);
  return `${m[1]}.${ms}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The fields worth reading on a timeline line, in this order (docs/architecture.md, "Structured logs", plus the few that explain a state). */
const FIELDS = ['event', 'action', 'batch', 'attempt', 'durationMs', 'added', 'removed', 'state', 'reason', 'note', 'status', 'error'] as const;

function fieldText(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',');
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * One timeline line: time, level, msg, then the interesting fields as `key=value`. `context` adds the
 * fields a filter did not fix: the delivery (issue filter), the delivery and the issue (no filter).
 */
export function formatRecord(record: LogRecord, options: { msgWidth?: number; context?: 'none' | 'delivery' | 'all' } = {}): string {
  const level = typeof record.level === 'string' ? record.level : '?';
  const msg = typeof record.msg === 'string' ? record.msg : typeof record.message === 'string' ? record.message : '';
  const parts: string[] = [];
  const context = options.context ?? 'none';
  if (context === 'all') {
    const where =
      typeof record.repo === 'string' && record.number !== undefined
        ? `${record.repo}#${String(record.number)}`
        : typeof record.subject === 'string'
          ? record.subject
          : undefined;
    if (where) parts.push(where);
  }
  if (context !== 'none' && typeof record.delivery === 'string') parts.push(`delivery=${record.delivery}`);
  for (const key of FIELDS) {
    const text = fieldText(record[key]);
    if (text !== undefined) parts.push(`${key}=${text}`);
  }
  if (Array.isArray(record.deliveries) && record.deliveries.length > 1) parts.push(`deliveries=${record.deliveries.length}`);
  const head = `${clockTime(record.time)} ${level.padEnd(5)} ${msg.padEnd(options.msgWidth ?? 0)}`;
  return parts.length > 0 ? `${head}  ${parts.join(' ')}` : head.trimEnd();
}

const OUTCOMES = new Set(['evaluated', 'applied', 'failed']);

/** `first → last (duration) · N lines [· M deliveries] · outcome: …` — the outcome is the last evaluated/applied/failed line. */
export function summarize(records: readonly LogRecord[]): string | undefined {
  if (records.length === 0) return undefined;
  const times = records.map(timeOf).filter((t): t is number => t !== undefined);
  const first = records[0] as LogRecord;
  const last = records[records.length - 1] as LogRecord;
  const parts: string[] = [];
  if (times.length > 0) {
    const span = Math.max(...times) - Math.min(...times);
    parts.push(`${clockTime(first.time)} → ${clockTime(last.time)} (${formatDuration(span)})`);
  }
  parts.push(`${records.length} line${records.length === 1 ? '' : 's'}`);
  const deliveries = new Set(records.flatMap(deliveriesOf));
  if (deliveries.size > 1) parts.push(`${deliveries.size} deliveries`);
  const outcome = [...records].reverse().find((r) => typeof r.msg === 'string' && OUTCOMES.has(r.msg));
  if (!outcome) {
    parts.push('outcome: none yet (no evaluated, applied or failed line)');
  } else {
    const detail: string[] = [];
    const added = Array.isArray(outcome.added) ? outcome.added : [];
    const removed = Array.isArray(outcome.removed) ? outcome.removed : [];
    for (const a of added) detail.push(`+${String(a)}`);
    for (const r of removed) detail.push(`-${String(r)}`);
    if (outcome.msg === 'failed' && typeof outcome.error === 'string') detail.push(outcome.error);
    if (outcome.msg !== 'failed' && detail.length === 0) detail.push('no label change');
    parts.push(`outcome: ${String(outcome.msg)} (${detail.join(' ')})`);
  }
  return parts.join(' · ');
}

/** Builds the timeline from log lines (any iterable of text lines). */
export async function buildTimeline(lines: AsyncIterable<string> | Iterable<string>, filter: LogFilter): Promise<Timeline> {
  const records: LogRecord[] = [];
  let skipped = 0;
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const record = parseLogLine(line);
    if (record) records.push(record);
    else skipped++;
  }
  const kept = selectRecords(records, filter);
  // One process writes in time order; concatenated files may not be. Sort only when every line has a time.
  if (kept.every((r) => timeOf(r) !== undefined)) kept.sort((a, b) => (timeOf(a) as number) - (timeOf(b) as number));
  const msgWidth = Math.min(24, Math.max(0, ...kept.map((r) => (typeof r.msg === 'string' ? r.msg.length : 0))));
  const context = filter.delivery !== undefined ? 'none' : filter.issue !== undefined ? 'delivery' : 'all';
  return {
    lines: kept.map((r) => formatRecord(r, { msgWidth, context })),
    summary: summarize(kept),
    kept,
    read: records.length,
    skipped,
  };
}

export interface LogsOptions {
  delivery?: string;
  issue?: { repo: string; number: number };
  /** A log file; stdin when absent. */
  from?: string;
}

export function parseLogsArgs(argv: readonly string[], io: ToolIO): LogsOptions | 'help' {
  const program = new Command(LOGS_TOOL)
    .description(
      "A readable timeline of one delivery or one issue from gitea-triage's JSON log lines (a file, or stdin).\n" +
        'With no filter, every line. Lines that are not JSON are skipped and counted.',
    )
    .option('--delivery <id>', 'the lines of one delivery (its X-Gitea-Delivery id)')
    .option('--issue <owner/repo#n>', 'the lines of one issue or pull request, and of its deliveries')
    .option('--from <file>', 'read this log file instead of stdin');
  const opts = parseArgs(program, argv, io);
  if (opts === 'help') return 'help';
  const out: LogsOptions = {};
  if (typeof opts.delivery === 'string') {
    if (opts.delivery.trim() === '') throw new ToolError('--delivery needs an id');
    out.delivery = opts.delivery.trim();
  }
  if (typeof opts.issue === 'string') out.issue = parseIssueArg(opts.issue);
  if (out.delivery !== undefined && out.issue !== undefined) throw new ToolError('give --delivery or --issue, not both');
  if (typeof opts.from === 'string') out.from = opts.from;
  return out;
}

/** Lines of a stream, without loading it whole; a read error rejects (async iteration forwards it). */
export async function* linesOf(stream: AsyncIterable<string | Buffer>): AsyncIterable<string> {
  let rest = '';
  for await (const chunk of stream) {
    rest += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const parts = rest.split(/\r?\n/);
    rest = parts.pop() ?? '';
    yield* parts;
  }
  if (rest !== '') yield rest;
}

/**
 * The whole command. Resolves with the exit code: 1 when the filter kept nothing. Reads no
 * environment variable (`env` is there for the tools' common signature).
 */
export async function logsMain(argv: readonly string[], _env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  return runTool(LOGS_TOOL, io, async () => {
    const options = parseUsage(() => parseLogsArgs(argv, io));
    if (options === 'help') return 0;
    let input: AsyncIterable<string | Buffer>;
    let source: string;
    if (options.from !== undefined) {
      input = fs.createReadStream(options.from, { encoding: 'utf8' });
      source = options.from;
    } else {
      if (!io.stdin || io.stdin.isTTY) throw new ToolError('no input: give --from FILE or pipe the log into stdin', EXIT_USAGE);
      input = io.stdin as AsyncIterable<string | Buffer>;
      source = 'stdin';
    }
    let timeline: Timeline;
    try {
      timeline = await buildTimeline(linesOf(input), options);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ToolError(`cannot read ${source}: ${code ?? errorText(error)}`);
    }
    const skipped = timeline.skipped > 0 ? `${timeline.skipped} non-JSON line${timeline.skipped === 1 ? '' : 's'} skipped` : '';
    if (timeline.kept.length === 0) {
      const note = skipped ? ` (${skipped})` : '';
      if (options.delivery === undefined && options.issue === undefined) throw new ToolError(`no JSON log line in ${source}${note}`);
      const what = options.delivery !== undefined ? `delivery ${options.delivery}` : `${options.issue!.repo}#${options.issue!.number}`;
      throw new ToolError(`no line of ${what} among ${timeline.read} JSON lines from ${source}${note}`);
    }
    for (const line of timeline.lines) io.stdout.write(`${line}\n`);
    io.stdout.write(`${[timeline.summary, skipped].filter(Boolean).join(' · ')}\n`);
    return 0;
  });
}
