import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LabelApplier } from '../applier/applier.js';
import type { Config } from '../config/config.js';
import { ContextLoader } from '../context/context.js';
import type { GiteaApi } from '../gitea/api.js';
import type { NewDelivery, StoredDelivery } from '../journal/types.js';
import type { Logger } from '../log/logger.js';
import { giteaDeliveryHeaders } from '../receiver/sign.js';
import { Scheduler, type SchedulerStore } from '../scheduler/scheduler.js';
import type { DeliveryStore, OwnershipStore, Store } from '../store/api.js';
import { SqliteStore } from '../store/sqlite/store.js';
import type { TriageParts } from '../service/triage.js';
import type { EvaluationResult, Evaluator, WorkItem } from '../scheduler/types.js';
import { parseTriageConfig } from '../triage/config.js';
import { TriageEvaluator } from '../evaluation/evaluator.js';
import { createTriageEvaluator } from '../service/triage.js';
import type { Reason } from '../triage/types.js';
import { errorText } from '../errors.js';
import { ToolError } from './cli.js';

// ---------------------------------------------------------------------------------------------
// --url: re-send to a receiver

/**
 * The headers Gitea sends with a delivery (services/webhook/deliver.go, addDefaultHeaders): the
 * `X-Gitea-*` set and its `X-Gogs-*` and `X-GitHub-*` copies, both HMAC signatures over the JSON
 * body, JSON content type. Signed with `secret` (the receiver's configured one), under delivery `id`.
 */
export function replayHeaders(row: Pick<StoredDelivery, 'event' | 'eventType' | 'headers' | 'body'>, options: { id: string; secret: string }): Record<string, string> {
  const { id, secret } = options;
  const { event, eventType: type, body } = row;
  const targetType = row.headers['x-gitea-hook-installation-target-type'] ?? 'repository';
  return giteaDeliveryHeaders({ id, event, type, json: body, secret, targetType, userAgent: 'gitea-triage-replay' });
}

/** A receiver URL: `http://host:8080` means its `/webhook`. */
export function webhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ToolError(`--url: not a URL: ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ToolError(`--url: expected an http(s) URL, got ${url.protocol}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/webhook';
  return url.toString();
}

export interface SentDelivery {
  /** The recorded delivery's id. */
  original: string;
  /** The id it was sent under (a fresh UUID unless `sameId`). */
  sent: string;
  event: string;
  action: string | null;
  subject: string | null;
  /** HTTP status; undefined when no answer came. */
  status?: number;
  /** The receiver's answer (`accepted`, `duplicate`, `ignored`, or its `error`), or the network error. */
  answer: string;
  /** What the receiver did with it, from its status and answer: see {@link sentOutcome}. */
  outcome: SentOutcome;
}

/**
 * `accepted` (202, journaled for evaluation), `ignored` (202, journaled, nothing to evaluate),
 * `duplicate` (200: the receiver had this delivery id already and did nothing), `refused` (any other
 * answer), `no answer` (network error or timeout). See src/receiver/receive.ts `receiveDelivery`.
 */
export type SentOutcome = 'accepted' | 'ignored' | 'duplicate' | 'refused' | 'no answer';

export function sentOutcome(status: number | undefined, answer: string): SentOutcome {
  if (status === undefined) return 'no answer';
  if (status === 202) return answer === 'ignored' ? 'ignored' : 'accepted';
  if (status === 200 && answer === 'duplicate') return 'duplicate';
  return 'refused';
}

/**
 * POSTs each delivery to a receiver, one after the other in journal order (Gitea's own order as far
 * as it is known), each re-signed with `secret`, under a fresh delivery id unless `sameId` (a
 * receiver that already has the id answers `duplicate`, as for a second delivery from Gitea).
 */
export async function replayToUrl(
  rows: readonly StoredDelivery[],
  options: { url: string; secret: string; sameId: boolean; timeoutMs?: number; onSent?(sent: SentDelivery): void },
): Promise<SentDelivery[]> {
  const out: SentDelivery[] = [];
  for (const row of rows) {
    const id = options.sameId ? row.id : randomUUID();
    const sent: SentDelivery = { original: row.id, sent: id, event: row.event, action: row.action, subject: row.subject, answer: '', outcome: 'no answer' };
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        headers: replayHeaders(row, { id, secret: options.secret }),
        body: row.body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      sent.status = res.status;
      const text = await res.text();
      sent.answer = answerOf(text);
    } catch (error) {
      // fetch's "fetch failed" says little; errorText adds its cause (ECONNREFUSED, a timeout…).
      sent.answer = errorText(error);
    }
    sent.outcome = sentOutcome(sent.status, sent.answer);
    out.push(sent);
    options.onSent?.(sent);
  }
  return out;
}

function answerOf(text: string): string {
  try {
    const json = JSON.parse(text) as { status?: unknown; error?: unknown };
    if (typeof json.status === 'string') return json.status;
    if (typeof json.error === 'string') return json.error;
  } catch {
    // not JSON: show the start of it
  }
  return text.slice(0, 120).replace(/\s+/g, ' ');
}

/** `N deliveries sent to URL: a accepted, d duplicate, …` (only the outcomes that occurred; accepted always). */
export function summarizeSent(sent: readonly SentDelivery[], url: string): string {
  const counts = new Map<SentOutcome, number>([['accepted', 0]]);
  for (const s of sent) counts.set(s.outcome, (counts.get(s.outcome) ?? 0) + 1);
  const order: SentOutcome[] = ['accepted', 'ignored', 'duplicate', 'refused', 'no answer'];
  const parts = order.filter((o) => counts.has(o)).map((o) => `${counts.get(o)} ${o}`);
  const duplicates = counts.get('duplicate') ?? 0;
  const note = duplicates > 0 ? ` (a duplicate was already in the receiver's journal and was not evaluated again)` : '';
  return `${sent.length} ${sent.length === 1 ? 'delivery' : 'deliveries'} sent to ${url}: ${parts.join(', ')}${note}`;
}

export function renderSent(s: SentDelivery): string {
  const what = `${s.event}${s.action ? `/${s.action}` : ''}`;
  const ids = s.sent === s.original ? s.original : `${s.original} -> ${s.sent}`;
  return `${ids}  ${what}  ${s.subject ?? '-'}  ${s.status ?? 'no answer'} ${s.answer}`.trimEnd();
}

// ---------------------------------------------------------------------------------------------
// --local: the pipeline's own code, in process

/** One subject's evaluation in a local replay. */
export interface LocalDecision {
  subject: string;
  deliveries: { id: string; event: string; action: string | null }[];
  added: string[];
  removed: string[];
  /** The evaluator's note (`dry run`, `no triage config`, `closed`, a config problem…). */
  note?: string;
  /** Why each label was added, removed, kept or skipped (the evaluator's `EvaluationResult.reasons`). */
  reasons: Reason[];
  /** Set when the evaluation failed (the error, as the scheduler would dead-letter it). */
  error?: string;
}

export interface LocalRunOptions {
  evaluator: Evaluator;
  log: Logger;
  concurrency: number;
  /** After each subject's evaluation (for a progress display). */
  onProgress?(done: number, total: number): void;
}

/**
 * Runs recorded deliveries through the service's code: every one is shown to `evaluator.observe`
 * (as the receiver does once it journaled it), then the evaluable ones (not `ignored`) go through the
 * real `Scheduler` over a private journal — one work item per subject, deliveries in newest-state
 * order — into `evaluator`, once (no retries). The private journal is a `SqliteStore` in a temporary
 * directory, removed afterwards: the store's own implementation, not a look-alike. Nothing is
 * written to the service's store.
 */
export async function evaluateLocally(rows: readonly StoredDelivery[], options: LocalRunOptions): Promise<LocalDecision[]> {
  const evaluable = [...rows].filter((r) => r.state !== 'ignored' && r.subject !== null).sort((a, b) => a.seq - b.seq);
  for (const row of rows) {
    const payload = parseObject(row.body);
    if (!payload) continue;
    const delivery: NewDelivery = { ...row, state: row.state === 'ignored' ? 'ignored' : 'pending' };
    try {
      options.evaluator.observe?.(delivery, payload);
    } catch (error) {
      options.log.warn('observe failed', { delivery: row.id, error: errorText(error) });
    }
  }

  const results = new Map<string, EvaluationResult>();
  const subjects = unique(evaluable.map((r) => r.subject!));
  const recording: Evaluator = {
    evaluate: async (item: WorkItem, log: Logger) => {
      const result = await options.evaluator.evaluate(item, log);
      results.set(item.subject.key, result);
      return result;
    },
  };
  const errors = await withPrivateJournal(options.log, async (journal) => {
    // Appended in journal order, each pending again (no attempts, no error), as they first arrived.
    await Promise.all(evaluable.map((r) => journal.deliveries.append(pendingAgain(r))));
    await runScheduler({ deliveries: asRecorded(journal.deliveries, evaluable) }, recording, subjects, evaluable.map((r) => r.id), options);
    return new Map((await journal.deliveries.query({})).map((r) => [r.id, r.lastError]));
  });

  return subjects.map((subject) => {
    const rowsOf = evaluable.filter((r) => r.subject === subject);
    const decision: LocalDecision = {
      subject,
      deliveries: rowsOf.map((r) => ({ id: r.id, event: r.event, action: r.action })),
      added: [],
      removed: [],
      reasons: [],
    };
    const result = results.get(subject);
    if (result) {
      decision.added = result.added;
      decision.removed = result.removed;
      if (result.note !== undefined) decision.note = result.note;
      if (result.reasons) decision.reasons = result.reasons;
    } else {
      decision.error = rowsOf.map((r) => errors.get(r.id)).find((e) => e != null) ?? 'not evaluated';
    }
    return decision;
  });
}

/** A recorded row as the receiver first journaled it: pending. */
function pendingAgain(row: StoredDelivery): NewDelivery {
  const { seq: _seq, receivedAt: _at, attempts: _attempts, lastError: _error, state: _state, ...rest } = row;
  return { ...rest, state: 'pending' };
}

/**
 * The private journal's rows as they were recorded: with their original `receivedAt` (the journal
 * stamps its own at append), which the evaluator compares with when a label set was recorded
 * (src/evaluation/bookkeeping.ts, `goneUnexplained`).
 */
function asRecorded(deliveries: DeliveryStore, rows: readonly StoredDelivery[]): SchedulerStore['deliveries'] {
  const receivedAt = new Map(rows.map((r) => [r.id, r.receivedAt]));
  return {
    pendingFor: async (subject) => (await deliveries.pendingFor(subject)).map((r) => ({ ...r, receivedAt: receivedAt.get(r.id) ?? r.receivedAt })),
    pendingSubjects: (limit, afterSeq) => deliveries.pendingSubjects(limit, afterSeq),
    pendingCount: () => deliveries.pendingCount(),
    markDone: (ids) => deliveries.markDone(ids),
    recordFailure: (ids, error) => deliveries.recordFailure(ids, error),
    markFailed: (ids, error) => deliveries.markFailed(ids, error),
  };
}

/** Runs `fn` on a `SqliteStore` in a fresh temporary directory, removed afterwards. */
async function withPrivateJournal<T>(log: Logger, fn: (journal: SqliteStore) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gitea-triage-replay-'));
  try {
    const journal = SqliteStore.open({ dataDir: dir, sync: 'normal', log });
    try {
      return await fn(journal);
    } finally {
      await journal.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The scheduler, one attempt per subject, until idle. With the store's leases (replay --failed),
 * each subject is evaluated under its lease, as the service's scheduler does, with `holder`.
 */
async function runScheduler(
  store: SchedulerStore,
  evaluator: Evaluator,
  subjects: string[],
  ids: string[],
  options: { log: Logger; concurrency: number; holder?: string; leaseTtlMs?: number; onProgress?(done: number, total: number): void },
): Promise<void> {
  if (subjects.length === 0) return;
  let done = 0;
  const scheduler = new Scheduler({
    store,
    ...(options.holder !== undefined ? { holder: options.holder } : {}),
    ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
    evaluator,
    concurrency: options.concurrency,
    maxAttempts: 1,
    log: options.log,
    hooks: { onEvaluated: () => options.onProgress?.(++done, subjects.length) },
  });
  scheduler.schedule({ id: `replay-${randomUUID().slice(0, 8)}`, subjects, deliveryIds: ids });
  await scheduler.onIdle();
}

export function renderDecision(d: LocalDecision): string {
  const kinds = unique(d.deliveries.map((x) => `${x.event}${x.action ? `/${x.action}` : ''}`));
  const lines = [`${d.subject}  ${kinds.join(', ')} (${d.deliveries.length} ${d.deliveries.length === 1 ? 'delivery' : 'deliveries'})`];
  if (d.error !== undefined) {
    lines.push(`  failed: ${d.error}`);
    return lines.join('\n');
  }
  const shown = d.reasons.length > 0 ? d.reasons : [...d.added.map((label) => ({ label, action: 'add' as const, rule: '', evidence: '' })), ...d.removed.map((label) => ({ label, action: 'remove' as const, rule: '', evidence: '' }))];
  const width = Math.max(0, ...shown.map((r) => r.label.length));
  for (const r of shown) {
    lines.push(`  ${r.action.padEnd(6)} ${r.label.padEnd(width)}  ${r.rule}${r.evidence ? `: ${r.evidence}` : ''}`.trimEnd());
  }
  if (d.added.length === 0 && d.removed.length === 0) lines.push(`  no change${d.note && d.note !== 'dry run' ? ` (${d.note})` : ''}`);
  return lines.join('\n');
}

export function summarizeDecisions(decisions: readonly LocalDecision[], dryRun: boolean): string {
  const failed = decisions.filter((d) => d.error !== undefined).length;
  const changed = decisions.filter((d) => d.error === undefined && d.added.length + d.removed.length > 0).length;
  const verb = dryRun ? 'would change' : 'changed';
  return `${decisions.length} subject${decisions.length === 1 ? '' : 's'} evaluated${dryRun ? ' (dry run)' : ''}: ${changed} ${verb}, ${decisions.length - changed - failed} unchanged, ${failed} failed`;
}

// ---------------------------------------------------------------------------------------------
// --local --config FILE: preview a config change

export interface PreviewRow {
  subject: string;
  current: LocalDecision;
  candidate: LocalDecision;
  /** Labels the issue would have with the candidate config and not with the current one. */
  plus: string[];
  /** Labels it would have with the current config and not with the candidate. */
  minus: string[];
}

/**
 * What a candidate config changes, per issue: both configs decide on the same recorded events
 * against the same Gitea state and ownership records; the difference of the resulting label sets.
 * A label the candidate adds and the current one does not, or one only the current config removes,
 * is `+`; the reverse is `-`. (Resulting sets need no read of the current labels: a label is only
 * ever added when absent and removed when present.)
 */
export async function previewConfig(
  rows: readonly StoredDelivery[],
  options: Omit<LocalRunOptions, 'evaluator'> & { current: Evaluator; candidate: Evaluator },
): Promise<PreviewRow[]> {
  const { current: currentConfig, candidate: candidateConfig, onProgress, ...base } = options;
  // Two passes over the same subjects: progress counts both.
  let offset = 0;
  const progress = (done: number, total: number) => onProgress?.(offset + done, 2 * total);
  const current = await evaluateLocally(rows, { ...base, evaluator: currentConfig, onProgress: progress });
  offset = current.length;
  const candidate = await evaluateLocally(rows, { ...base, evaluator: candidateConfig, onProgress: progress });
  return current.map((c, i) => {
    const n = candidate[i]!;
    const plus = unique([...minusSet(n.added, c.added), ...minusSet(c.removed, n.removed)]).sort();
    const minus = unique([...minusSet(c.added, n.added), ...minusSet(n.removed, c.removed)]).sort();
    return { subject: c.subject, current: c, candidate: n, plus, minus };
  });
}

export function renderPreview(row: PreviewRow): string {
  const plan = (d: LocalDecision) =>
    d.error !== undefined
      ? `failed: ${d.error}`
      : d.added.length + d.removed.length === 0
        ? `no change${d.note && d.note !== 'dry run' ? ` (${d.note})` : ''}`
        : [...d.added.map((l) => `add ${l}`), ...d.removed.map((l) => `remove ${l}`)].join(', ');
  const diff = [...row.plus.map((l) => `+${l}`), ...row.minus.map((l) => `-${l}`)];
  return [
    `${row.subject}: ${diff.length > 0 ? diff.join(' ') : 'no difference'}`,
    `  current config:   ${plan(row.current)}`,
    `  candidate config: ${plan(row.candidate)}`,
  ].join('\n');
}

/**
 * A dry-run evaluator that uses `text` (the candidate config, read from `file`) for every repository
 * instead of the repository's own `.gitea/triage.yml` (and instead of `TRIAGE_CONFIG`).
 * @throws ToolError naming the file and line when the candidate does not parse.
 */
export function candidateEvaluator(parts: { gitea: GiteaApi; ownership: OwnershipStore; log: Logger; config: Config; botLogin: () => string | undefined; text: string; file: string }): TriageEvaluator {
  const parsed = parseTriageConfig(parts.text, parts.file);
  if ('problem' in parsed) {
    const p = parsed.problem;
    throw new ToolError(`${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}`);
  }
  const context = new ContextLoader({
    gitea: parts.gitea,
    ttlMs: parts.config.contextTtlMs,
    log: parts.log,
    overrideConfig: { text: parts.text, file: parts.file },
  });
  const store = parts.ownership;
  return new TriageEvaluator({
    gitea: parts.gitea,
    context,
    store,
    applier: new LabelApplier({ gitea: parts.gitea, store }),
    botLogin: parts.botLogin,
    dryRun: true,
    log: parts.log,
  });
}

/**
 * The service's evaluator (`createTriageEvaluator`) on `store`'s ownership records (the service's
 * store for a real run, scratch records for a dry run), dry run or not.
 */
export function serviceEvaluator(parts: { gitea: GiteaApi; store: TriageParts['store']; log: Logger; config: Config; botLogin: () => string | undefined; dryRun: boolean }): TriageEvaluator {
  return createTriageEvaluator({
    store: parts.store,
    gitea: parts.gitea,
    log: parts.log,
    config: parts.config,
    dryRun: parts.dryRun,
    botLogin: parts.botLogin,
  });
}

// ---------------------------------------------------------------------------------------------
// --failed: reprocess dead-lettered deliveries for real

export interface Reprocessed {
  id: string;
  subject: string | null;
  event: string;
  action: string | null;
  /** The error it had been dead-lettered with. */
  previousError: string | null;
  state: StoredDelivery['state'];
  lastError: string | null;
}

/**
 * Puts failed deliveries back to pending in the store and evaluates their subjects once through the
 * real scheduler and `evaluator` (not a dry run), each under its lease as `holder` (the service's
 * scheduler takes the same leases: the two never evaluate one issue at once): success marks them
 * done; a new failure leaves them failed with the new error. A subject whose lease another process
 * holds is left to it: its rows stay pending, and that process (or its orphan sweep) evaluates them.
 */
export async function reprocessFailed(
  store: Pick<Store, 'deliveries' | 'leases'>,
  rows: readonly StoredDelivery[],
  options: { evaluator: Evaluator; log: Logger; concurrency: number; holder: string; leaseTtlMs: number; onProgress?(done: number, total: number): void },
): Promise<Reprocessed[]> {
  const failed = rows.filter((r) => r.state === 'failed');
  const ids = failed.map((r) => r.id);
  if (ids.length === 0) return [];
  await store.deliveries.requeue(ids);
  const subjects = unique(failed.flatMap((r) => (r.subject !== null ? [r.subject] : [])));
  // A failed row without a subject cannot be evaluated: back to failed with the reason.
  const orphans = failed.filter((r) => r.subject === null).map((r) => r.id);
  if (orphans.length > 0) await store.deliveries.markFailed(orphans, 'no subject: nothing to evaluate');
  await runScheduler({ deliveries: store.deliveries, leases: store.leases }, options.evaluator, subjects, ids, options);
  const out: Reprocessed[] = [];
  for (const r of failed) {
    const now = await store.deliveries.get(r.id);
    out.push({
      id: r.id,
      subject: r.subject,
      event: r.event,
      action: r.action,
      previousError: r.lastError,
      state: now?.state ?? r.state,
      lastError: now?.lastError ?? null,
    });
  }
  return out;
}

export function renderReprocessed(r: Reprocessed): string {
  const what = `${r.event}${r.action ? `/${r.action}` : ''}`;
  const outcome =
    r.state === 'done'
      ? 'done'
      : r.state === 'failed'
        ? `still failed: ${r.lastError ?? 'unknown error'}`
        : r.state === 'pending'
          ? 'pending: another process (the service) holds its lease and evaluates it'
          : r.state;
  return `${r.id}  ${what}  ${r.subject ?? '-'}  ${outcome}`;
}

// ---------------------------------------------------------------------------------------------

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

function minusSet(a: readonly string[], b: readonly string[]): string[] {
  const drop = new Set(b);
  return a.filter((x) => !drop.has(x));
}
