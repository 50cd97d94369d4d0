import type { JournalFilter } from '../journal/api.js';
import type { StoredDelivery } from '../journal/types.js';
import { parseSubject } from '../subject.js';
import { ToolError } from './cli.js';

/**
 * Which recorded deliveries a tool works on (`replay`, `export`): at most one of delivery, issue or repo,
 * a time window on the journal's receive time, and failed-only. Parsed from the command line by
 * {@link parseDeliveryFilter}; applied by `Journal.query` ({@link toJournalFilter}) or, for an
 * exported file, by {@link matchesFilter} (the same semantics).
 */
export interface DeliveryFilter {
  id?: string;
  /** `owner/repo#n`. */
  subject?: string;
  /** `owner/repo`. */
  repo?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /** Only dead-lettered deliveries (state `failed`). */
  failed?: boolean;
}

/** The filter options as commander hands them over (all strings). */
export interface FilterOptions {
  delivery?: string;
  issue?: string;
  repo?: string;
  since?: string;
  until?: string;
  failed?: boolean;
}

/** @throws ToolError naming the option and what it expects. */
export function parseDeliveryFilter(options: FilterOptions): DeliveryFilter {
  const given = (['delivery', 'issue', 'repo'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1) throw new ToolError(`--${given[0]} and --${given[1]} cannot be used together`);
  const filter: DeliveryFilter = {};
  if (options.delivery !== undefined) {
    if (options.delivery.trim() === '') throw new ToolError('--delivery: a delivery id is required');
    filter.id = options.delivery.trim();
  }
  if (options.issue !== undefined) filter.subject = parseIssueRef(options.issue, '--issue');
  if (options.repo !== undefined) filter.repo = parseRepoRef(options.repo, '--repo');
  if (options.since !== undefined) filter.since = parseTime(options.since, '--since');
  if (options.until !== undefined) filter.until = parseTime(options.until, '--until');
  if (filter.since !== undefined && filter.until !== undefined && filter.until <= filter.since) {
    throw new ToolError('--until must be later than --since');
  }
  if (options.failed) filter.failed = true;
  return filter;
}

export function toJournalFilter(filter: DeliveryFilter): JournalFilter {
  const out: JournalFilter = {};
  if (filter.id !== undefined) out.id = filter.id;
  if (filter.subject !== undefined) out.subject = filter.subject;
  if (filter.repo !== undefined) out.repo = filter.repo;
  if (filter.since !== undefined) out.since = filter.since;
  if (filter.until !== undefined) out.until = filter.until;
  if (filter.failed) out.state = 'failed';
  return out;
}

/** `Journal.query`'s semantics for rows read from an exported file. */
export function matchesFilter(row: StoredDelivery, filter: DeliveryFilter): boolean {
  if (filter.id !== undefined && row.id !== filter.id) return false;
  if (filter.subject !== undefined && row.subject !== filter.subject) return false;
  if (filter.repo !== undefined && row.repo !== filter.repo) return false;
  if (filter.since !== undefined && row.receivedAt < filter.since) return false;
  if (filter.until !== undefined && row.receivedAt >= filter.until) return false;
  if (filter.failed && row.state !== 'failed') return false;
  return true;
}

/** `owner/repo#n` → the subject key. */
export function parseIssueRef(text: string, option: string): string {
  const subject = parseSubject(text.trim());
  if (!subject || subject.kind !== 'issue') throw new ToolError(`${option}: expected owner/repo#number, got ${JSON.stringify(text)}`);
  return subject.key;
}

/** A Gitea user, organisation or repository name (never `.` or `..`: they would leave the API path). */
function isName(text: string): boolean {
  return /^[A-Za-z0-9_.-]+$/.test(text) && text !== '.' && text !== '..';
}

/** `owner/repo`, for every tool's `--repo`. */
export function parseRepoRef(text: string, option: string): string {
  const parts = text.trim().split('/');
  if (parts.length !== 2 || !parts.every(isName)) throw new ToolError(`${option}: expected owner/repo, got ${JSON.stringify(text)}`);
  return parts.join('/');
}

/** An organisation name, for every tool's `--org`. */
export function parseOrgName(text: string, option: string): string {
  if (!isName(text.trim())) throw new ToolError(`${option}: expected an organisation name, got ${JSON.stringify(text)}`);
  return text.trim();
}

/** An ISO 8601 time (`2026-01-31`, `2026-01-31T12:00:00Z`, with an offset…) → epoch ms. */
export function parseTime(text: string, option: string): number {
  // Date.parse also takes "1" or "March 7": only ISO-looking input is accepted.
  const t = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim()) ? Date.parse(text.trim()) : NaN;
  if (Number.isNaN(t)) throw new ToolError(`${option}: expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got ${JSON.stringify(text)}`);
  return t;
}
