import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Batch, CoalescerApi, Notice } from './api.js';

export interface CoalescerOptions {
  /** How long a subject's window stays open after its first notice; 0: flush on the next tick. */
  windowMs: number;
  /** Total notices waiting (all subjects) that flush everything at once. */
  maxEvents: number;
  /** Receives each flushed batch (synchronously, from a timer or from `add`/`flush`). */
  onFlush: (batch: Batch) => void;
  /** Monotonic clock in ms; `performance.now` by default. Tests inject one and call {@link Coalescer.flushDue}. */
  now?: () => number;
}

/** A batch as this coalescer builds it: which deliveries belong to which subject (for the `batched` log lines). */
export interface GroupedBatch extends Batch {
  groups: { subject: string; deliveryIds: string[] }[];
}

/** True when a batch carries its per-subject grouping (batches from {@link Coalescer} do). */
export function isGroupedBatch(batch: Batch): batch is GroupedBatch {
  return Array.isArray((batch as Partial<GroupedBatch>).groups);
}

interface Window {
  deadline: number;
  ids: string[];
}

/**
 * Groups notices per subject into micro-batches (docs/architecture.md, "The stages": N events of one
 * subject in a window give one evaluation). Holds only delivery ids; the payloads stay in the journal.
 *
 * Every window has the same length, so deadlines are ordered like first notices: the Map's
 * insertion order is deadline order and one timer, armed for the first entry, is enough.
 */
export class Coalescer implements CoalescerApi {
  private readonly windowMs: number;
  private readonly maxEvents: number;
  private readonly onFlush: (batch: Batch) => void;
  private readonly now: () => number;
  private readonly windows = new Map<string, Window>();
  private waiting = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private stopped = false;
  private counter = 0;
  private readonly prefix = randomBytes(3).toString('hex');

  constructor(options: CoalescerOptions) {
    if (!Number.isFinite(options.windowMs) || options.windowMs < 0) {
      throw new RangeError(`windowMs must be a number >= 0, got ${options.windowMs}`);
    }
    if (!Number.isInteger(options.maxEvents) || options.maxEvents < 1) {
      throw new RangeError(`maxEvents must be an integer >= 1, got ${options.maxEvents}`);
    }
    this.windowMs = options.windowMs;
    this.maxEvents = options.maxEvents;
    this.onFlush = options.onFlush;
    this.now = options.now ?? (() => performance.now());
  }

  get size(): number {
    return this.waiting;
  }

  /** True while notices of `subject` wait for their window here. */
  holds(subject: string): boolean {
    return this.windows.has(subject);
  }

  add(notice: Notice): void {
    let window = this.windows.get(notice.subject);
    if (!window) {
      window = { deadline: this.now() + this.windowMs, ids: [] };
      this.windows.set(notice.subject, window);
    }
    window.ids.push(notice.deliveryId);
    this.waiting++;
    if (this.waiting >= this.maxEvents) {
      this.flush();
      return;
    }
    this.arm();
  }

  /** Flushes every waiting subject now, in one batch. */
  flush(): void {
    this.emit([...this.windows.keys()]);
  }

  /** Flushes, in one batch, the subjects whose window has closed by `now()`. */
  flushDue(): void {
    const now = this.now();
    const due: string[] = [];
    for (const [subject, window] of this.windows) {
      if (window.deadline > now) break;
      due.push(subject);
    }
    this.emit(due);
  }

  /** Clears the timers. Waiting notices stay (their deliveries are pending in the journal); `flush` still works. */
  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private emit(subjects: string[]): void {
    if (subjects.length > 0) {
      const groups: GroupedBatch['groups'] = [];
      const deliveryIds: string[] = [];
      for (const subject of subjects) {
        const window = this.windows.get(subject)!;
        this.windows.delete(subject);
        this.waiting -= window.ids.length;
        groups.push({ subject, deliveryIds: window.ids });
        for (const id of window.ids) deliveryIds.push(id);
      }
      const batch: GroupedBatch = { id: `b-${++this.counter}-${this.prefix}`, subjects, deliveryIds, groups };
      // State is consistent before the callback runs: a throwing onFlush loses no later notices.
      try {
        this.onFlush(batch);
      } finally {
        this.arm();
      }
      return;
    }
    this.arm();
  }

  /** Arms the single timer (or immediate) for the earliest open window. */
  private arm(): void {
    if (this.stopped) return;
    const first = this.windows.values().next();
    if (first.done) {
      this.disarm();
      return;
    }
    if (this.windowMs === 0) {
      // Next tick, not now: a burst added in one tick still forms one batch.
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = undefined;
          this.flush();
        });
        // Not unref()-ed: an unref'd immediate lets libuv block in poll, delaying the flush
        // until some unrelated I/O wakes the loop. It holds the process for one tick at most.
      }
      return;
    }
    const deadline = first.value.deadline;
    if (this.timer && this.timerDeadline === deadline) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDeadline = deadline;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDeadline = Infinity;
        this.flushDue();
      },
      Math.max(0, Math.ceil(deadline - this.now())),
    );
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    this.timerDeadline = Infinity;
  }
}
