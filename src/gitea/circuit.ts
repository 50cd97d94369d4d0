/**
 * The client-wide circuit breaker: when Gitea is down, callers wait together instead of each one
 * hammering it with its own retries.
 *
 * - `closed`: every attempt goes out. Each network error or 5xx counts one consecutive failure; any
 *   other answer (2xx, 3xx, 4xx, 429: Gitea is there) resets the count.
 * - `open`: after `failureThreshold` consecutive failures. No attempt goes out for `cooldownMs`;
 *   callers wait (at most `maxWaitMs` each, then they fail with a transient error).
 * - `half-open`: after the cooldown, exactly one attempt (the probe) goes out; the others keep
 *   waiting for its outcome. Success closes the circuit and releases everyone; failure re-opens it with
 *   the cooldown doubled (up to `maxCooldownMs`).
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** First open period. Default 1000 ms. */
  cooldownMs?: number;
  /** Longest open period after repeated failed probes. Default 30000 ms. */
  maxCooldownMs?: number;
}

/** What `acquire` grants: a normal attempt, the single probe of a half-open circuit, or nothing in time. */
export type Admission = 'go' | 'probe' | 'timeout';

export class CircuitBreaker {
  private state: CircuitState = 'closed';
  private failures = 0;
  private reopenAt = 0;
  private cooldown: number;
  private probeInFlight = false;
  private readonly waiters = new Set<() => void>();
  private readonly threshold: number;
  private readonly baseCooldown: number;
  private readonly maxCooldown: number;

  constructor(options: CircuitOptions = {}) {
    this.threshold = Math.max(1, options.failureThreshold ?? 5);
    this.baseCooldown = Math.max(1, options.cooldownMs ?? 1000);
    this.maxCooldown = Math.max(this.baseCooldown, options.maxCooldownMs ?? 30000);
    this.cooldown = this.baseCooldown;
  }

  health(): { state: CircuitState; consecutiveFailures: number } {
    if (this.state === 'open' && Date.now() >= this.reopenAt) return { state: 'half-open', consecutiveFailures: this.failures };
    return { state: this.state, consecutiveFailures: this.failures };
  }

  /** Waits until an attempt may be sent, or until `deadline` (epoch ms). */
  async acquire(deadline: number): Promise<Admission> {
    for (;;) {
      if (this.state === 'closed') return 'go';
      const now = Date.now();
      if (this.state === 'open' && now >= this.reopenAt) this.state = 'half-open';
      if (this.state === 'half-open' && !this.probeInFlight) {
        this.probeInFlight = true;
        return 'probe';
      }
      if (now >= deadline) return 'timeout';
      const until = this.state === 'open' ? Math.min(this.reopenAt, deadline) : deadline;
      await this.waitForChange(until - now);
    }
  }

  /** Gitea answered (anything but 5xx). */
  success(probe: boolean): void {
    if (probe) this.probeInFlight = false;
    this.failures = 0;
    this.cooldown = this.baseCooldown;
    if (this.state !== 'closed') {
      this.state = 'closed';
      this.notify();
    }
  }

  /** No answer, or a 5xx. */
  failure(probe: boolean): void {
    this.failures++;
    if (probe) {
      this.probeInFlight = false;
      this.cooldown = Math.min(this.cooldown * 2, this.maxCooldown);
      this.open();
    } else if (this.state === 'closed' && this.failures >= this.threshold) {
      this.open();
    }
  }

  /** The attempt ended without saying anything about Gitea (a local error): give the probe slot back. */
  release(probe: boolean): void {
    if (probe) {
      this.probeInFlight = false;
      this.notify();
    }
  }

  private open(): void {
    this.state = 'open';
    this.reopenAt = Date.now() + this.cooldown;
    this.notify();
  }

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, ms));
      this.waiters.add(wake);
    });
  }
}
