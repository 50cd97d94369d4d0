import os from 'node:os';
import { errorText } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Evaluator } from '../scheduler/types.js';
import type { Lease, LeaseStore } from '../store/api.js';


/** The holder name a tool writes into the leases: which tool, on which host, which process. */
export function toolHolder(tool: string): string {
  return `tool:${tool}:${os.hostname()}:${process.pid}`;
}

export interface LeaseOptions {
  leases: LeaseStore;
  holder: string;
  log: Logger;
  /** The lease's time to live (LEASE_TTL_MS, as the service's); renewed every third of it. */
  ttlMs: number;
  /** How long to wait for a subject another process is evaluating before giving it up (default 4 × ttl). */
  waitMs?: number;
}

/** A subject whose lease another process held for longer than the tool would wait. */
export class SubjectBusyError extends Error {
  constructor(subject: string, holder: string | undefined, waitedMs: number) {
    super(`${subject} is being evaluated by ${holder ?? 'another process'}; gave up after ${Math.round(waitedMs / 1000)} s`);
    this.name = 'SubjectBusyError';
  }
}

/**
 * `inner`, run only while this process holds the subject's lease in the store — the lease the
 * service's scheduler takes for the same subject — so a `backfill` or `replay --failed` beside a
 * running service never evaluates an issue at the moment the service does (docs/architecture.md,
 * "The store", leases). A subject held by someone else is waited for (polled, with a deadline); the
 * lease is renewed while the evaluation runs and released after it. A lease lost meanwhile (this
 * process stalled past its expiry and someone else took it) fails the evaluation.
 */
export function leasedEvaluator(inner: Evaluator, options: LeaseOptions): Evaluator {
  const { ttlMs } = options;
  return {
    ...inner,
    evaluate: async (item, log) => {
      const subject = item.subject.key;
      let lease = await acquireWaiting(subject, options);
      let lost = false;
      let renewing: Promise<void> = Promise.resolve();
      const timer = setInterval(() => {
        renewing = renewing.then(async () => {
          if (lost) return;
          try {
            const renewed = await options.leases.renew(lease, ttlMs);
            if (renewed) lease = renewed;
            else lost = true;
          } catch (error) {
            options.log.warn('lease renewal failed', { subject, error: errorText(error) });
          }
        });
      }, Math.max(1, Math.floor(ttlMs / 3)));
      try {
        // Its ownership writes carry the lease's fence: refused by the store once the lease is lost.
        const result = await inner.evaluate({ ...item, fence: { subject, token: lease.token } }, log);
        await renewing;
        // A last renewal: a lease taken since the last tick (this process stalled) is found out here.
        if (!lost) {
          const renewed = await options.leases.renew(lease, ttlMs);
          if (renewed) lease = renewed;
          else lost = true;
        }
        if (lost) throw new Error(`lease on ${subject} lost during the evaluation (token ${lease.token}): another process may have evaluated it too`);
        return result;
      } finally {
        clearInterval(timer);
        await renewing;
        await options.leases.release(lease).catch((error: unknown) => options.log.warn('lease release failed', { subject, error: errorText(error) }));
      }
    },
  };
}

/** Takes the subject's lease, polling (25 ms doubling to 1 s) while another process holds it. */
async function acquireWaiting(subject: string, options: LeaseOptions): Promise<Lease> {
  const started = Date.now();
  const waitMs = options.waitMs ?? 4 * options.ttlMs;
  let pause = 25;
  for (;;) {
    const lease = await options.leases.acquire(subject, options.holder, options.ttlMs);
    if (lease) return lease;
    if (Date.now() - started >= waitMs) {
      const current = await options.leases.current(subject).catch(() => undefined);
      throw new SubjectBusyError(subject, current?.holder, Date.now() - started);
    }
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(1_000, pause * 2);
  }
}
