import { describe, expect, it } from '@jest/globals';
import { type SentDelivery, sentOutcome, summarizeSent } from '../../../src/tools/replay.js';

const sent = (status: number | undefined, answer: string): SentDelivery => ({
  original: 'a',
  sent: 'a',
  event: 'issues',
  action: 'opened',
  subject: 'o/r#1',
  status,
  answer,
  outcome: sentOutcome(status, answer),
});

describe('replay --url outcomes', () => {
  it("names what the receiver answered: 202 accepted or ignored, 200 duplicate, anything else refused", () => {
    expect(sentOutcome(202, 'accepted')).toBe('accepted');
    expect(sentOutcome(202, 'ignored')).toBe('ignored');
    expect(sentOutcome(200, 'duplicate')).toBe('duplicate');
    expect(sentOutcome(401, 'signature does not match')).toBe('refused');
    expect(sentOutcome(503, 'journal unavailable')).toBe('refused');
    expect(sentOutcome(undefined, 'fetch failed: connect ECONNREFUSED 127.0.0.1:9')).toBe('no answer');
  });

  it('counts each outcome in the summary; a duplicate is not counted as accepted', () => {
    const rows = [sent(202, 'accepted'), sent(200, 'duplicate'), sent(200, 'duplicate'), sent(202, 'ignored'), sent(401, 'signature does not match')];
    expect(summarizeSent(rows, 'http://r/webhook')).toBe(
      "5 deliveries sent to http://r/webhook: 1 accepted, 1 ignored, 2 duplicate, 1 refused (a duplicate was already in the receiver's journal and was not evaluated again)",
    );
    expect(summarizeSent([sent(202, 'accepted')], 'http://r/webhook')).toBe('1 delivery sent to http://r/webhook: 1 accepted');
  });
});
