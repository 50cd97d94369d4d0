import fs from 'node:fs';
import type { DeliveryStore } from '../store/api.js';
import type { DeliveryState, StoredDelivery } from '../journal/types.js';
import { classify } from '../receiver/classify.js';
import { errorText } from '../errors.js';
import { ToolError } from './cli.js';
import { type DeliveryFilter, matchesFilter, toJournalFilter } from './filter.js';

/**
 * One line of an export (`npm run export`): a journaled delivery as it was received, so that a
 * repro can be attached to a bug report and replayed elsewhere (`npm run replay -- --from FILE`).
 * `body` is the JSON payload exactly as Gitea signed it (a string, not re-serialised: Gitea's bytes
 * are what a signature covers); `headers` are the request headers as received (lower-cased names).
 */
export interface ExportedDelivery {
  id: string;
  event: string;
  eventType: string;
  headers: Record<string, string>;
  body: string;
  /** ISO 8601 (UTC): when the journal committed it. */
  receivedAt: string;
  state: DeliveryState;
  lastError: string | null;
}

const STATES = new Set<DeliveryState>(['pending', 'done', 'failed', 'ignored']);

export function toExported(row: StoredDelivery): ExportedDelivery {
  return {
    id: row.id,
    event: row.event,
    eventType: row.eventType,
    headers: row.headers,
    body: row.body,
    receivedAt: new Date(row.receivedAt).toISOString(),
    state: row.state,
    lastError: row.lastError,
  };
}

/** The store's rows matching `filter`, oldest first. */
export function storeDeliveries(deliveries: Pick<DeliveryStore, 'query'>, filter: DeliveryFilter): Promise<StoredDelivery[]> {
  return deliveries.query(toJournalFilter(filter));
}

/**
 * Writes the rows as JSON lines to `out` (`-`: the returned text only, for stdout). Written to a
 * temporary file first and renamed, so an interrupted export never leaves half a file.
 */
export function writeExport(rows: readonly StoredDelivery[], out: string): string {
  const text = rows.map((r) => `${JSON.stringify(toExported(r))}\n`).join('');
  if (out === '-') return text;
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, out);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw new ToolError(`cannot write ${out}: ${errorText(error)}`);
  }
  return text;
}

/**
 * Reads an export back into journal rows. Subject, repo, number, action, sender and `updated_at` are
 * derived from the payload by the receiver's own `classify`, as when it was first received.
 * @throws ToolError naming the file and line of the first malformed entry.
 */
export function readExport(file: string): StoredDelivery[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ToolError(`cannot read ${file}: ${errorText(error)}`);
  }
  const rows: StoredDelivery[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new ToolError(`${where}: not a JSON line`);
    }
    rows.push(fromExported(value, where, i + 1));
  }
  return rows;
}

/** Rows of an export file matching `filter`. */
export function fileDeliveries(file: string, filter: DeliveryFilter): StoredDelivery[] {
  return readExport(file).filter((r) => matchesFilter(r, filter));
}

function fromExported(value: unknown, where: string, seq: number): StoredDelivery {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ToolError(`${where}: not a JSON object`);
  const v = value as Record<string, unknown>;
  const text = (key: string): string => {
    const s = v[key];
    if (typeof s !== 'string' || s === '') throw new ToolError(`${where}: "${key}" must be a non-empty string`);
    return s;
  };
  const id = text('id');
  const event = text('event');
  const eventType = typeof v.eventType === 'string' && v.eventType !== '' ? v.eventType : event;
  const body = text('body');
  const receivedAt = Date.parse(text('receivedAt'));
  if (Number.isNaN(receivedAt)) throw new ToolError(`${where}: "receivedAt" is not a time`);
  const state = v.state as DeliveryState;
  if (!STATES.has(state)) throw new ToolError(`${where}: "state" must be one of ${[...STATES].join(', ')}`);
  const headers: Record<string, string> = {};
  if (typeof v.headers === 'object' && v.headers !== null && !Array.isArray(v.headers)) {
    for (const [k, h] of Object.entries(v.headers as Record<string, unknown>)) if (typeof h === 'string') headers[k.toLowerCase()] = h;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch {
    throw new ToolError(`${where}: "body" is not JSON`);
  }
  const c = classify(event, payload);
  if (!c.ok) throw new ToolError(`${where}: ${c.reason}`);
  return {
    seq,
    id,
    event,
    eventType,
    action: c.value.action,
    subject: c.value.subject,
    repo: c.value.repo,
    number: c.value.number,
    updatedAt: c.value.updatedAt,
    sender: c.value.sender,
    headers,
    body,
    state,
    attempts: 0,
    lastError: typeof v.lastError === 'string' ? v.lastError : null,
    receivedAt,
  };
}
