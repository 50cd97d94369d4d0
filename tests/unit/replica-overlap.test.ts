import { describe, expect, it } from '@jest/globals';
import { overlappingLabelWrites, type GiteaTraffic } from '../helpers/gitea-process.js';

// The replica tests' check "never two replicas writing one issue's labels at the same time", on
// request timelines the gates record (tests/helpers/reliability/gate.ts).

const write = (url: string, startMs: number, endMs: number, method = 'POST') => ({ method, url, status: 200, startMs, endMs });
const labels = (n: number) => `/api/v1/repos/acme/widgets/issues/${n}/labels`;

describe('overlappingLabelWrites', () => {
  it('finds two replicas writing one issue with overlapping requests, and only that', () => {
    const traffic: GiteaTraffic[] = [
      { replica: 'r1', labelWrites: [], requests: [write(labels(1), 0, 10), write(labels(2), 20, 30), write(labels(3), 40, 50)] },
      {
        replica: 'r2',
        labelWrites: [],
        requests: [
          write(labels(1), 5, 15), // overlaps r1's write to #1
          write(labels(2), 30, 40), // starts as r1's ends: not at the same time
          write(labels(3), 41, 42, 'GET'), // a read
          write(`${labels(3)}/7`, 45, 60, 'DELETE'), // overlaps r1's write to #3
        ],
      },
      { replica: 'r3', labelWrites: [], requests: [write(labels(4), 0, 100)] },
    ];
    expect(overlappingLabelWrites(traffic)).toEqual([
      { issue: 'acme/widgets#1', a: 'r1', b: 'r2' },
      { issue: 'acme/widgets#3', a: 'r1', b: 'r2' },
    ]);
  });

  it('does not count one replica overlapping itself', () => {
    const traffic: GiteaTraffic[] = [{ replica: 'r1', labelWrites: [], requests: [write(labels(1), 0, 10), write(labels(1), 5, 15)] }];
    expect(overlappingLabelWrites(traffic)).toEqual([]);
  });
});
