import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { createLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';
import { captureIO } from '../../helpers/capture-io.js';
import { buildTimeline, clockTime, formatDuration, logsMain, parseIssueArg, selectRecords, summarize } from '../../../src/tools/logs.js';

const D1 = '6f1c2a8e-0000-4000-8000-000000000001';
const D2 = '6f1c2a8e-0000-4000-8000-000000000002';
const D3 = '6f1c2a8e-0000-4000-8000-000000000003';

/** A delivery's life as the service logs it (field names of docs/architecture.md, "Structured logs"; messages of the stages). */
const LIFE = [
  { level: 'debug', time: '2025-03-01T10:00:00.004Z', msg: 'received', delivery: D1, event: 'issues', action: 'opened', repo: 'acme/widgets', number: 7, eventType: 'issues' },
  { level: 'info', time: '2025-03-01T10:00:00.012Z', msg: 'journaled', delivery: D1, event: 'issues', action: 'opened', repo: 'acme/widgets', number: 7, state: 'pending', subject: 'acme/widgets#7' },
  { level: 'info', time: '2025-03-01T10:00:00.020Z', msg: 'journaled', delivery: D2, event: 'issues', action: 'opened', repo: 'acme/other', number: 1, state: 'pending' },
  { level: 'info', time: '2025-03-01T10:00:00.262Z', msg: 'batched', delivery: D1, batch: 'b-17', subject: 'acme/widgets#7' },
  { level: 'info', time: '2025-03-01T10:00:00.301Z', msg: 'applied', delivery: D1, batch: 'b-17', repo: 'acme/widgets', number: 7, attempt: 1, added: ['kind/bug', 'needs-info'], removed: [], durationMs: 21 },
  { level: 'info', time: '2025-03-01T10:00:00.305Z', msg: 'evaluated', delivery: D1, batch: 'b-17', repo: 'acme/widgets', number: 7, attempt: 1, deliveries: [D1], durationMs: 43.2, added: ['kind/bug', 'needs-info'], removed: [] },
];

const text = (records: object[], extra: string[] = []): string[] => [...records.map((r) => JSON.stringify(r)), ...extra];

describe('logs: selecting lines', () => {
  it('keeps the lines of one delivery, by `delivery` or inside `deliveries`, and nothing of another', async () => {
    const batchedLater = {
      level: 'error',
      time: '2025-03-01T10:00:01.000Z',
      msg: 'failed',
      delivery: D3,
      deliveries: [D3, D1],
      repo: 'acme/widgets',
      number: 7,
      error: 'GET /repos/acme/widgets/issues/7 → 500',
    };
    const t = await buildTimeline(text([...LIFE, batchedLater]), { delivery: D1 });
    expect(t.kept.map((r) => r.msg)).toEqual(['received', 'journaled', 'batched', 'applied', 'evaluated', 'failed']);
    expect(t.kept.every((r) => r.delivery === D1 || (r.deliveries as string[]).includes(D1))).toBe(true);
    expect(t.lines.join('\n')).not.toContain('acme/other');
  });

  it('keeps an issue’s lines, its subject-only lines, and lines that only name one of its deliveries', () => {
    const onlyDelivery = { level: 'warn', time: '2025-03-01T10:00:00.290Z', msg: 'retry scheduled', deliveries: [D1], error: 'socket hang up' };
    const otherIssue = { level: 'info', time: '2025-03-01T10:00:00.295Z', msg: 'applied', delivery: D2, repo: 'acme/widgets', number: 8, added: ['x'] };
    const kept = selectRecords([...LIFE, onlyDelivery, otherIssue], { issue: { repo: 'acme/widgets', number: 7 } });
    expect(kept.map((r) => r.msg)).toEqual(['received', 'journaled', 'batched', 'applied', 'evaluated', 'retry scheduled']);
  });

  it('with no filter keeps every JSON line and counts the others as skipped', async () => {
    const t = await buildTimeline(text(LIFE, ['> gitea-triage@0.1.0 start', '10:00:00.004 info  received  delivery=x', '[1,2]', '']), {});
    expect(t.kept).toHaveLength(LIFE.length);
    expect(t.skipped).toBe(3);
    expect(t.read).toBe(LIFE.length);
  });

  it('puts lines in time order when files were concatenated out of order', async () => {
    const shuffled = [LIFE[4], LIFE[0], LIFE[3], LIFE[1]] as object[];
    const t = await buildTimeline(text(shuffled), { delivery: D1 });
    expect(t.kept.map((r) => r.msg)).toEqual(['received', 'journaled', 'batched', 'applied']);
  });
});

describe('logs: the timeline', () => {
  it('prints time, level, msg and the interesting fields, one line each, and a summary', async () => {
    const t = await buildTimeline(text(LIFE), { delivery: D1 });
    expect(t.lines).toEqual([
      '10:00:00.004 debug received   event=issues action=opened',
      '10:00:00.012 info  journaled  event=issues action=opened state=pending',
      '10:00:00.262 info  batched    batch=b-17',
      '10:00:00.301 info  applied    batch=b-17 attempt=1 durationMs=21 added=kind/bug,needs-info',
      '10:00:00.305 info  evaluated  batch=b-17 attempt=1 durationMs=43.2 added=kind/bug,needs-info',
    ]);
    expect(t.summary).toBe('10:00:00.004 → 10:00:00.305 (301 ms) · 5 lines · outcome: evaluated (+kind/bug +needs-info)');
  });

  it('names the issue and the delivery on each line when no filter fixes them', async () => {
    const t = await buildTimeline(text([LIFE[1], LIFE[2]] as object[]), {});
    expect(t.lines[0]).toBe(`10:00:00.012 info  journaled  acme/widgets#7 delivery=${D1} event=issues action=opened state=pending`);
    expect(t.lines[1]).toContain(`acme/other#1 delivery=${D2}`);
  });

  it('reports a failure as the outcome, with its error', () => {
    const failed = { level: 'error', time: '2025-03-01T10:00:12.500Z', msg: 'failed', delivery: D1, error: 'PUT /x → 403: forbidden', attempts: 5 };
    expect(summarize([...LIFE.slice(0, 2), LIFE[4] as object, failed] as Record<string, unknown>[])).toBe(
      '10:00:00.004 → 10:00:12.500 (12.5 s) · 4 lines · outcome: failed (PUT /x → 403: forbidden)',
    );
  });

  it('says when the story has no outcome yet, and counts deliveries of an issue', () => {
    const second = { ...LIFE[1], delivery: D3, time: '2025-03-01T10:00:03.000Z' };
    expect(summarize([LIFE[0], LIFE[1], second] as Record<string, unknown>[])).toBe(
      '10:00:00.004 → 10:00:03.000 (3.00 s) · 3 lines · 2 deliveries · outcome: none yet (no evaluated, applied or failed line)',
    );
  });

  it('quotes values with spaces and leaves out empty lists', async () => {
    const line = { level: 'warn', time: '2025-03-01T10:00:00.100Z', msg: 'retry scheduled', delivery: D1, added: [], error: 'no answer from Gitea (ECONNRESET)' };
    const t = await buildTimeline(text([line]), { delivery: D1 });
    expect(t.lines[0]).toBe('10:00:00.100 warn  retry scheduled  error="no answer from Gitea (ECONNRESET)"');
  });

  it('reads the real logger’s lines: the documented fields survive the round trip', async () => {
    const capture = new LogCapture();
    const log = createLogger({ level: 'debug', format: 'json', stream: capture.stream });
    const d = log.child({ delivery: D1, event: 'issues', action: 'opened', repo: 'acme/widgets', number: 7 });
    d.debug('received', { eventType: 'issues' });
    d.info('journaled', { state: 'pending' });
    log.info('batched', { delivery: D1, batch: 'b-1', subject: 'acme/widgets#7' });
    const run = log.child({ delivery: D1, batch: 'b-1', repo: 'acme/widgets', number: 7, attempt: 1 });
    run.info('applied', { added: ['kind/bug'], removed: ['needs-info'], durationMs: 5 });
    run.info('evaluated', { deliveries: [D1], added: ['kind/bug'], removed: ['needs-info'], durationMs: 9 });
    log.info('journaled', { delivery: D2, repo: 'acme/widgets', number: 9, state: 'pending' });
    await new Promise<void>((resolve) => log.on('finish', resolve).end());

    const t = await buildTimeline(capture.text.split('\n'), { issue: parseIssueArg('acme/widgets#7') });
    expect(t.kept.map((r) => r.msg)).toEqual(['received', 'journaled', 'batched', 'applied', 'evaluated']);
    expect(t.lines[3]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} info {2}applied {4}delivery=\S+ batch=b-1 attempt=1 durationMs=5 added=kind\/bug removed=needs-info$/);
    expect(t.summary).toMatch(/ · 5 lines · outcome: evaluated \(\+kind\/bug -needs-info\)$/);
  });
});

describe('logs: helpers', () => {
  it('formats clock times and durations', () => {
    expect(clockTime('2025-03-01T23:59:58.7Z')).toBe('23:59:58.700');
    expect(clockTime('2025-03-01T01:02:03Z')).toBe('01:02:03.000');
    expect(clockTime(undefined)).toBe('--:--:--.---');
    expect(formatDuration(999)).toBe('999 ms');
    expect(formatDuration(61_000)).toBe('1 min 1 s');
    expect(formatDuration(3_720_000)).toBe('1 h 2 min');
  });

  it('parses owner/repo#n and refuses anything else', () => {
    expect(parseIssueArg('acme/widgets#12')).toEqual({ repo: 'acme/widgets', number: 12 });
    expect(() => parseIssueArg('acme#12')).toThrow('--issue must be owner/repo#number, got "acme#12"');
    expect(() => parseIssueArg('acme/widgets')).toThrow('--issue must be owner/repo#number');
  });
});

describe('logs: the command', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-logs-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads stdin, prints the timeline and the summary with the skipped count, exit 0', async () => {
    const io = captureIO(text(LIFE, ['not json']).join('\n') + '\n');
    const code = await logsMain(['--delivery', D1], {}, io);
    expect(code).toBe(0);
    const out = io.out().trimEnd().split('\n');
    expect(out).toHaveLength(6);
    expect(out[0]).toBe('10:00:00.004 debug received   event=issues action=opened');
    expect(out[5]).toBe('10:00:00.004 → 10:00:00.305 (301 ms) · 5 lines · outcome: evaluated (+kind/bug +needs-info) · 1 non-JSON line skipped');
    expect(io.err()).toBe('');
  });

  it('reads --from FILE', async () => {
    const file = path.join(dir, 'service.log');
    fs.writeFileSync(file, text(LIFE).join('\n'));
    const io = captureIO();
    expect(await logsMain(['--issue', 'acme/other#1', '--from', file], {}, io)).toBe(0);
    expect(io.out()).toContain('10:00:00.020 info  journaled  delivery=' + D2);
    expect(io.out()).not.toContain(D1);
  });

  it('fails with one line when nothing matches or the file is missing (exit 1), or the arguments are wrong (exit 2)', async () => {
    const cases: [string[], string, RegExp, number][] = [
      [['--delivery', 'nope'], text(LIFE).join('\n'), /^logs: no line of delivery nope among 6 JSON lines from stdin\n$/, 1],
      [['--from', path.join(dir, 'missing.log')], '', /^logs: cannot read .*missing\.log: ENOENT\n$/, 1],
      [['--issue', 'widgets#1'], '', /^logs: --issue must be owner\/repo#number, got "widgets#1"\n$/, 2],
      [['--delivery', D1, '--issue', 'a/b#1'], '', /^logs: give --delivery or --issue, not both\n$/, 2],
      [['--frobnicate'], '', /^logs: unknown option '--frobnicate'\n$/, 2],
      [[], 'garbage\n', /^logs: no JSON log line in stdin \(1 non-JSON line skipped\)\n$/, 1],
    ];
    for (const [argv, stdin, expected, code] of cases) {
      const io = captureIO(stdin);
      expect(await logsMain(argv, {}, io)).toBe(code);
      expect(io.err()).toMatch(expected);
      expect(io.out()).toBe('');
    }
  });

  it('refuses to wait on a terminal', async () => {
    const io = captureIO('');
    (io.stdin as { isTTY?: boolean }).isTTY = true;
    expect(await logsMain([], {}, io)).toBe(2);
    expect(io.err()).toBe('logs: no input: give --from FILE or pipe the log into stdin\n');
  });

  it('prints its help on stdout and exits 0', async () => {
    const io = captureIO();
    expect(await logsMain(['--help'], {}, io)).toBe(0);
    expect(io.out()).toContain('--delivery <id>');
    expect(io.err()).toBe('');
  });
});
