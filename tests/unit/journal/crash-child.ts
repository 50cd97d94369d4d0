/**
 * Child process of the journal's crash test: journals three deliveries, commits a first group of
 * state changes, then makes a second group (state changes and an append) and kills itself with
 * SIGKILL before that group's commit, as a power cut or `kill -9` would.
 *
 *   node --import tsx tests/unit/journal/crash-child.ts <dataDir>
 */
import { Journal } from '../../../src/journal/journal.js';
import type { NewDelivery } from '../../../src/journal/types.js';
import { silentLogger } from '../../../src/log/logger.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: crash-child.ts <dataDir>');

function delivery(id: string, number: number): NewDelivery {
  return {
    id,
    event: 'issues',
    eventType: 'issues',
    action: 'edited',
    subject: `acme/widgets#${number}`,
    repo: 'acme/widgets',
    number,
    updatedAt: '2024-05-01T10:00:00Z',
    sender: 'alice',
    headers: {},
    body: JSON.stringify({ action: 'edited', issue: { number } }),
    state: 'pending',
  };
}

const say = (msg: string, fields: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ msg, ...fields })}\n`);

const journal = Journal.open({ dataDir, sync: 'full', log: silentLogger() });
await Promise.all(['a', 'b', 'c'].map((id, i) => journal.append(delivery(id, i + 1))));

// First group: committed.
journal.markDone(['a']);
await journal.settled();

// Second group: never committed. This process reads it back at once all the same.
journal.markDone(['b']);
journal.recordFailure(['c'], 'HTTP 502 from Gitea');
journal.append(delivery('d', 4)).catch(() => undefined);
say('before crash', { b: journal.get('b')?.state, cAttempts: journal.get('c')?.attempts });
process.kill(process.pid, 'SIGKILL');
