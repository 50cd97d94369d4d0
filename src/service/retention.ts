import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log/logger.js';

const PRUNE_EVERY_MS = 3_600_000;

/**
 * Journal retention: prunes what is older than `retentionMs` now, then every hour (or every
 * `retentionMs` when shorter). Returns the stop function.
 */
export function startJournalPruning(journal: Journal, retentionMs: number, log: Logger): () => void {
  const prune = () => {
    try {
      const removed = journal.prune(Date.now() - retentionMs);
      if (removed > 0) log.info('journal pruned', { removed, retentionMs });
    } catch (error) {
      log.warn('journal prune failed', { error: error instanceof Error ? error.message : String(error) });
    }
  };
  prune();
  const timer = setInterval(prune, Math.min(PRUNE_EVERY_MS, retentionMs));
  timer.unref();
  return () => clearInterval(timer);
}
