import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import type { Batch } from '../../../src/coalescer/api.js';
import type { JournalApi } from '../../../src/journal/api.js';
import { Journal } from '../../../src/journal/journal.js';
import type { NewDelivery } from '../../../src/journal/types.js';
import { type Logger, createLogger, silentLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { type HandOverLimits, Scheduler, type SchedulerHooks } from '../../../src/scheduler/scheduler.js';
import { type EvaluationResult, type Evaluator, PermanentError, type WorkItem } from '../../../src/scheduler/types.js';
import { waitFor } from '../../helpers/wait.js';

const dirs: string[] = [];
const journals: Journal[] = [];
const schedulers: Scheduler[] = [];

afterEach(async () => {
  for (const s of schedulers.splice(0)) await s.stop(1000);
  for (const j of journals.splice(0)) await j.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
  dirs.push(dir);
  return dir;
}

function openJournal(dataDir = tempDir()): Journal {
  const journal = Journal.open({ dataDir, sync: 'normal', log: silentLogger() });
  journals.push(journal);
  return journal;
}

let counter = 0;
/** A journaled `issues` delivery of `owner/repo#number` whose payload was updated at `updatedAt`. */
function edit(number: number, updatedAt: string | null, extra: Partial<NewDelivery> = {}): NewDelivery {
  counter++;
  const id = `d-${counter}`;
  return {
    id,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `acme/widgets#${number}`,
    repo: 'acme/widgets',
    number,
    updatedAt,
    sender: 'alice',
    headers: { 'x-gitea-delivery': id },
    body: JSON.stringify({ action: 'edited', issue: { number, title: `edit ${counter}`, updated_at: updatedAt } }),
    state: 'pending',
    ...extra,
  };
}

async function journalAll(journal: Journal, deliveries: NewDelivery[]): Promise<void> {
  await Promise.all(deliveries.map((d) => journal.append(d)));
}

/** The batch the coalescer would flush for these deliveries. */
function batchOf(deliveries: NewDelivery[], id = `b-test-${++counter}`): Batch {
  return { id, subjects: [...new Set(deliveries.map((d) => d.subject!))], deliveryIds: deliveries.map((d) => d.id) };
}

function capture(): { log: Logger; lines: LogCapture } {
  const lines = new LogCapture();
  return { log: createLogger({ level: 'debug', format: 'json', stream: lines.stream }), lines };
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Records every work item; `behave` decides what each call does (default: succeed). */
class RecordingEvaluator implements Evaluator {
  readonly items: WorkItem[] = [];
  readonly running = new Map<string, number>();
  maxRunningPerSubject = 0;
  maxRunning = 0;
  constructor(private readonly behave: (item: WorkItem) => Promise<EvaluationResult> | EvaluationResult = () => ok) {}

  async evaluate(item: WorkItem): Promise<EvaluationResult> {
    this.items.push(item);
    const key = item.subject.key;
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
    this.maxRunningPerSubject = Math.max(this.maxRunningPerSubject, this.running.get(key)!);
    this.maxRunning = Math.max(this.maxRunning, [...this.running.values()].reduce((a, b) => a + b, 0));
    try {
      return await this.behave(item);
    } finally {
      this.running.set(key, this.running.get(key)! - 1);
    }
  }

  itemsFor(key: string): WorkItem[] {
    return this.items.filter((i) => i.subject.key === key);
  }
}

const ok: EvaluationResult = { added: ['kind/bug'], removed: [] };

function scheduler(options: {
  journal: Journal;
  evaluator: Evaluator;
  concurrency?: number;
  maxAttempts?: number;
  log?: Logger;
  hooks?: SchedulerHooks;
  handOver?: Partial<HandOverLimits>;
}): Scheduler {
  const s = new Scheduler({
    journal: options.journal,
    evaluator: options.evaluator,
    concurrency: options.concurrency ?? 4,
    maxAttempts: options.maxAttempts ?? 3,
    log: options.log ?? silentLogger(),
    retryBaseMs: 2,
    retryMaxMs: 10,
    hooks: options.hooks,
    handOver: options.handOver,
  });
  schedulers.push(s);
  return s;
}

function shuffle<T>(list: T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** 30 distinct updated_at times, one minute apart. */
const times = Array.from({ length: 30 }, (_, i) => new Date(Date.UTC(2024, 4, 1, 10, i)).toISOString());
const latest = times[times.length - 1]!;

describe('Scheduler: one evaluation on the newest state', () => {

  it("uses the receiver's parse of a payload instead of parsing the journaled body again; a retry parses the body", async () => {
    const journal = openJournal();
    let calls = 0;
    const evaluator = new RecordingEvaluator(() => {
      if (++calls === 1) throw new Error('transient');
      return ok;
    });
    const s = scheduler({ journal, evaluator });
    const [a, b] = [edit(8, '2026-01-01T00:00:01Z'), edit(8, '2026-01-01T00:00:02Z')];
    await journalAll(journal, [a, b]);
    const parsedByReceiver = JSON.parse(a.body) as Record<string, unknown>;
    s.rememberPayload(a.id, parsedByReceiver, Buffer.byteLength(a.body)); // b was not handed over: parsed from the journal

    s.schedule(batchOf([a, b]));
    await s.onIdle();

    const [first, retry] = evaluator.itemsFor('acme/widgets#8');
    expect(first!.deliveries[0]!.payload).toBe(parsedByReceiver);
    expect(first!.deliveries[1]!.payload).toEqual(JSON.parse(b.body));
    // The hand-over is used once: the retry reads both from the journal, with the same content.
    expect(retry!.deliveries[0]!.payload).not.toBe(parsedByReceiver);
    expect(retry!.deliveries[0]!.payload).toEqual(parsedByReceiver);
    expect(retry!.attempt).toBe(2);
  });

  it('keeps the hand-over within its byte cap: large bodies are not kept, the oldest go first, evaluations parse the rest from the journal', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator();
    const s = scheduler({ journal, evaluator, handOver: { maxEntries: 100, maxBytes: 3000, maxBodyBytes: 1500 } });
    // Eight issues, each body about 1 KB, and one of about 2 KB (over maxBodyBytes).
    const padded = (n: number, size: number) => {
      const d = edit(n, '2026-01-01T00:00:01Z');
      return { ...d, body: JSON.stringify({ action: 'edited', issue: { number: n, body: 'x'.repeat(size), updated_at: d.updatedAt } }) };
    };
    const small = Array.from({ length: 8 }, (_, i) => padded(20 + i, 1000));
    const large = padded(40, 2000);
    await journalAll(journal, [...small, large]);
    const handedOver = new Map<string, Record<string, unknown>>();
    let maxBytes = 0;
    for (const d of [...small, large]) {
      const payload = JSON.parse(d.body) as Record<string, unknown>;
      handedOver.set(d.id, payload);
      s.rememberPayload(d.id, payload, Buffer.byteLength(d.body));
      maxBytes = Math.max(maxBytes, s.handOverStats.bytes);
    }
    expect(maxBytes).toBeLessThanOrEqual(3000);
    const stats = s.handOverStats;
    expect(stats).toMatchObject({ entries: 2, tooLarge: 1, evicted: 6 });
    expect(stats.bytes).toBe(Buffer.byteLength(small[6]!.body) + Buffer.byteLength(small[7]!.body));

    s.schedule(batchOf([...small, large]));
    await s.onIdle();
    // Every delivery is evaluated on its full payload; only the two still held were the receiver's objects.
    const byId = new Map(evaluator.items.flatMap((i) => i.deliveries.map((d) => [d.id, d.payload] as const)));
    expect(byId.size).toBe(9);
    const reused = [...byId].filter(([id, payload]) => payload === handedOver.get(id)).map(([id]) => id);
    expect(reused.sort()).toEqual([small[6]!.id, small[7]!.id].sort());
    for (const [id, payload] of byId) expect(payload).toEqual(handedOver.get(id));
    expect(s.handOverStats).toMatchObject({ entries: 0, bytes: 0 });
  });
  it.each([
    ['shuffled', shuffle(times)],
    ['reverse', [...times].reverse()],
  ])('evaluates 30 edits of one issue (%s arrival) once, newest by updated_at', async (_order, arrival) => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator();
    const { log, lines } = capture();
    const s = scheduler({ journal, evaluator, log });
    const edits = arrival.map((t) => edit(7, t));
    await journalAll(journal, edits);

    const batch = batchOf(edits);
    s.schedule(batch);
    await s.onIdle();

    expect(evaluator.items).toHaveLength(1);
    const item = evaluator.items[0]!;
    expect(item.subject).toMatchObject({ kind: 'issue', key: 'acme/widgets#7', owner: 'acme', repo: 'widgets', number: 7 });
    expect(item.batch).toBe(batch.id);
    expect(item.attempt).toBe(1);
    expect(item.deliveries.map((d) => d.updatedAt)).toEqual(times);
    expect(item.newest.updatedAt).toBe(latest);
    expect((item.newest.payload.issue as { updated_at: string }).updated_at).toBe(latest);
    expect(journal.pendingCount()).toBe(0);
    expect(journal.query({ state: 'done' })).toHaveLength(30);

    // The story of each delivery is greppable: batched (each id), then one evaluated line.
    for (const d of edits) expect(lines.find({ msg: 'batched', delivery: d.id, batch: batch.id, subject: 'acme/widgets#7' })).toHaveLength(1);
    const evaluated = lines.find({ msg: 'evaluated' });
    expect(evaluated).toHaveLength(1);
    expect(evaluated[0]).toMatchObject({
      level: 'info',
      delivery: item.newest.id,
      batch: batch.id,
      repo: 'acme/widgets',
      number: 7,
      attempt: 1,
      added: ['kind/bug'],
      removed: [],
    });
    expect((evaluated[0]!.deliveries as string[]).sort()).toEqual(edits.map((d) => d.id).sort());
    expect(typeof evaluated[0]!.durationMs).toBe('number');
  });

  it('compares updated_at as times, not strings; missing ones sort first, ties by journal order', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator();
    const s = scheduler({ journal, evaluator });
    const edits = [
      edit(1, '2024-05-01T11:00:00Z'), // newest: 11:00 UTC
      edit(1, '2024-05-01T12:30:00+02:00'), // 10:30 UTC, later as a string
      edit(1, null),
      edit(1, '2024-05-01T10:00:00Z'),
      edit(1, '2024-05-01T10:00:00Z'),
    ];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();
    expect(evaluator.items[0]!.deliveries.map((d) => d.id)).toEqual([edits[2]!.id, edits[3]!.id, edits[4]!.id, edits[1]!.id, edits[0]!.id]);
    expect(evaluator.items[0]!.newest.id).toBe(edits[0]!.id);
  });
});

describe('Scheduler: concurrency', () => {
  it('runs two subjects at once', async () => {
    const journal = openJournal();
    const gates = new Map<string, Deferred>([
      ['acme/widgets#1', deferred()],
      ['acme/widgets#2', deferred()],
    ]);
    const evaluator = new RecordingEvaluator(async (item) => {
      await gates.get(item.subject.key)!.promise;
      return ok;
    });
    const s = scheduler({ journal, evaluator, concurrency: 2 });
    const edits = [edit(1, times[0]!), edit(2, times[1]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));

    // Both are inside evaluate() and neither can finish before the other is released.
    await waitFor(() => evaluator.items.length === 2, { what: 'both subjects evaluating' });
    expect(s.running).toBe(2);
    expect([...evaluator.running.values()]).toEqual([1, 1]);
    gates.get('acme/widgets#2')!.resolve();
    await waitFor(() => journal.get(edits[1]!.id)!.state === 'done', { what: '#2 done' });
    expect(journal.get(edits[0]!.id)!.state).toBe('pending');
    gates.get('acme/widgets#1')!.resolve();
    await s.onIdle();
    expect(journal.pendingCount()).toBe(0);
  });

  it('never evaluates one subject twice at once; deliveries added meanwhile get a second evaluation', async () => {
    const journal = openJournal();
    const gate = deferred();
    const evaluator = new RecordingEvaluator(async (item) => {
      if (evaluator.items.length === 1) await gate.promise;
      return { added: [], removed: [], note: `saw ${item.deliveries.length}` };
    });
    const s = scheduler({ journal, evaluator, concurrency: 4 });
    const first = [edit(3, times[0]!), edit(3, times[1]!)];
    await journalAll(journal, first);
    s.schedule(batchOf(first));
    await waitFor(() => s.running === 1, { what: 'first evaluation running' });

    const later = [edit(3, times[2]!), edit(3, times[3]!)];
    await journalAll(journal, later);
    s.schedule(batchOf(later.slice(0, 1)));
    s.schedule(batchOf(later.slice(1)));
    expect(s.running).toBe(1);
    expect(evaluator.items).toHaveLength(1);

    gate.resolve();
    await s.onIdle();
    expect(evaluator.maxRunningPerSubject).toBe(1);
    expect(evaluator.items).toHaveLength(2);
    expect(evaluator.items[0]!.deliveries.map((d) => d.id)).toEqual(first.map((d) => d.id));
    expect(evaluator.items[1]!.deliveries.map((d) => d.id)).toEqual(later.map((d) => d.id));
    expect(journal.pendingCount()).toBe(0);
  });

  it('keeps at most concurrency evaluations running for many subjects', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return ok;
    });
    const s = scheduler({ journal, evaluator, concurrency: 3 });
    const edits = Array.from({ length: 50 }, (_, i) => edit(i + 1, times[0]!));
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    // Only subject names wait; p-queue holds at most 2 × concurrency tasks.
    expect(s.queued + s.running).toBe(50);
    await s.onIdle();
    expect(evaluator.items).toHaveLength(50);
    expect(evaluator.maxRunning).toBe(3);
    expect(journal.pendingCount()).toBe(0);
  });
});

describe('Scheduler: failures', () => {
  it('retries a throwing evaluation, then dead-letters it with the reason; other subjects are done', async () => {
    const journal = openJournal();
    const { log, lines } = capture();
    const outcomes: string[] = [];
    const evaluator = new RecordingEvaluator(async (item) => {
      if (item.subject.key === 'acme/widgets#1') throw new Error('Gitea answered 502 Bad Gateway');
      return ok;
    });
    const s = scheduler({
      journal,
      evaluator,
      maxAttempts: 3,
      log,
      hooks: { onEvaluated: (outcome, _ms, item) => outcomes.push(`${item.subject.key}:${outcome}`) },
    });
    const edits = [edit(1, times[0]!), edit(2, times[0]!), edit(1, times[1]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();

    expect(evaluator.itemsFor('acme/widgets#1').map((i) => i.attempt)).toEqual([1, 2, 3]);
    for (const id of [edits[0]!.id, edits[2]!.id]) {
      expect(journal.get(id)).toMatchObject({ state: 'failed', attempts: 3, lastError: 'Gitea answered 502 Bad Gateway' });
    }
    expect(journal.get(edits[1]!.id)!.state).toBe('done');
    expect(outcomes.sort()).toEqual(['acme/widgets#1:failed', 'acme/widgets#1:retry', 'acme/widgets#1:retry', 'acme/widgets#2:done']);

    const retries = lines.find({ msg: 'retry scheduled' });
    expect(retries.map((l) => [l.level, l.attempt, l.error])).toEqual([
      ['warn', 1, 'Gitea answered 502 Bad Gateway'],
      ['warn', 2, 'Gitea answered 502 Bad Gateway'],
    ]);
    const failed = lines.find({ msg: 'failed' });
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 'error', attempt: 3, error: 'Gitea answered 502 Bad Gateway', delivery: edits[2]!.id });
    expect(String(failed[0]!.error)).not.toContain('\n    at ');
  });

  it('handles an evaluator that throws synchronously like a rejected promise', async () => {
    const journal = openJournal();
    const evaluator: Evaluator = {
      evaluate(item) {
        if (item.subject.key === 'acme/widgets#1') throw new TypeError('cannot read properties of undefined');
        return Promise.resolve(ok);
      },
    };
    const s = scheduler({ journal, evaluator, maxAttempts: 2 });
    const edits = [edit(1, times[0]!), edit(2, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();
    expect(journal.get(edits[0]!.id)).toMatchObject({ state: 'failed', attempts: 2, lastError: 'cannot read properties of undefined' });
    expect(journal.get(edits[1]!.id)!.state).toBe('done');
  });

  it('dead-letters a PermanentError at once', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator(async () => {
      throw new PermanentError('issue acme/widgets#4 does not exist (404)');
    });
    const s = scheduler({ journal, evaluator, maxAttempts: 5 });
    const edits = [edit(4, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();
    expect(evaluator.items).toHaveLength(1);
    expect(journal.get(edits[0]!.id)).toMatchObject({ state: 'failed', attempts: 1, lastError: 'issue acme/widgets#4 does not exist (404)' });
  });

  it('dead-letters a row whose payload does not parse and evaluates the others', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator();
    const { log, lines } = capture();
    const s = scheduler({ journal, evaluator, log });
    const broken = edit(5, times[3]!, { body: '{"action": "edited", "issue": ' });
    const good = [edit(5, times[0]!), broken, edit(5, times[1]!)];
    await journalAll(journal, good);
    s.schedule(batchOf(good));
    await s.onIdle();
    expect(evaluator.items).toHaveLength(1);
    expect(evaluator.items[0]!.deliveries.map((d) => d.id)).toEqual([good[0]!.id, good[2]!.id]);
    expect(journal.get(broken.id)!.state).toBe('failed');
    expect(journal.get(broken.id)!.lastError).toMatch(/^payload is not valid JSON/);
    expect(lines.find({ msg: 'failed', delivery: broken.id, level: 'error' })).toHaveLength(1);
    expect(journal.pendingCount()).toBe(0);
  });

  it('survives a journal that cannot be written and finishes once it can', async () => {
    const journal = openJournal();
    const { log, lines } = capture();
    const evaluator = new RecordingEvaluator(async () => {
      if (evaluator.items.length === 1) journal.db.pragma('query_only = 1'); // disk "full" during the first run
      return ok;
    });
    const s = scheduler({ journal, evaluator, log });
    const edits = [edit(6, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await waitFor(() => lines.find({ msg: 'evaluation bookkeeping failed: journal unavailable' }).length > 0, {
      what: 'bookkeeping failure logged',
    });
    expect(journal.get(edits[0]!.id)!.state).toBe('pending');
    journal.db.pragma('query_only = 0');
    await s.onIdle();
    expect(journal.get(edits[0]!.id)!.state).toBe('done');
    expect(evaluator.items.length).toBeGreaterThanOrEqual(2);
  });
});

describe('Scheduler: resume and stop', () => {
  it('resumes rows left pending by a previous journal instance, page by page', async () => {
    const dataDir = tempDir();
    const before = Journal.open({ dataDir, sync: 'full', log: silentLogger() });
    const edits = Array.from({ length: 60 }, (_, i) => edit((i % 40) + 1, times[i % 30]!));
    await journalAll(before, edits);
    await before.close();

    const journal = openJournal(dataDir);
    let maxQueued = 0;
    let s: Scheduler | undefined;
    const evaluator = new RecordingEvaluator(async () => {
      maxQueued = Math.max(maxQueued, s!.queued);
      await new Promise((resolve) => setImmediate(resolve));
      return ok;
    });
    s = scheduler({ journal, evaluator, concurrency: 2 });
    s.resume();
    await s.onIdle();

    expect(evaluator.items).toHaveLength(40); // one evaluation per subject
    expect(evaluator.maxRunningPerSubject).toBe(1);
    expect(journal.pendingCount()).toBe(0);
    expect(evaluator.items.find((i) => i.subject.key === 'acme/widgets#1')!.deliveries).toHaveLength(2);
    // The backlog was read a page at a time, not all 40 subjects at once.
    expect(maxQueued).toBeLessThan(40);
  });

  it('stop() waits for a running evaluation and starts nothing new', async () => {
    const journal = openJournal();
    const gate = deferred();
    const evaluator = new RecordingEvaluator(async () => {
      await gate.promise;
      return ok;
    });
    const s = scheduler({ journal, evaluator, concurrency: 1 });
    const edits = [edit(1, times[0]!), edit(2, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await waitFor(() => s.running === 1, { what: 'an evaluation running' });

    let stopped: boolean | undefined;
    const stopping = s.stop(10_000).then((r) => (stopped = r));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBeUndefined(); // still waiting for the running one
    gate.resolve();
    expect(await stopping).toBe(true);

    expect(evaluator.items).toHaveLength(1);
    expect(journal.get(edits[0]!.id)!.state).toBe('done');
    expect(journal.get(edits[1]!.id)!.state).toBe('pending'); // left for the next start
    s.schedule(batchOf([edits[1]!]));
    await s.onIdle();
    expect(evaluator.items).toHaveLength(1);
  });

  it('stop() gives up after its timeout and reports it', async () => {
    const journal = openJournal();
    const gate = deferred();
    const evaluator = new RecordingEvaluator(async () => {
      await gate.promise;
      return ok;
    });
    const s = scheduler({ journal, evaluator });
    const edits = [edit(1, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await waitFor(() => s.running === 1, { what: 'an evaluation running' });
    expect(await s.stop(20)).toBe(false);
    gate.resolve();
    await s.onIdle();
    expect(s.running).toBe(0);
  });

  it('stop() clears retry timers; the rows stay pending', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator(async () => {
      throw new Error('temporarily down');
    });
    const s = new Scheduler({ journal, evaluator, concurrency: 1, maxAttempts: 5, log: silentLogger(), retryBaseMs: 60_000 });
    schedulers.push(s);
    const edits = [edit(1, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await waitFor(() => s.retrying === 1, { what: 'a retry timer' });
    expect(await s.stop(1000)).toBe(true);
    expect(s.retrying).toBe(0);
    await s.onIdle();
    expect(journal.get(edits[0]!.id)).toMatchObject({ state: 'pending', attempts: 1, lastError: 'temporarily down' });
  });

  it('reports batches to the onBatch hook and rejects bad options', async () => {
    const journal = openJournal();
    const seen: string[] = [];
    const s = scheduler({ journal, evaluator: new RecordingEvaluator(), hooks: { onBatch: (b) => seen.push(b.id) } });
    const edits = [edit(1, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits, 'b-hook'));
    await s.onIdle();
    expect(seen).toEqual(['b-hook']);
    expect(() => new Scheduler({ journal, evaluator: new RecordingEvaluator(), concurrency: 0, maxAttempts: 1, log: silentLogger() })).toThrow(
      'concurrency must be an integer >= 1, got 0',
    );
  });
});

/** Row states as another connection reads them: what is committed, not what this process sees. */
function committedStates(journal: Journal): Map<string, string> {
  const reader = new Database(journal.path, { readonly: true });
  try {
    const rows = reader.prepare('SELECT id, state FROM deliveries').all() as { id: string; state: string }[];
    return new Map(rows.map((r) => [r.id, r.state]));
  } finally {
    reader.close();
  }
}

describe('Scheduler: group-committed bookkeeping', () => {
  it('records evaluations that finish together in one commit; onIdle resolves once they are on disk', async () => {
    const journal = openJournal();
    const evaluator = new RecordingEvaluator();
    const s = scheduler({ journal, evaluator, concurrency: 8 });
    const edits = Array.from({ length: 30 }, (_, i) => edit(i + 1, times[i]!));
    await journalAll(journal, edits);
    const commits = journal.commitCount;

    s.schedule(batchOf(edits));
    await s.onIdle();

    expect(evaluator.items).toHaveLength(30);
    const committed = committedStates(journal);
    for (const d of edits) expect(committed.get(d.id)).toBe('done');
    // Each `done` used to be its own transaction (30 commits, 30 fsyncs with JOURNAL_SYNC=full).
    expect(journal.commitCount - commits).toBeLessThan(30);
  });

  it('lets I/O run while a batch of quick evaluations goes through', async () => {
    const journal = openJournal();
    // Each evaluation holds the thread 2 ms (a cached context, a big payload): 20 of them chained
    // through microtasks would keep every webhook waiting for 40 ms.
    const evaluator = new RecordingEvaluator(() => {
      const until = performance.now() + 2;
      while (performance.now() < until) {
        // busy
      }
      return ok;
    });
    const s = scheduler({ journal, evaluator, concurrency: 4 });
    const edits = Array.from({ length: 20 }, (_, i) => edit(i + 1, times[i]!));
    await journalAll(journal, edits);
    let evaluatedWhenIoRan: number | undefined;
    s.schedule(batchOf(edits));
    setImmediate(() => (evaluatedWhenIoRan = evaluator.items.length));
    await s.onIdle();
    expect(evaluator.items).toHaveLength(20);
    expect(evaluatedWhenIoRan).toBeLessThan(20);
  });

  it('stop() returns once what the finished evaluations recorded is on disk', async () => {
    const journal = openJournal();
    const s = scheduler({ journal, evaluator: new RecordingEvaluator() });
    const edits = [edit(1, times[0]!), edit(2, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await waitFor(() => edits.every((d) => journal.get(d.id)!.state === 'done'), { what: 'both evaluated' });
    expect(await s.stop(1000)).toBe(true);
    const committed = committedStates(journal);
    expect(edits.map((d) => committed.get(d.id))).toEqual(['done', 'done']);
  });

  it('retries and dead-letters only once the attempt is on disk', async () => {
    const journal = openJournal();
    const seen: string[] = [];
    const evaluator = new RecordingEvaluator(async () => {
      throw new Error('Gitea answered 502 Bad Gateway');
    });
    const s = scheduler({
      journal,
      evaluator,
      maxAttempts: 2,
      hooks: {
        // What another process (explain, the metrics scrape of a restarted service) would read then.
        onEvaluated: (outcome, _ms, item) => seen.push(`${outcome}:${committedStates(journal).get(item.newest.id)}:${readAttempts(journal, item.newest.id)}`),
      },
    });
    const edits = [edit(1, times[0]!)];
    await journalAll(journal, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();
    expect(seen).toEqual(['retry:pending:1', 'failed:failed:2']);
  });

  it('evaluates a subject again when the commit of its done was lost', async () => {
    const real = openJournal();
    const { log, lines } = capture();
    let lose = true;
    // The real journal, except that SQLite rolls back the group of the first `done` (as it does on
    // SQLITE_FULL or SQLITE_IOERR): the row is pending again and nothing else knows.
    const journal = new Proxy(real, {
      get(target, prop) {
        if (prop === 'markDone') {
          return (ids: readonly string[]) => {
            target.markDone(ids);
            if (lose) {
              lose = false;
              target.db.exec('ROLLBACK');
            }
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as JournalApi;
    const evaluator = new RecordingEvaluator();
    const s = new Scheduler({ journal, evaluator, concurrency: 2, maxAttempts: 3, log, retryBaseMs: 2, retryMaxMs: 10 });
    schedulers.push(s);
    const edits = [edit(1, times[0]!)];
    await journalAll(real, edits);
    s.schedule(batchOf(edits));
    await s.onIdle();

    expect(evaluator.items).toHaveLength(2);
    expect(committedStates(real).get(edits[0]!.id)).toBe('done');
    expect(lines.find({ msg: 'evaluation bookkeeping failed: journal unavailable', level: 'error' })).toHaveLength(1);
  });
});

function readAttempts(journal: Journal, id: string): number | undefined {
  const reader = new Database(journal.path, { readonly: true });
  try {
    return (reader.prepare('SELECT attempts FROM deliveries WHERE id = ?').get(id) as { attempts: number } | undefined)?.attempts;
  } finally {
    reader.close();
  }
}
