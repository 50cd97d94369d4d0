import type { DeliveryState, StoredDelivery } from './types.js';

/**
 * A `deliveries` row as both backends store it (SQLite's journal, PostgreSQL's store). PostgreSQL
 * hands `bigint` columns (`seq`, `received_at`) back as strings.
 */
export interface DeliveryRow {
  seq: number | string;
  id: string;
  event: string;
  event_type: string;
  action: string | null;
  subject: string | null;
  repo: string | null;
  number: number | null;
  updated_at: string | null;
  sender: string | null;
  headers: string;
  body: string;
  state: DeliveryState;
  reason: string | null;
  attempts: number;
  last_error: string | null;
  received_at: number | string;
}

/** A stored row as the pipeline and the tools read it. */
export function toStored(row: DeliveryRow): StoredDelivery {
  const stored: StoredDelivery = {
    seq: Number(row.seq),
    id: row.id,
    event: row.event,
    eventType: row.event_type,
    action: row.action,
    subject: row.subject,
    repo: row.repo,
    number: row.number,
    updatedAt: row.updated_at,
    sender: row.sender,
    headers: parseHeaders(row.headers),
    body: row.body,
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error,
    receivedAt: Number(row.received_at),
  };
  if (row.reason !== null) stored.reason = row.reason;
  return stored;
}

function parseHeaders(text: string): Record<string, string> {
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, string>) : {};
  } catch {
    return {};
  }
}
