import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Journal } from '../../../src/journal/journal.js';
import type { NewDelivery } from '../../../src/journal/types.js';
import { createLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { receiveDelivery, type ReceiverDeps } from '../../../src/receiver/receive.js';
import { fixtureDelivery, FIXTURE_SECRET, lowerCased, signDelivery, type SignedDelivery } from '../../helpers/signing.js';

// receiveDelivery without HTTP (the replay tool calls it this way), on a real journal.

let dir: string;
let journal: Journal;
let logs: LogCapture;
let journaled: NewDelivery[];
let deps: ReceiverDeps;
let shuttingDown = false;
let bot: string | undefined = 'triage-bot';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
  logs = new LogCapture();
  const log = createLogger({ level: 'debug', format: 'json', stream: logs.stream });
  journal = Journal.open({ dataDir: dir, sync: 'normal', log });
  journaled = [];
  deps = {
    secrets: ['old-secret', FIXTURE_SECRET],
    maxBodyBytes: 10_000,
    journal,
    botLogin: () => bot,
    shuttingDown: () => shuttingDown,
    onJournaled: (d) => journaled.push(d),
    log,
  };
});
afterAll(async () => {
  await journal.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const receive = (d: Pick<SignedDelivery, 'headers' | 'body'>) => receiveDelivery({ headers: lowerCased(d.headers), body: d.body }, deps);

describe('receiveDelivery', () => {
  it('journals a verified delivery, then calls onJournaled once', async () => {
    const d = fixtureDelivery('issues-opened');
    const result = await receive(d);
    expect(result).toMatchObject({ status: 202, body: { status: 'accepted', delivery: d.id } });
    expect(result.delivery).toMatchObject({ id: d.id, state: 'pending', subject: 'acme/widgets#42', body: d.json });
    expect(journal.get(d.id)?.state).toBe('pending');
    expect(journaled.filter((j) => j.id === d.id)).toHaveLength(1);
    const received = logs.find({ msg: 'received', delivery: d.id })[0];
    expect(received).toMatchObject({ level: 'debug', event: 'issues', action: 'opened', repo: 'acme/widgets', number: 42 });
    expect(logs.find({ msg: 'journaled', delivery: d.id })[0]).toMatchObject({ level: 'info', event: 'issues', action: 'opened' });
  });

  it('stores the headers for replay, without a credential in Authorization', async () => {
    const d = fixtureDelivery('issues-opened');
    await receive({ headers: { ...d.headers, Authorization: 'Bearer hook-credential' }, body: d.body });
    const row = journal.get(d.id)!;
    expect(row.headers['x-gitea-signature']).toBe(d.headers['X-Gitea-Signature']);
    expect(row.headers['x-gitea-event-type']).toBe('issues');
    expect(row.headers.authorization).toBeUndefined();
    expect(JSON.stringify(row)).not.toContain('hook-credential');
  });

  it('does not call onJournaled for a duplicate', async () => {
    const d = fixtureDelivery('issues-edited');
    await receive(d);
    const before = journaled.length;
    expect(await receive(d)).toEqual({ status: 200, body: { status: 'duplicate' } });
    expect(journaled.length).toBe(before);
  });

  it('answers 503 while shutting down, before looking at anything else', async () => {
    shuttingDown = true;
    try {
      const result = await receive({ headers: {}, body: Buffer.alloc(0) });
      expect(result).toEqual({ status: 503, body: { error: 'shutting down' } });
    } finally {
      shuttingDown = false;
    }
  });

  it('checks the size before the signature', async () => {
    const d = signDelivery('x'.repeat(10_001), { event: 'issues', secret: 'wrong' });
    expect((await receive(d)).status).toBe(413);
  });

  it('treats an empty signature (a hook without secret) as missing', async () => {
    const d = fixtureDelivery('issues-opened');
    const headers = { ...d.headers, 'X-Gitea-Signature': '', 'X-Gogs-Signature': '', 'X-Hub-Signature-256': 'sha256=' };
    expect(await receive({ headers, body: d.body })).toEqual({ status: 401, body: { error: 'missing signature' } });
  });

  it('refuses an empty body as unsigned content', async () => {
    const d = fixtureDelivery('issues-opened');
    expect((await receive({ headers: d.headers, body: Buffer.alloc(0) })).status).toBe(401);
  });

  it('accepts an upper-case hex signature', async () => {
    const d = fixtureDelivery('push', { signatures: 'gitea' });
    const headers = { ...d.headers, 'X-Gitea-Signature': d.headers['X-Gitea-Signature']!.toUpperCase() };
    expect((await receive({ headers, body: d.body })).status).toBe(202);
  });

  it('matches the bot login case-insensitively (Gitea logins are)', async () => {
    const d = fixtureDelivery('issues-label_updated', { mutate: (b) => (b.sender.login = 'Triage-Bot') });
    const result = await receive(d);
    expect(result).toMatchObject({ status: 202, body: { status: 'ignored' }, delivery: { state: 'ignored', reason: 'sent by the bot' } });
    expect(journaled.map((j) => j.id)).toContain(d.id);
  });

  it('journals as pending while the bot identity is still unknown', async () => {
    bot = undefined;
    try {
      const d = fixtureDelivery('issues-label_updated', { mutate: (b) => (b.sender.login = 'triage-bot') });
      expect((await receive(d)).delivery?.state).toBe('pending');
    } finally {
      bot = 'triage-bot';
    }
  });

  it('answers 503 when the journal cannot be written, and journals nothing', async () => {
    journal.db.pragma('query_only = 1');
    try {
      const d = fixtureDelivery('issues-opened');
      const before = journaled.length;
      expect(await receive(d)).toEqual({ status: 503, body: { error: 'journal unavailable' } });
      expect(journaled.length).toBe(before);
      expect(logs.find({ msg: 'journal unavailable', delivery: d.id })).toHaveLength(1);
    } finally {
      journal.db.pragma('query_only = 0');
    }
    expect((await receive(fixtureDelivery('issues-opened'))).status).toBe(202);
  });

  it('still answers 202 when onJournaled throws (the delivery is durable)', async () => {
    const original = deps.onJournaled;
    deps.onJournaled = () => {
      throw new Error('boom');
    };
    try {
      const d = fixtureDelivery('issues-opened');
      expect((await receive(d)).status).toBe(202);
      expect(journal.get(d.id)?.state).toBe('pending');
    } finally {
      deps.onJournaled = original;
    }
  });

  it('logs rejections at warn with status and reason, never the signature', async () => {
    const d = fixtureDelivery('issues-opened', { secret: 'nope' });
    await receive(d);
    const line = logs.lines.filter((l) => l.msg === 'webhook rejected' && l.status === 401).at(-1);
    expect(line).toMatchObject({ level: 'warn', reason: 'signature does not match' });
    expect(logs.text).not.toContain(d.headers['X-Gitea-Signature']);
    expect(logs.text).not.toContain(FIXTURE_SECRET);
  });
});
