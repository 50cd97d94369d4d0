import { z } from 'zod';

/**
 * The service's whole configuration, parsed once at start from the environment by
 * {@link loadConfig}. Every component receives the part it needs as arguments; nothing
 * else reads `process.env` (see docs/architecture.md, "Configuration").
 */
export interface Config {
  giteaUrl: string;
  giteaToken: string;
  webhookSecrets: string[];
  port: number;
  host: string;
  dataDir: string;
  concurrency: number;
  batchWindowMs: number;
  batchMax: number;
  giteaMaxSockets: number;
  giteaTimeoutMs: number;
  giteaRetries: number;
  /** false only for the benchmark's "linear" mode: a new TCP connection per request. */
  giteaKeepAlive: boolean;
  maxBodyBytes: number;
  triageConfigPath: string | undefined;
  contextTtlMs: number;
  reconcileIntervalMs: number;
  shutdownTimeoutMs: number;
  dryRun: boolean;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  logFormat: 'json' | 'pretty';
  /** How many times a whole evaluation is attempted before its deliveries are dead-lettered. */
  evalMaxAttempts: number;
  /** Done and ignored journal rows older than this are pruned. */
  journalRetentionMs: number;
  /** SQLite `synchronous` for the journal: `full` survives power loss, `normal` only process crashes. */
  journalSync: 'full' | 'normal';
  /**
   * `postgres://…`: the store is PostgreSQL, shared by several replicas; undefined: SQLite in
   * `dataDir` (docs/architecture.md, "The store"). Holds a password: log it only through
   * {@link redactDatabaseUrl}.
   */
  databaseUrl: string | undefined;
  /** PostgreSQL schema holding the store's tables: several installations can share one database. */
  databaseSchema: string;
  /** Most connections the PostgreSQL pool opens. */
  databasePoolSize: number;
  /**
   * How long a subject's lease lasts without renewal (ms): an evaluation renews it while it runs; a
   * process that dies leaves it to expire, then another one adopts the subject's pending rows
   * (docs/architecture.md, "The store").
   */
  leaseTtlMs: number;
  /** Period of the sweep that schedules pending rows nobody holds a lease on (adoption), ms. */
  orphanSweepMs: number;
}

/** A configuration value that stops the process at start: names the variable and what was expected. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
  ) {
    super(`${variable}: ${expected}`);
    this.name = 'ConfigError';
  }
}

const intIn = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `an integer from ${min} to ${max}`).max(max, `an integer from ${min} to ${max}`));

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no'].includes(v), 'true or false')
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const url = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.search && !u.hash && !u.username && !u.password;
    } catch {
      return false;
    }
  }, 'an http(s) URL without credentials, query or fragment, e.g. http://127.0.0.1:3000')
  .transform((v) => v.replace(/\/+$/, ''));

/**
 * A PostgreSQL connection URL. The messages never repeat the value: it may hold a password.
 */
const databaseUrl = z
  .string()
  .trim()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && u.hostname !== '' && u.pathname.length > 1;
    } catch {
      return false;
    }
  }, 'a PostgreSQL URL postgres://user[:password]@host[:port]/database');

/** The URL with its password replaced by `***`, for logs and messages. */
export function redactDatabaseUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable database URL]';
  }
}

const nonEmpty = (what: string) => z.string({ error: `required: ${what}` }).trim().min(1, `required: ${what}`);

/** One entry per variable (the README's "Configuration" table lists them): the variable's name is the key. */
const schema = z.object({
  GITEA_URL: z.string({ error: 'required: the base URL of the Gitea instance, e.g. http://127.0.0.1:3000' }).pipe(url),
  GITEA_TOKEN: nonEmpty('the API token of the bot account'),
  WEBHOOK_SECRET: nonEmpty("the webhook's secret (a comma-separated list accepts several)")
    .transform((v) => v.split(',').map((s) => s.trim()))
    .refine((list) => list.every((s) => s.length > 0), 'a comma-separated list of non-empty secrets'),
  PORT: intIn(0, 65535).default(8080),
  HOST: z.string().trim().min(1, 'a host name or address to listen on').default('0.0.0.0'),
  DATA_DIR: z.string().trim().min(1, 'a directory path').default('./data'),
  CONCURRENCY: intIn(1, 1024).default(8),
  BATCH_WINDOW_MS: intIn(0, 3_600_000).default(250),
  BATCH_MAX: intIn(1, 100_000).default(100),
  GITEA_MAX_SOCKETS: intIn(1, 1024).default(16),
  GITEA_TIMEOUT_MS: intIn(1, 600_000).default(10_000),
  GITEA_RETRIES: intIn(0, 100).default(5),
  GITEA_KEEP_ALIVE: bool.default(true),
  MAX_BODY_BYTES: intIn(1, 1_073_741_824).default(5_242_880),
  TRIAGE_CONFIG: z.string().trim().min(1, 'a file path').optional(),
  CONTEXT_TTL_MS: intIn(0, 604_800_000).default(300_000),
  RECONCILE_INTERVAL_MS: intIn(0, 604_800_000).default(0),
  SHUTDOWN_TIMEOUT_MS: intIn(0, 3_600_000).default(10_000),
  DRY_RUN: bool.default(false),
  LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['error', 'warn', 'info', 'debug'], { error: 'one of error, warn, info, debug' }))
    .default('info'),
  LOG_FORMAT: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['json', 'pretty'], { error: 'json or pretty' }))
    .default('json'),
  EVAL_MAX_ATTEMPTS: intIn(1, 100).default(5),
  JOURNAL_RETENTION_HOURS: intIn(1, 87_600).default(168),
  JOURNAL_SYNC: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['full', 'normal'], { error: 'full or normal' }))
    .default('full'),
  DATABASE_URL: databaseUrl.optional(),
  DATABASE_SCHEMA: z
    .string()
    .trim()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a PostgreSQL schema name: lower-case letters, digits and _, at most 63, not starting with a digit')
    .default('gitea_triage'),
  DATABASE_POOL_SIZE: intIn(1, 1000).default(10),
  LEASE_TTL_MS: intIn(100, 3_600_000).default(15_000),
  ORPHAN_SWEEP_MS: intIn(100, 3_600_000).default(2_000),
});

/** The variables the service reads, for `--help` texts and the README. */
export const CONFIG_VARIABLES = Object.keys(schema.shape);

/**
 * Parses the environment into a {@link Config}. Pure: give it any record (tests do).
 * Empty strings count as unset, so `FOO=` falls back to the default.
 * @throws ConfigError naming the first invalid variable.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const input: Record<string, string> = {};
  for (const key of CONFIG_VARIABLES) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(variable, issue.message);
  }
  const e = parsed.data;
  return {
    giteaUrl: e.GITEA_URL,
    giteaToken: e.GITEA_TOKEN,
    webhookSecrets: e.WEBHOOK_SECRET,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    concurrency: e.CONCURRENCY,
    batchWindowMs: e.BATCH_WINDOW_MS,
    batchMax: e.BATCH_MAX,
    giteaMaxSockets: e.GITEA_MAX_SOCKETS,
    giteaTimeoutMs: e.GITEA_TIMEOUT_MS,
    giteaRetries: e.GITEA_RETRIES,
    giteaKeepAlive: e.GITEA_KEEP_ALIVE,
    maxBodyBytes: e.MAX_BODY_BYTES,
    triageConfigPath: e.TRIAGE_CONFIG,
    contextTtlMs: e.CONTEXT_TTL_MS,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    dryRun: e.DRY_RUN,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    evalMaxAttempts: e.EVAL_MAX_ATTEMPTS,
    journalRetentionMs: e.JOURNAL_RETENTION_HOURS * 3_600_000,
    journalSync: e.JOURNAL_SYNC,
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    leaseTtlMs: e.LEASE_TTL_MS,
    orphanSweepMs: e.ORPHAN_SWEEP_MS,
  };
}
