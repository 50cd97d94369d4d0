import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { errorText } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { DeliveryStore, LeaseStore, Store } from '../store/api.js';

/**
 * What makes several processes on one store behave as one service (docs/architecture.md, "The
 * store"): a holder name for the leases, cluster-wide jobs under leader leases, the orphan sweep,
 * and the store's health as `/readyz` reports it.
 */

/** This process's name in the leases: host, pid and a random part (a restarted pid is another holder). */
export function holderName(): string {
  return `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
}

/** Whether a process of this host runs with `pid` (signal 0 checks without sending anything). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * True when this process holds (or now takes, or renews) the leader lease of `job`. The lease lasts
 * `ttlMs`: a leader that dies hands the job over once it expired, at the next caller's attempt.
 */
export async function isLeader(leases: LeaseStore, job: string, holder: string, ttlMs: number): Promise<boolean> {
  return (await leases.leader(job, holder, ttlMs)) !== undefined;
}

/**
 * Journal retention, cluster-wide once: every `periodMs` (and at start) the `prune` leader prunes
 * done and ignored rows older than `retentionMs`. The lease outlives a period, so the leader keeps
 * the job while it lives. Returns the stop function.
 */
export function startPruning(store: Store, holder: string, retentionMs: number, log: Logger): () => void {
  const periodMs = Math.min(3_600_000, retentionMs);
  const prune = async () => {
    try {
      if (!(await isLeader(store.leases, 'prune', holder, 2 * periodMs))) return;
      const removed = await store.deliveries.prune(Date.now() - retentionMs);
      if (removed > 0) log.info('journal pruned', { removed, retentionMs });
    } catch (error) {
      log.warn('journal prune failed', { error: errorText(error) });
    }
  };
  void prune();
  const timer = setInterval(() => void prune(), periodMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Adoption: every `periodMs`, subjects with pending rows and no live lease (their process died, or
 * their rows came in while another process held the lease) are handed to `adopt`. With the lease's
 * time to live, this bounds how long a dead replica's acknowledged deliveries wait:
 * `LEASE_TTL_MS + ORPHAN_SWEEP_MS` plus one evaluation. A subject whose newest pending row is younger
 * than `graceMs` is left alone: it is in its receiver's coalescer window (on another replica, whose
 * `coalescer.holds` this process cannot see), and adopting it would split the batch.
 * Returns the stop function.
 */
export function startOrphanSweep(
  deliveries: Pick<DeliveryStore, 'orphanedSubjects'>,
  adopt: (subjects: string[]) => number,
  periodMs: number,
  log: Logger,
  graceMs = 0,
): () => void {
  let running = false;
  const sweep = async () => {
    if (running) return;
    running = true;
    try {
      const orphans = await deliveries.orphanedSubjects(256, Date.now() - graceMs);
      if (orphans.length > 0) adopt(orphans.map((o) => o.subject));
    } catch (error) {
      log.warn('orphan sweep failed', { error: errorText(error) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), periodMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The store's health for `/readyz` and the receiver: a round trip every `periodMs` (PostgreSQL),
 * also updated by every append's outcome, so that recovery is seen without a restart.
 */
export class StoreHealth {
  private ok = true;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly store: Pick<Store, 'healthy'>,
    private readonly log: Logger,
  ) {}

  start(periodMs: number): void {
    this.timer = setInterval(() => void this.check(), periodMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get healthy(): boolean {
    return this.ok;
  }

  /** Records what an operation on the store just showed. */
  observe(ok: boolean): void {
    if (ok !== this.ok) this.log[ok ? 'info' : 'warn'](ok ? 'store reachable' : 'store unreachable');
    this.ok = ok;
  }

  async check(): Promise<boolean> {
    if (this.checking) return this.ok;
    this.checking = true;
    try {
      this.observe(await this.store.healthy().catch(() => false));
    } finally {
      this.checking = false;
    }
    return this.ok;
  }
}
