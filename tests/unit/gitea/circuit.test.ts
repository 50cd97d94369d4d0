import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from '../../../src/gitea/circuit.js';

const soon = (ms: number): number => Date.now() + ms;

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures; an answer in between resets the count', async () => {
    const cb = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 60_000 });
    cb.failure(false);
    cb.failure(false);
    cb.success(false);
    cb.failure(false);
    cb.failure(false);
    expect(cb.health()).toEqual({ state: 'closed', consecutiveFailures: 2 });
    cb.failure(false);
    expect(cb.health()).toEqual({ state: 'open', consecutiveFailures: 3 });
    // Open: nobody is admitted before the cooldown ends.
    expect(await cb.acquire(soon(30))).toBe('timeout');
  });

  it('lets exactly one probe through after the cooldown; its success releases the waiters', async () => {
    const cb = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 40 });
    cb.failure(false);
    const outcomes: string[] = [];
    const a = cb.acquire(soon(5000)).then((r) => outcomes.push(r));
    const b = cb.acquire(soon(5000)).then((r) => outcomes.push(r));
    await Promise.race([a, b]);
    expect(outcomes).toEqual(['probe']);
    await new Promise((r) => setTimeout(r, 30));
    expect(outcomes).toEqual(['probe']); // the other caller still waits for the probe's outcome
    expect(cb.health().state).toBe('half-open');
    cb.success(true);
    await Promise.all([a, b]);
    expect(outcomes).toEqual(['probe', 'go']);
    expect(cb.health()).toEqual({ state: 'closed', consecutiveFailures: 0 });
  });

  it('re-opens when the probe fails', async () => {
    const cb = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 20, maxCooldownMs: 1000 });
    cb.failure(false);
    expect(await cb.acquire(soon(5000))).toBe('probe');
    cb.failure(true);
    expect(cb.health().state).toBe('open');
    expect(cb.health().consecutiveFailures).toBe(2);
    // The doubled cooldown (40 ms) passes, then the next probe goes out.
    expect(await cb.acquire(soon(5000))).toBe('probe');
  });

  it('gives the probe slot back when the attempt said nothing about Gitea', async () => {
    const cb = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10 });
    cb.failure(false);
    expect(await cb.acquire(soon(5000))).toBe('probe');
    cb.release(true);
    expect(await cb.acquire(soon(5000))).toBe('probe');
  });
});
