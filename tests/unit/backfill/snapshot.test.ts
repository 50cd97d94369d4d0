import { describe, expect, it } from '@jest/globals';
import { backfillItem } from '../../../src/backfill/backfill.js';
import { listedSnapshot, SNAPSHOT_MAX_AGE_MS } from '../../../src/backfill/snapshot.js';
import type { GiteaIssue } from '../../../src/gitea/types.js';
import type { WorkItem } from '../../../src/scheduler/types.js';

const LISTED_AT = Date.parse('2026-05-01T10:00:30Z');
const UPDATED = '2026-05-01T10:00:00Z';

function listed(labels: string[] = ['kind/bug'], updatedAt = UPDATED): GiteaIssue {
  return {
    id: 7,
    number: 7,
    title: 'Editor crashes',
    body: '',
    state: 'open',
    updated_at: updatedAt,
    labels: labels.map((name, i) => ({ id: i + 1, name, color: 'ededed', exclusive: false })),
    pull_request: null,
  } as unknown as GiteaIssue;
}

/** A reconcile sweep's journaled delivery as the scheduler hands it over (event `issues`, action `reconciled`). */
function reconciledItem(issue: GiteaIssue, receivedAt: number): WorkItem {
  const item = backfillItem('acme', 'widgets', issue, receivedAt);
  const newest = { ...item.newest, event: 'issues', eventType: 'issues', action: 'reconciled' };
  return { ...item, deliveries: [newest], newest };
}

describe('listedSnapshot: when a listed issue stands for a read of it', () => {
  it('takes the backfill’s and the reconcile sweep’s listed issue', () => {
    const issue = listed();
    expect(listedSnapshot(backfillItem('acme', 'widgets', issue, LISTED_AT), undefined, LISTED_AT)).toBe(issue);
    expect(listedSnapshot(reconciledItem(issue, LISTED_AT), undefined, LISTED_AT + 1000)).toBe(issue);
    // Newer than what the service last recorded, or of the same second with the same labels.
    expect(listedSnapshot(backfillItem('acme', 'widgets', issue, LISTED_AT), { labels: [], updatedAt: '2026-05-01T09:59:59Z' }, LISTED_AT)).toBe(issue);
    expect(listedSnapshot(backfillItem('acme', 'widgets', issue, LISTED_AT), { labels: ['kind/bug'], updatedAt: UPDATED }, LISTED_AT)).toBe(issue);
  });

  it('reads instead when the newest delivery is a webhook’s: its payload is a snapshot of another time', () => {
    const item = backfillItem('acme', 'widgets', listed(), LISTED_AT);
    const webhook = { ...item.newest, event: 'issues', eventType: 'issues', action: 'edited' };
    expect(listedSnapshot({ ...item, deliveries: [item.newest, webhook], newest: webhook }, undefined, LISTED_AT)).toBeUndefined();
  });

  it('reads instead when the listing is old (a long backlog, a delivery resumed after a restart)', () => {
    const item = backfillItem('acme', 'widgets', listed(), LISTED_AT);
    expect(listedSnapshot(item, undefined, LISTED_AT + SNAPSHOT_MAX_AGE_MS)).toBeDefined();
    expect(listedSnapshot(item, undefined, LISTED_AT + SNAPSHOT_MAX_AGE_MS + 1)).toBeUndefined();
  });

  it('reads instead when the service recorded a newer label set, or another set of the same second', () => {
    const item = backfillItem('acme', 'widgets', listed(), LISTED_AT);
    expect(listedSnapshot(item, { labels: ['kind/bug'], updatedAt: '2026-05-01T10:00:01Z' }, LISTED_AT)).toBeUndefined();
    // The bot's own write in the listing's second: the listing may not show it.
    expect(listedSnapshot(item, { labels: ['kind/bug', 'needs-info'], updatedAt: UPDATED }, LISTED_AT)).toBeUndefined();
  });

  it('reads instead when the listed object is not an issue of this subject', () => {
    const other = backfillItem('acme', 'widgets', listed(), LISTED_AT);
    const wrongNumber = { ...other, subject: { ...other.subject, number: 8, key: 'acme/widgets#8' } } as WorkItem;
    expect(listedSnapshot(wrongNumber, undefined, LISTED_AT)).toBeUndefined();
    const noTime = backfillItem('acme', 'widgets', { ...listed(), updated_at: undefined } as unknown as GiteaIssue, LISTED_AT);
    expect(listedSnapshot(noTime, undefined, LISTED_AT)).toBeUndefined();
  });
});
