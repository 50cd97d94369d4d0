import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { GiteaError } from '../../../src/gitea/errors.js';
import { EXIT_USAGE, loadToolConfig, parseArgs, parseUsage, runTool, ToolError } from '../../../src/tools/cli.js';
import { captureIO } from '../../helpers/capture-io.js';

describe('loadToolConfig', () => {
  it('parses only the variables the tool needs, with loadConfig’s validation and defaults', () => {
    const config = loadToolConfig({ GITEA_URL: 'http://gitea:3000/', GITEA_TOKEN: 'tok-1234', PORT: 'not-a-port', GITEA_RETRIES: '2' }, [
      'GITEA_URL',
      'GITEA_TOKEN',
      'GITEA_RETRIES',
      'GITEA_TIMEOUT_MS',
    ]);
    // PORT is invalid but not asked for; WEBHOOK_SECRET is required by the service but not by this tool.
    expect(config).toEqual({ giteaUrl: 'http://gitea:3000', giteaToken: 'tok-1234', giteaRetries: 2, giteaTimeoutMs: 10_000 });
  });

  it('reports a bad or missing variable as one ToolError line naming it', () => {
    expect(() => loadToolConfig({ GITEA_URL: 'gitea:3000', GITEA_TOKEN: 't' }, ['GITEA_URL', 'GITEA_TOKEN'])).toThrow(
      new ToolError('GITEA_URL: an http(s) URL without credentials, query or fragment, e.g. http://127.0.0.1:3000'),
    );
    expect(() => loadToolConfig({}, ['WEBHOOK_SECRET'])).toThrow(/^WEBHOOK_SECRET: required: /);
    let error: unknown;
    try {
      loadToolConfig({}, ['GITEA_URL']);
    } catch (e) {
      error = e;
    }
    expect((error as ToolError).exitCode).toBe(EXIT_USAGE);
  });
});

describe('runTool', () => {
  it('prints `<tool>: <reason>` once on stderr and returns the exit code', async () => {
    const io = captureIO();
    const gitea = new GiteaError({ message: 'GET /repos/a/b/hooks → 404: Not Found', method: 'GET', path: '/repos/a/b/hooks', status: 404, transient: false });
    expect(await runTool('t', io, () => Promise.reject(gitea))).toBe(1);
    expect(await runTool('t', io, () => Promise.reject(new ToolError('nothing to do', 3)))).toBe(3);
    expect(await runTool('t', io, async () => 0)).toBe(0);
    expect(io.err()).toBe('t: GET /repos/a/b/hooks → 404: Not Found\nt: nothing to do\n');
  });
});

describe('parseArgs', () => {
  const program = () => new Command('t').requiredOption('--url <url>', 'where').option('--n <n>', 'how many');

  it('returns the options, or "help" after printing the help on stdout', () => {
    expect(parseArgs(program(), ['--url', 'x'], captureIO())).toEqual({ url: 'x' });
    const io = captureIO();
    expect(parseArgs(program(), ['--help'], io)).toBe('help');
    expect(io.out()).toContain('Usage: t [options]');
    expect(io.err()).toBe('');
  });

  it('turns commander’s usage errors into one-line ToolErrors without printing them itself', () => {
    const io = captureIO();
    expect(() => parseArgs(program(), [], io)).toThrow(new ToolError("required option '--url <url>' not specified"));
    expect(() => parseArgs(program(), ['--url', 'x', 'extra'], io)).toThrow(/^too many arguments/);
    expect(io.err()).toBe('');
  });
});

describe('exit codes', () => {
  const exitCodeOf = (body: () => unknown) =>
    runTool('t', captureIO(), async () => {
      await body();
    });

  it('2 for a usage error: commander’s, or any ToolError a tool’s argument parser throws', async () => {
    const program = () => new Command('t').requiredOption('--url <url>', 'where');
    expect(await exitCodeOf(() => parseArgs(program(), [], captureIO()))).toBe(2);
    expect(await exitCodeOf(() => parseUsage(() => parseArgs(program(), ['--bogus'], captureIO())))).toBe(2);
    expect(
      await exitCodeOf(() =>
        parseUsage(() => {
          throw new ToolError('give --repo owner/repo');
        }),
      ),
    ).toBe(2);
  });

  it('1 for a failure of the work; other errors pass through parseUsage unchanged', async () => {
    expect(await exitCodeOf(() => Promise.reject(new ToolError('nothing matched')))).toBe(1);
    const bug = new TypeError('x is undefined');
    expect(() =>
      parseUsage(() => {
        throw bug;
      }),
    ).toThrow(bug);
  });
});
