import type { Readiness } from '../receiver/http.js';
import type { BotIdentity } from './identity.js';

export interface ReadinessSources {
  shuttingDown: () => boolean;
  /** The store's last known health (service/cluster.ts `StoreHealth`). */
  storeHealthy: () => boolean;
  identity: BotIdentity;
  /** The Gitea client's circuit state, when it has one (`GiteaClient.health()`). */
  giteaHealth?: () => { state: string; consecutiveFailures?: number };
}

/**
 * `/readyz`: ready once the store is reachable and the bot's identity is known, until shutdown begins.
 * Gitea down after start degrades the service without making it unready: webhooks are still
 * journaled and evaluated once Gitea is back, so taking the receiver out of rotation would only turn
 * acknowledged deliveries into failed ones on Gitea's side.
 */
export function readinessOf(sources: ReadinessSources): Readiness {
  const reasons: string[] = [];
  if (sources.shuttingDown()) reasons.push('shutting down');
  if (!sources.storeHealthy()) reasons.push('journal unavailable');
  if (sources.identity.login() === undefined) {
    reasons.push(sources.identity.failed() ? 'gitea unreachable: bot identity unknown' : 'bot identity unknown');
  }
  const warnings: string[] = [];
  const health = sources.giteaHealth?.();
  if (health && health.state !== 'closed') {
    warnings.push(
      `gitea unavailable: circuit ${health.state}` +
        (health.consecutiveFailures !== undefined ? ` after ${health.consecutiveFailures} consecutive failures` : '') +
        '; webhooks are journaled and wait',
    );
  }
  return { ready: reasons.length === 0, reasons, warnings };
}
