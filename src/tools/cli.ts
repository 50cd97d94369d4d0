import { CommanderError, type Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { errorText } from '../errors.js';
import { type GiteaClient, giteaClientFromConfig } from '../gitea/client.js';
import type { Logger } from '../log/logger.js';

/**
 * Shared plumbing of the operator tools (`scripts/*.ts`), and their one convention:
 * - each tool is `xMain(argv, env, io)`: `argv` without `node` and the script, `env` the environment
 *   (only the variables the tool needs are read, through `loadConfig`), `io` its streams; it resolves
 *   with the exit code and never calls `process.exit`;
 * - arguments are parsed with commander; the same thing has the same flag in every tool: `--delivery ID`
 *   (one delivery), `--issue owner/repo#n`, `--repo owner/repo`, `--org NAME`, `--from FILE` (read
 *   input from a file), `--dry-run`, `--verbose`;
 * - exit codes: {@link EXIT_OK} 0, {@link EXIT_FAILURE} 1 (the work failed), {@link EXIT_USAGE} 2 (bad
 *   arguments or environment: nothing was attempted); `--help` prints the usage and exits 0;
 * - output is the tool's report on stdout; a failure is one line `<tool>: <reason>` on stderr, secrets masked.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure the operator must act on: printed as `<tool>: <message>`, exit code `exitCode`. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/**
 * Runs a tool's argument parser: any {@link ToolError} it throws (a bad or missing option, options
 * that do not go together) is a usage error, exit code {@link EXIT_USAGE}.
 */
export function parseUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof ToolError && error.exitCode !== EXIT_USAGE) throw new ToolError(error.message, EXIT_USAGE);
    throw error;
  }
}

/** Where a tool reads and writes: the process's streams in scripts, in-memory ones in tests. */
export interface ToolIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Absent when the tool must not read stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/**
 * Parses `argv` (without `node` and the script) with a commander program. `--help` prints the help on
 * stdout and returns `'help'`; a usage error becomes a {@link ToolError} with commander's reason, so it
 * is printed as one line like every other failure (commander's own `error: …` output is suppressed).
 */
export function parseArgs(program: Command, argv: readonly string[], io: ToolIO): 'help' | Record<string, unknown> {
  program
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => {},
    });
  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 'help';
      throw new ToolError(error.message.replace(/^error:\s*/, ''), EXIT_USAGE);
    }
    throw error;
  }
  return program.opts();
}

/**
 * Runs a tool's body: its resolved number is the exit code (default 0). Any error becomes one line
 * `<tool>: <reason>` on stderr and exit code 1 (or the {@link ToolError}'s code). `secrets()` is asked
 * at failure time, so secrets read during the run are masked too.
 */
export async function runTool(
  tool: string,
  io: ToolIO,
  body: () => Promise<number | void>,
  secrets: () => readonly string[] = () => [],
): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (error) {
    io.stderr.write(`${tool}: ${errorText(error, secrets())}\n`);
    return error instanceof ToolError ? error.exitCode : 1;
  }
}

/** Environment variables a tool may ask for, and the `Config` field each one fills. */
const TOOL_VARIABLES = {
  GITEA_URL: 'giteaUrl',
  GITEA_TOKEN: 'giteaToken',
  WEBHOOK_SECRET: 'webhookSecrets',
  GITEA_TIMEOUT_MS: 'giteaTimeoutMs',
  GITEA_RETRIES: 'giteaRetries',
  GITEA_MAX_SOCKETS: 'giteaMaxSockets',
  DATA_DIR: 'dataDir',
  DATABASE_URL: 'databaseUrl',
  DATABASE_SCHEMA: 'databaseSchema',
  DATABASE_POOL_SIZE: 'databasePoolSize',
  LEASE_TTL_MS: 'leaseTtlMs',
  CONCURRENCY: 'concurrency',
  TRIAGE_CONFIG: 'triageConfigPath',
  LOG_LEVEL: 'logLevel',
} as const satisfies Record<string, keyof Config>;

export type ToolVariable = keyof typeof TOOL_VARIABLES;
export type ToolConfig<V extends ToolVariable> = Pick<Config, (typeof TOOL_VARIABLES)[V]>;

/** What a tool that talks to Gitea reads: where, who, and the client's limits. */
export const GITEA_VARIABLES = ['GITEA_URL', 'GITEA_TOKEN', 'GITEA_TIMEOUT_MS', 'GITEA_RETRIES', 'GITEA_MAX_SOCKETS'] as const;

/** `loadConfig` requires these; a tool that does not need one gets a placeholder it never sees. */
const REQUIRED_PLACEHOLDERS: Record<string, string> = {
  GITEA_URL: 'http://placeholder.invalid',
  GITEA_TOKEN: 'placeholder',
  WEBHOOK_SECRET: 'placeholder',
};

/**
 * The service's configuration parsed by `loadConfig` (same validation, same messages), from only the
 * `variables` the tool needs: an unrelated bad variable (say `PORT`) does not stop a tool. The result
 * holds only the fields of those variables. A `ConfigError` becomes a one-line {@link ToolError} with exit code {@link EXIT_USAGE}.
 */
export function loadToolConfig<V extends ToolVariable>(
  env: Readonly<Record<string, string | undefined>>,
  variables: readonly V[],
): ToolConfig<V> {
  const subset: Record<string, string | undefined> = { ...REQUIRED_PLACEHOLDERS };
  for (const name of variables) subset[name] = env[name];
  let config: Config;
  try {
    config = loadConfig(subset);
  } catch (error) {
    if (error instanceof ConfigError) throw new ToolError(`${error.variable}: ${error.expected}`, EXIT_USAGE);
    throw error;
  }
  const picked: Partial<Config> = {};
  for (const name of variables) {
    const field = TOOL_VARIABLES[name];
    (picked as Record<string, unknown>)[field] = config[field];
  }
  return picked as ToolConfig<V>;
}

/** The service's Gitea client with the configured limits: tools have no HTTP code of their own. */
export function toolGiteaClient(config: ToolConfig<(typeof GITEA_VARIABLES)[number]>, log: Logger): GiteaClient {
  return giteaClientFromConfig({ ...config, giteaKeepAlive: true }, log, { userAgent: 'gitea-triage-tools' });
}
