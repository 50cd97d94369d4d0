import http from 'node:http';
import https from 'node:https';
import picomatch from 'picomatch';
import type { SimHook, SimRepo } from './model.js';
import { eventFamily, hookHasEvent, makeDelivery, sendDelivery, type DeliveryOptions } from './webhooks.js';

export interface SimWebhookTarget {
  url: string;
  secret: string;
  contentType?: 'json' | 'form';
}

export interface SimDeliveryRecord {
  id: string;
  event: string;
  type: string;
  action?: string;
  url: string;
  /** Who caused it (`sender.login`). */
  sender?: string;
  status?: number;
  error?: string;
}

interface Target {
  url: string;
  options: DeliveryOptions;
  headers: Record<string, string>;
  method: 'POST' | 'GET';
}

/**
 * Webhook delivery: which hooks an event goes to and sending it to each, asynchronously and
 * concurrently, like Gitea's hook task queue (services/webhook/webhook.go PrepareWebhooks, deliver.go).
 */
export class Deliverer {
  /** Every delivery sent (or being sent), in the order they were created. */
  readonly records: SimDeliveryRecord[] = [];
  /** A hook that receives every event of every repository (like a system webhook). */
  webhook: SimWebhookTarget | undefined;
  private readonly pending = new Set<Promise<void>>();
  /** While set, deliveries are queued here instead of sent (see `hold`/`release`). */
  private held: ((() => Promise<void>) | undefined)[] | undefined;
  private readonly agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };

  constructor(
    webhook: SimWebhookTarget | undefined,
    private readonly hooks: Map<number, SimHook>,
    /** Send Forgejo's header set. */
    private readonly forgejo = false,
  ) {
    this.webhook = webhook;
  }

  /**
   * Queues the deliveries of one event: to the `webhook` target, to the repository's active hooks and to
   * its organisation's, each hook filtered by its events (and branch filter, for pushes).
   */
  emit(repo: SimRepo, type: string, payload: Record<string, unknown>, branch?: string): void {
    const event = eventFamily(type);
    const sender = (payload.sender as { login?: string } | undefined)?.login;
    const action = typeof payload.action === 'string' ? payload.action : undefined;
    for (const t of this.targets(repo, type, branch)) {
      const delivery = makeDelivery(event, type, payload, this.forgejo ? { ...t.options, forgejo: true } : t.options);
      const record: SimDeliveryRecord = {
        id: delivery.headers['X-Gitea-Delivery'] as string,
        event,
        type,
        url: t.url,
        ...(action ? { action } : {}),
        ...(sender ? { sender } : {}),
      };
      this.records.push(record);
      const send = (): Promise<void> =>
        sendDelivery(t.url, delivery, this.agents, t.headers, undefined, t.method).then((outcome) => {
          if (outcome.status !== undefined) record.status = outcome.status;
          if (outcome.error !== undefined) record.error = outcome.error;
        });
      if (this.held) this.held.push(send);
      else this.track(new Promise<void>((resolve) => setImmediate(resolve)).then(send));
    }
  }

  /** Queue deliveries instead of sending them, until `release` (to replay Gitea's out-of-order arrivals). */
  hold(): void {
    this.held ??= [];
  }

  /**
   * Sends held deliveries one after the other (each answered before the next): all of them, in creation
   * or reverse order (holding ends), or those at the given indexes of the held list (the rest stay held).
   */
  release(order: 'created' | 'reverse' | number[] = 'created'): Promise<void> {
    const held = this.held ?? [];
    let sequence: (() => Promise<void>)[];
    if (Array.isArray(order)) {
      sequence = order.map((i) => held[i]).filter((f): f is () => Promise<void> => f !== undefined);
      for (const i of order) held[i] = undefined;
    } else {
      this.held = undefined;
      const rest = held.filter((f): f is () => Promise<void> => f !== undefined);
      sequence = order === 'reverse' ? rest.reverse() : rest;
    }
    const all = sequence.reduce((prev, send) => prev.then(send), Promise.resolve());
    this.track(all);
    return all;
  }

  private track(sent: Promise<void>): void {
    this.pending.add(sent);
    void sent.finally(() => this.pending.delete(sent));
  }

  /** Resolves once every delivery created so far has been answered (or has failed). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  async close(): Promise<void> {
    await this.settle();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  private targets(repo: SimRepo, type: string, branch: string | undefined): Target[] {
    const targets: Target[] = [];
    if (this.webhook) {
      targets.push({ url: this.webhook.url, options: { secret: this.webhook.secret, contentType: this.webhook.contentType ?? 'json', targetType: 'repository' }, headers: {}, method: 'POST' });
    }
    for (const h of this.hooks.values()) {
      const scope = h.repoId === repo.id ? 'repository' : repo.owner.isOrg && h.orgId === repo.owner.id ? 'organization' : undefined;
      if (!scope || !h.active || (h.type !== 'gitea' && h.type !== 'gogs') || !hookHasEvent(h.events, type)) continue;
      if (type === 'push' && branch && h.branchFilter && h.branchFilter !== '*' && !picomatch.isMatch(branch, h.branchFilter)) continue;
      targets.push({
        url: h.url,
        options: { secret: h.secret, contentType: h.contentType, targetType: scope },
        headers: h.authorizationHeader ? { Authorization: h.authorizationHeader } : {},
        method: h.httpMethod,
      });
    }
    return targets;
  }
}
