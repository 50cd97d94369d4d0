import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { backfillMain } from '../../src/tools/backfill-cli.js';
import { explainMain } from '../../src/tools/explain-cli.js';
import { exportMain } from '../../src/tools/export-cli.js';
import { replayMain } from '../../src/tools/replay-cli.js';
import { spawnTs } from '../helpers/process.js';
import { runMain, tempDir } from './ops-harness.js';

let work: string;
const env = () => ({ GITEA_URL: 'http://127.0.0.1:9', GITEA_TOKEN: 'token-0123', WEBHOOK_SECRET: 'secret-0123', DATA_DIR: work });

beforeAll(() => {
  work = tempDir();
});

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe('the scripts, as child processes: one line on stderr and exit code 2 for bad arguments', () => {
  const cases: [string, string[], RegExp][] = [
    ['replay', ['--issue', 'acme/widgets#1'], /^replay: give --url URL \(re-send to a receiver\) or --local \(evaluate here\)$/],
    ['export', ['--repo', 'acme/widgets'], /^export: required option '--out <file\.jsonl>' not specified$/],
    ['backfill', ['--dry-run'], /^backfill: give --repo owner\/repo or --org NAME \(repeatable\)$/],
    ['explain', ['--issue', 'acme/widgets'], /^explain: --issue: expected owner\/repo#number, got "acme\/widgets"$/],
  ];
  it.each(cases)('%s %j', async (tool, args, line) => {
    const child = spawnTs(`scripts/${tool}.ts`, env(), args);
    const { code } = await child.exited;
    expect(child.stderr().trimEnd().split('\n')).toEqual([expect.stringMatching(line)]);
    expect(code).toBe(2);
    expect(child.lines).toEqual([]);
  }, 20_000);
});

describe('bad arguments, in process', () => {
  const cases: [typeof replayMain, string[], string][] = [
    [replayMain, ['--delivery', 'x', '--issue', 'a/b#1', '--local'], "replay: option '--delivery <id>' cannot be used with option '--issue <owner/repo#n>'"],
    [exportMain, ['--delivery', 'x', '--repo', 'a/b', '--out', '-'], 'export: --delivery and --repo cannot be used together'],
    [replayMain, ['--issue', 'a/b', '--local'], 'replay: --issue: expected owner/repo#number, got "a/b"'],
    [replayMain, ['--since', 'yesterday', '--local'], 'replay: --since: expected an ISO 8601 time such as 2026-01-31T12:00:00Z, got "yesterday"'],
    [replayMain, ['--since', '2026-02-01', '--until', '2026-01-01', '--local'], 'replay: --until must be later than --since'],
    [replayMain, ['--url', 'ftp://x', '--delivery', 'x'], 'replay: --url: expected an http(s) URL, got ftp:'],
    [replayMain, ['--url', 'http://x', '--local'], "replay: option '--url <url>' cannot be used with option '--local'"],
    [replayMain, ['--same-id', '--local'], 'replay: --same-id goes with --url'],
    [replayMain, ['--config', 'c.yml', '--url', 'http://x'], 'replay: --config goes with --local'],
    [replayMain, ['--failed', '--local', '--config', 'c.yml'], 'replay: --config previews a config in dry run; --failed with the journal reprocesses for real: use one of them'],
    [replayMain, ['--local', '--bogus'], "replay: unknown option '--bogus'"],
    [exportMain, ['--out', 'x.jsonl', '--repo', 'nope'], 'export: --repo: expected owner/repo, got "nope"'],
    [replayMain, ['--repo', 'acme/..', '--local'], 'replay: --repo: expected owner/repo, got "acme/.."'],
    [backfillMain, ['--repo', 'a/b', '--concurrency', '0'], 'backfill: --concurrency: expected an integer from 1 to 1024, got "0"'],
    [backfillMain, ['--org', 'a/b'], 'backfill: --org: expected an organisation name, got "a/b"'],
    [explainMain, [], 'explain: give --issue owner/repo#n'],
    [explainMain, ['--issue', 'a/b#1', 'a/b#2'], 'explain: give the issue once: --issue owner/repo#n'],
  ];
  it.each(cases.map(([main, args, line]) => [line.split(':')[0]! + ' ' + args.join(' '), main, args, line] as const))('%s', async (_title, main, args, line) => {
    const run = await runMain(main, args, env());
    expect(run.err).toBe(`${line}\n`);
    expect(run.code).toBe(2);
    expect(run.out).toBe('');
  });

  it('a missing variable is named (exit 2), and the token never shows', async () => {
    const run = await runMain(backfillMain, ['--repo', 'a/b'], { DATA_DIR: work });
    expect(run.err).toBe('backfill: GITEA_URL: required: the base URL of the Gitea instance, e.g. http://127.0.0.1:3000\n');
    expect(run.code).toBe(2);
    const unreachable = await runMain(backfillMain, ['--repo', 'a/b', '--dry-run'], { ...env(), GITEA_RETRIES: '0' });
    expect(unreachable.err).toMatch(/^backfill: cannot identify the bot at http:\/\/127\.0\.0\.1:9: GET \/user: no answer from Gitea \(ECONNREFUSED\)\n$/);
    expect(unreachable.err).not.toContain('token-0123');
    expect(unreachable.code).toBe(1);
  });

  it('a DATA_DIR without a journal is named, never created', async () => {
    const dir = path.join(work, 'missing');
    const run = await runMain(exportMain, ['--out', path.join(work, 'x.jsonl')], { DATA_DIR: dir });
    expect(run.err).toBe(`export: no journal at ${dir}/journal.db (is DATA_DIR right?)\n`);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('--help', () => {
  it.each([
    ['replay', replayMain],
    ['export', exportMain],
    ['backfill', backfillMain],
    ['explain', explainMain],
  ] as const)('%s prints its usage and exits 0', async (tool, main) => {
    const run = await runMain(main, ['--help'], {});
    expect(run.code).toBe(0);
    expect(run.out).toMatch(new RegExp(`^Usage: ${tool} `));
    expect(run.err).toBe('');
  });
});
