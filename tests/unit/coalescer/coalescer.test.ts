import { performance } from 'node:perf_hooks';
import { describe, expect, it } from '@jest/globals';
import type { Batch } from '../../../src/coalescer/api.js';
import { Coalescer, type GroupedBatch, isGroupedBatch } from '../../../src/coalescer/coalescer.js';

/** Collects flushed batches; `next()` resolves with the next one (already flushed or future). */
function collector() {
  const batches: Batch[] = [];
  const waiters: ((b: Batch) => void)[] = [];
  let taken = 0;
  return {
    batches,
    onFlush(batch: Batch) {
      batches.push(batch);
      const waiter = waiters.shift();
      if (waiter) {
        taken++;
        waiter(batch);
      }
    },
    next(): Promise<Batch> {
      if (taken < batches.length) return Promise.resolve(batches[taken++]!);
      return new Promise((resolve) => waiters.push(resolve));
    },
  };
}

const notice = (subject: string, i: number) => ({ deliveryId: `${subject}/d${i}`, subject });

describe('Coalescer', () => {
  it('says which subjects wait in a window (the orphan sweep leaves those alone), until their flush', () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 60_000, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    coalescer.add(notice('acme/widgets#1', 0));
    expect(coalescer.holds('acme/widgets#1')).toBe(true);
    expect(coalescer.holds('acme/widgets#2')).toBe(false);
    coalescer.flush();
    coalescer.stop();
    expect(c.batches).toHaveLength(1);
    expect(coalescer.holds('acme/widgets#1')).toBe(false);
  });

  it('turns 30 notices of one subject inside the window into one batch', async () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 50, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    const started = performance.now();
    for (let i = 0; i < 30; i++) coalescer.add(notice('acme/widgets#7', i));
    expect(coalescer.size).toBe(30);
    expect(c.batches).toHaveLength(0);

    const batch = await c.next();
    // The window closes windowMs after the first notice, not before (1 ms of timer rounding).
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
    expect(batch.subjects).toEqual(['acme/widgets#7']);
    expect(batch.deliveryIds).toEqual(Array.from({ length: 30 }, (_, i) => `acme/widgets#7/d${i}`));
    expect(batch.id).toMatch(/^b-\d+-[0-9a-f]+$/);
    expect(coalescer.size).toBe(0);
    expect(c.batches).toHaveLength(1);
    coalescer.stop();
  });

  it('tells which deliveries belong to which subject', () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 60_000, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    coalescer.add({ deliveryId: 'a1', subject: 'o/r#1' });
    coalescer.add({ deliveryId: 'b1', subject: 'o/r#2' });
    coalescer.add({ deliveryId: 'a2', subject: 'o/r#1' });
    coalescer.flush();
    const batch = c.batches[0]!;
    expect(isGroupedBatch(batch)).toBe(true);
    expect((batch as GroupedBatch).groups).toEqual([
      { subject: 'o/r#1', deliveryIds: ['a1', 'a2'] },
      { subject: 'o/r#2', deliveryIds: ['b1'] },
    ]);
    expect(batch.deliveryIds.sort()).toEqual(['a1', 'a2', 'b1']);
    coalescer.stop();
  });

  it('flushes everything waiting as soon as maxEvents notices wait', () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 60_000, maxEvents: 5, onFlush: (b) => c.onFlush(b) });
    coalescer.add(notice('o/r#1', 1));
    coalescer.add(notice('o/r#2', 1));
    coalescer.add(notice('o/r#1', 2));
    coalescer.add(notice('o/r#3', 1));
    expect(c.batches).toHaveLength(0);
    coalescer.add(notice('o/r#2', 2)); // the fifth: flushed at once, not after 60 s
    expect(c.batches).toHaveLength(1);
    expect(c.batches[0]!.subjects).toEqual(['o/r#1', 'o/r#2', 'o/r#3']);
    expect(c.batches[0]!.deliveryIds).toHaveLength(5);
    expect(coalescer.size).toBe(0);

    coalescer.add(notice('o/r#4', 1)); // a new window starts empty
    expect(coalescer.size).toBe(1);
    expect(c.batches).toHaveLength(1);
    coalescer.stop();
  });

  it('with windowMs 0, flushes on the next tick: a burst in one tick is one batch', async () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 0, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    coalescer.add(notice('o/r#1', 1));
    coalescer.add(notice('o/r#2', 1));
    coalescer.add(notice('o/r#1', 2));
    expect(c.batches).toHaveLength(0);
    const first = await c.next();
    expect(first.subjects).toEqual(['o/r#1', 'o/r#2']);
    expect(first.deliveryIds).toEqual(['o/r#1/d1', 'o/r#1/d2', 'o/r#2/d1']);

    coalescer.add(notice('o/r#3', 1));
    const second = await c.next();
    expect(second.subjects).toEqual(['o/r#3']);
    expect(second.id).not.toBe(first.id);
    coalescer.stop();
  });

  it('closes each subject at its own deadline (injected clock)', () => {
    let now = 1000;
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 100, maxEvents: 100, onFlush: (b) => c.onFlush(b), now: () => now });
    coalescer.add(notice('o/r#1', 1)); // deadline 1100
    now = 1040;
    coalescer.add(notice('o/r#2', 1)); // deadline 1140
    coalescer.add(notice('o/r#1', 2)); // joins #1's window, does not extend it
    now = 1099;
    coalescer.flushDue();
    expect(c.batches).toHaveLength(0);
    now = 1100;
    coalescer.flushDue();
    expect(c.batches.map((b) => b.subjects)).toEqual([['o/r#1']]);
    expect(c.batches[0]!.deliveryIds).toEqual(['o/r#1/d1', 'o/r#1/d2']);
    now = 1120;
    coalescer.add(notice('o/r#1', 3)); // a new window for #1: deadline 1220
    now = 1140;
    coalescer.flushDue();
    expect(c.batches.map((b) => b.subjects)).toEqual([['o/r#1'], ['o/r#2']]);
    now = 1220;
    coalescer.flushDue();
    expect(c.batches.map((b) => b.subjects)).toEqual([['o/r#1'], ['o/r#2'], ['o/r#1']]);
    expect(coalescer.size).toBe(0);
    coalescer.stop();
  });

  it('closes each subject at its own deadline (real timers, one for the earliest window)', async () => {
    const c = collector();
    const windowMs = 80;
    const coalescer = new Coalescer({ windowMs, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    const addedA = performance.now();
    coalescer.add(notice('o/r#1', 1));
    // Open the second window later than the first (this wait creates the gap, it waits for no work).
    await new Promise((resolve) => setTimeout(resolve, 40));
    const addedB = performance.now();
    coalescer.add(notice('o/r#2', 1));

    const first = await c.next();
    const flushedA = performance.now();
    expect(first.subjects).toEqual(['o/r#1']);
    expect(flushedA - addedA).toBeGreaterThanOrEqual(windowMs - 1);
    expect(coalescer.size).toBe(1);

    const second = await c.next();
    expect(second.subjects).toEqual(['o/r#2']);
    expect(performance.now() - addedB).toBeGreaterThanOrEqual(windowMs - 1);
    coalescer.stop();
  });

  it('stop() clears the timers and drops nothing', async () => {
    const c = collector();
    const coalescer = new Coalescer({ windowMs: 20, maxEvents: 100, onFlush: (b) => c.onFlush(b) });
    coalescer.add(notice('o/r#1', 1));
    coalescer.stop();
    // A control coalescer with the same window flushes; the stopped one must not have.
    const control = collector();
    const other = new Coalescer({ windowMs: 40, maxEvents: 100, onFlush: (b) => control.onFlush(b) });
    other.add(notice('o/r#9', 1));
    await control.next();
    expect(c.batches).toHaveLength(0);
    expect(coalescer.size).toBe(1);
    coalescer.flush();
    expect(c.batches[0]!.deliveryIds).toEqual(['o/r#1/d1']);
    other.stop();
  });

  it('keeps its state when onFlush throws', () => {
    let fail = true;
    const c = collector();
    const coalescer = new Coalescer({
      windowMs: 60_000,
      maxEvents: 100,
      onFlush: (b) => {
        if (fail) throw new Error('downstream broke');
        c.onFlush(b);
      },
    });
    coalescer.add(notice('o/r#1', 1));
    expect(() => coalescer.flush()).toThrow('downstream broke');
    expect(coalescer.size).toBe(0);
    fail = false;
    coalescer.add(notice('o/r#2', 1));
    coalescer.flush();
    expect(c.batches[0]!.subjects).toEqual(['o/r#2']);
    coalescer.stop();
  });

  it('rejects invalid options with the bad value', () => {
    expect(() => new Coalescer({ windowMs: -1, maxEvents: 1, onFlush: () => {} })).toThrow('windowMs must be a number >= 0, got -1');
    expect(() => new Coalescer({ windowMs: 0, maxEvents: 0, onFlush: () => {} })).toThrow('maxEvents must be an integer >= 1, got 0');
  });
});
