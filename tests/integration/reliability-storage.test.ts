import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { fixtureDelivery, FIXTURE_SECRET } from '../helpers/signing.js';
import { spawnTs } from '../helpers/process.js';
import { RecordingEvaluator, startService, tempDataDir, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

// Storage faults. At start: a DATA_DIR that cannot be written stops the process with one clear line.
// At run time: while the journal cannot be written, webhooks are refused with 503 (Gitea records the
// failure; an operator can redeliver) instead of being acknowledged and lost, /readyz says why, and
// both recover by themselves once the journal can be written again.

const dirs: string[] = [];
const services: TestService[] = [];
afterAll(async () => {
  for (const s of services) await s.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = tempDataDir();
  dirs.push(d);
  return d;
}

async function runMain(dataDir: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const proc = spawnTs('src/main.ts', {
    GITEA_URL: 'http://127.0.0.1:9',
    GITEA_TOKEN: 'storage-token-0123456789',
    WEBHOOK_SECRET: FIXTURE_SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
  });
  const { code } = await proc.exited;
  return { code, stderr: proc.stderr(), stdout: JSON.stringify(proc.lines) };
}

describe('DATA_DIR not writable at start', () => {
  // The tests run as root here, where a chmod'ed directory stays writable: an unwritable DATA_DIR is
  // made instead from a regular file, which no one (root included) can create a directory under.
  it('exits 1 with one line naming DATA_DIR when its parent is a regular file', async () => {
    const file = path.join(scratch(), 'not-a-directory');
    fs.writeFileSync(file, 'x');
    const dataDir = path.join(file, 'data');
    const { code, stderr, stdout } = await runMain(dataDir);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gitea-triage: DATA_DIR .* is not writable: ENOTDIR/);
    expect(lines[0]).toContain(dataDir);
    expect(stdout).not.toContain('listening');
  }, 30_000);

  it('exits 1 with one line when DATA_DIR is a regular file', async () => {
    const file = path.join(scratch(), 'data');
    fs.writeFileSync(file, 'x');
    const { code, stderr } = await runMain(file);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gitea-triage: DATA_DIR .* is not writable/);
  }, 30_000);

  it('exits 1 with one line when the journal file cannot be opened', async () => {
    const dataDir = scratch();
    fs.mkdirSync(path.join(dataDir, 'journal.db')); // a directory where the database file should be
    const { code, stderr, stdout } = await runMain(dataDir);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gitea-triage: cannot start: journal: cannot open .*journal\.db/);
    expect(stdout).not.toContain('listening');
  }, 30_000);
});

describe('the journal failing at run time', () => {
  it('answers 503 while the journal cannot be written, and 202 again once it can', async () => {
    const ts = await startService({ dataDir: scratch() });
    services.push(ts);
    const db = ts.service.journal.db;

    expect((await ts.post(fixtureDelivery('issues-opened'))).status).toBe(202);

    // SQLite refuses every write from now on, as on a full or read-only disk.
    db.pragma('query_only = 1');
    const refused = fixtureDelivery('issues-edited');
    const during = await ts.post(refused);
    expect(during.status).toBe(503);
    expect(during.json).toEqual({ error: 'journal unavailable' });
    expect(ts.service.journal.get(refused.id)).toBeUndefined();
    const ready = await ts.get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json.reasons).toContain('journal unavailable');

    db.pragma('query_only = 0');
    // Gitea's manual "redeliver" sends the same body again: it is accepted now.
    const again = await ts.post(fixtureDelivery('issues-edited', { id: refused.id }));
    expect(again.status).toBe(202);
    expect(ts.service.journal.get(refused.id)?.state).toMatch(/pending|done/);
    expect((await ts.get('/readyz')).status).toBe(200);
  });

  it('keeps an accepted delivery pending while its bookkeeping fails, and finishes it after recovery', async () => {
    const evaluator = new RecordingEvaluator();
    evaluator.hold = true;
    const ts = await startService({ dataDir: scratch(), evaluator });
    services.push(ts);
    const db = ts.service.journal.db;

    const d = fixtureDelivery('issues-opened');
    expect((await ts.post(d)).status).toBe(202);
    await waitFor(() => evaluator.held === 1, { what: 'the evaluation to start' });
    db.pragma('query_only = 1');
    evaluator.release(); // the evaluation ends; marking it done fails
    await waitFor(() => ts.logs.find({ msg: 'evaluation bookkeeping failed: journal unavailable' }).length > 0, {
      what: 'the failed bookkeeping to be logged',
    });
    expect(ts.service.journal.get(d.id)?.state).toBe('pending');

    db.pragma('query_only = 0');
    await waitFor(() => ts.service.journal.get(d.id)?.state === 'done', { timeoutMs: 15_000, what: 'the delivery to be done' });
    // Evaluated again after recovery (at least once is the promise; labels are idempotent).
    expect(evaluator.deliveryIds.filter((id) => id === d.id).length).toBeGreaterThanOrEqual(2);
  });
});
