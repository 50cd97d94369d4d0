import { describe, expect, it } from '@jest/globals';
import { classify } from '../../../src/receiver/classify.js';
import { loadFixture } from '../../helpers/signing.js';

const body = (name: string) => structuredClone(loadFixture(name).body) as Record<string, any>;

describe('classify', () => {
  it('reads subject, action, sender and the issue time from an issues event', () => {
    const result = classify('issues', body('issues-opened'));
    expect(result).toEqual({
      ok: true,
      value: {
        subject: 'acme/widgets#42',
        repo: 'acme/widgets',
        number: 42,
        action: 'opened',
        sender: 'alice',
        updatedAt: '2026-03-02T10:15:04.000Z',
        triaged: true,
      },
    });
  });

  it('triages a label change by a person (it tells who removed what)', () => {
    const result = classify('issues', body('issues-label_updated'));
    expect(result.ok && result.value).toMatchObject({ action: 'label_updated', sender: 'bob', triaged: true });
  });

  it("orders comment deliveries by the comment's updated_at, not the issue's", () => {
    const payload = body('issue_comment-created');
    payload.comment.updated_at = '2026-03-05T08:00:00+01:00';
    payload.issue.updated_at = '2026-03-01T00:00:00Z';
    const result = classify('issue_comment', payload);
    expect(result.ok && result.value).toMatchObject({ subject: 'acme/widgets#42', updatedAt: '2026-03-05T07:00:00.000Z', triaged: true });
  });

  it("falls back to the issue's updated_at when the comment has none", () => {
    const payload = body('issue_comment-created');
    delete payload.comment.updated_at;
    const result = classify('issue_comment', payload);
    expect(result.ok && result.value.updatedAt).toBe(new Date(payload.issue.updated_at).toISOString());
  });

  it('treats a comment on a pull request (is_pull) like one on an issue', () => {
    const payload = body('issue_comment-created');
    payload.is_pull = true;
    payload.action = 'edited';
    const result = classify('issue_comment', payload);
    expect(result.ok && result.value).toMatchObject({ subject: 'acme/widgets#42', action: 'edited', triaged: true });
  });

  it('uses the pull request number and time for pull_request events', () => {
    const result = classify('pull_request', body('pull_request-synchronized'));
    expect(result.ok && result.value).toMatchObject({ subject: 'acme/widgets#43', number: 43, action: 'synchronized', triaged: true });
  });

  it('gives pushes a per-ref subject and always triages them', () => {
    const result = classify('push', body('push'));
    expect(result.ok && result.value).toMatchObject({
      subject: 'acme/widgets@refs/heads/main',
      number: null,
      action: null,
      updatedAt: '2026-03-04T09:11:52.000Z',
      triaged: true,
    });
  });

  it.each([
    ['issues', 'issues-opened', 'closed'],
    ['issues', 'issues-opened', 'assigned'],
    ['issue_comment', 'issue_comment-created', 'deleted'],
    ['pull_request', 'pull_request-opened', 'closed'],
    ['pull_request', 'pull_request-opened', 'review_requested'],
  ])('records %s/%s action %s without triaging it', (event, fixture, action) => {
    const payload = body(fixture);
    payload.action = action;
    const result = classify(event, payload);
    expect(result.ok && result.value).toMatchObject({ triaged: false, reason: `action ${event}/${action} is not triaged` });
  });

  it.each(['pull_request_approved', 'pull_request_rejected', 'pull_request_comment'])(
    'triages a review (X-Gitea-Event %s, action reviewed) as an event on the pull request',
    (event) => {
      const payload = body('pull_request-opened');
      payload.action = 'reviewed';
      const result = classify(event, payload);
      expect(result.ok && result.value).toMatchObject({ subject: 'acme/widgets#43', number: 43, action: 'reviewed', triaged: true });
    },
  );

  it('records other event families with a reason', () => {
    const payload = body('pull_request-opened');
    payload.action = 'published';
    const result = classify('release', payload);
    expect(result.ok && result.value).toMatchObject({
      subject: 'acme/widgets#43',
      triaged: false,
      reason: 'event release is not triaged',
    });
  });

  it.each([
    ['an array', 'issues', []],
    ['a string', 'issues', 'hello'],
    ['null', 'issues', null],
    ['no repository', 'issues', { action: 'opened', issue: { number: 1 } }],
    ['a repository without owner and name', 'issues', { action: 'opened', issue: { number: 1 }, repository: { id: 1 } }],
    ['an issues event without issue', 'issues', { action: 'opened', repository: { full_name: 'a/b' } }],
    ['an issue without number', 'issues', { action: 'opened', issue: { title: 'x' }, repository: { full_name: 'a/b' } }],
    ['an issues event without action', 'issues', { issue: { number: 3 }, repository: { full_name: 'a/b' } }],
    ['a comment event without comment', 'issue_comment', { action: 'created', issue: { number: 3 }, repository: { full_name: 'a/b' } }],
    ['a pull_request event without pull_request', 'pull_request', { action: 'opened', repository: { full_name: 'a/b' } }],
    ['a push without ref', 'push', { repository: { full_name: 'a/b' } }],
  ])('refuses %s', (_what, event, payload) => {
    const result = classify(event, payload);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/\S/);
  });

  it('takes owner and name from full_name when owner.login is missing', () => {
    const result = classify('issues', { action: 'opened', issue: { number: 7 }, repository: { full_name: 'org/repo' } });
    expect(result.ok && result.value).toMatchObject({ subject: 'org/repo#7', repo: 'org/repo', sender: null, updatedAt: null });
  });
});
