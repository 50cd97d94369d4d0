import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, redactDatabaseUrl } from '../../../src/config/config.js';

const required = {
  GITEA_URL: 'http://127.0.0.1:3000/',
  GITEA_TOKEN: 'tok-123456',
  WEBHOOK_SECRET: 'one, two',
};

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('loadConfig accepted ' + JSON.stringify(env));
}

describe('loadConfig', () => {
  it('applies the documented defaults and normalises the required values', () => {
    const c = loadConfig(required);
    expect(c).toMatchObject({
      giteaUrl: 'http://127.0.0.1:3000',
      webhookSecrets: ['one', 'two'],
      port: 8080,
      host: '0.0.0.0',
      dataDir: './data',
      concurrency: 8,
      batchWindowMs: 250,
      batchMax: 100,
      giteaMaxSockets: 16,
      giteaTimeoutMs: 10000,
      giteaRetries: 5,
      giteaKeepAlive: true,
      maxBodyBytes: 5242880,
      triageConfigPath: undefined,
      contextTtlMs: 300000,
      reconcileIntervalMs: 0,
      shutdownTimeoutMs: 10000,
      dryRun: false,
      logLevel: 'info',
      logFormat: 'json',
    });
  });

  it('reads every overridable variable', () => {
    const c = loadConfig({
      ...required,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: '/tmp/x',
      CONCURRENCY: '3',
      BATCH_WINDOW_MS: '0',
      BATCH_MAX: '7',
      GITEA_MAX_SOCKETS: '4',
      GITEA_TIMEOUT_MS: '500',
      GITEA_RETRIES: '0',
      MAX_BODY_BYTES: '1000',
      TRIAGE_CONFIG: './triage.yml',
      CONTEXT_TTL_MS: '0',
      RECONCILE_INTERVAL_MS: '60000',
      SHUTDOWN_TIMEOUT_MS: '2000',
      DRY_RUN: 'true',
      LOG_LEVEL: 'DEBUG',
      LOG_FORMAT: 'pretty',
    });
    expect(c).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      dataDir: '/tmp/x',
      concurrency: 3,
      batchWindowMs: 0,
      batchMax: 7,
      giteaMaxSockets: 4,
      giteaTimeoutMs: 500,
      giteaRetries: 0,
      maxBodyBytes: 1000,
      triageConfigPath: './triage.yml',
      contextTtlMs: 0,
      reconcileIntervalMs: 60000,
      shutdownTimeoutMs: 2000,
      dryRun: true,
      logLevel: 'debug',
      logFormat: 'pretty',
    });
  });

  it.each([
    [{ GITEA_TOKEN: 't', WEBHOOK_SECRET: 's' }, 'GITEA_URL', /required/],
    [{ ...required, GITEA_URL: 'gitea.local' }, 'GITEA_URL', /http\(s\) URL/],
    [{ ...required, GITEA_URL: 'ftp://x' }, 'GITEA_URL', /http\(s\) URL/],
    [{ GITEA_URL: 'http://x', WEBHOOK_SECRET: 's' }, 'GITEA_TOKEN', /required/],
    [{ GITEA_URL: 'http://x', GITEA_TOKEN: 't' }, 'WEBHOOK_SECRET', /required/],
    [{ ...required, WEBHOOK_SECRET: 'a,,b' }, 'WEBHOOK_SECRET', /non-empty/],
    [{ ...required, PORT: '70000' }, 'PORT', /integer from 0 to 65535/],
    [{ ...required, PORT: 'http' }, 'PORT', /integer/],
    [{ ...required, CONCURRENCY: '0' }, 'CONCURRENCY', /integer from 1/],
    [{ ...required, BATCH_MAX: '-1' }, 'BATCH_MAX', /integer/],
    [{ ...required, GITEA_MAX_SOCKETS: '1.5' }, 'GITEA_MAX_SOCKETS', /integer/],
    [{ ...required, DRY_RUN: 'maybe' }, 'DRY_RUN', /true or false/],
    [{ ...required, LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /error, warn, info, debug/],
    [{ ...required, LOG_FORMAT: 'xml' }, 'LOG_FORMAT', /json or pretty/],
  ])('rejects %j naming %s', (env, variable, expected) => {
    const err = errorOf(env as Record<string, string>);
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(new RegExp(`^${variable}: `));
    expect(err.message).toMatch(expected);
  });

  it('never echoes a secret value in its error', () => {
    const err = errorOf({ ...required, GITEA_TOKEN: 'supersecret-token', PORT: 'supersecret-token' });
    expect(err.message).not.toContain('supersecret-token');
  });

  it('selects SQLite unless DATABASE_URL is set, and reads the PostgreSQL settings', () => {
    const sqlite = loadConfig(required);
    expect(sqlite).toMatchObject({ databaseUrl: undefined, databaseSchema: 'gitea_triage', databasePoolSize: 10 });
    const pg = loadConfig({
      ...required,
      DATABASE_URL: 'postgres://triage:pw@db.example:5433/triage',
      DATABASE_SCHEMA: 'team_a',
      DATABASE_POOL_SIZE: '4',
    });
    expect(pg).toMatchObject({ databaseUrl: 'postgres://triage:pw@db.example:5433/triage', databaseSchema: 'team_a', databasePoolSize: 4 });
  });

  it.each([
    ['DATABASE_URL', 'mysql://u:p@h/db', /PostgreSQL URL/],
    ['DATABASE_URL', 'postgres://h', /PostgreSQL URL/],
    ['DATABASE_SCHEMA', 'Team-A', /schema name/],
    ['DATABASE_SCHEMA', '1abc', /schema name/],
    ['DATABASE_POOL_SIZE', '0', /integer from 1/],
  ])('rejects %s=%s', (variable, value, expected) => {
    const err = errorOf({ ...required, [variable]: value });
    expect(err.variable).toBe(variable);
    expect(err.message).toMatch(expected);
  });

  it("never echoes DATABASE_URL's password, and redacts it for logs", () => {
    const err = errorOf({ ...required, DATABASE_URL: 'mysql://triage:hunter2-secret@db/x' });
    expect(err.message).not.toContain('hunter2-secret');
    expect(redactDatabaseUrl('postgres://triage:hunter2-secret@db:5432/x')).toBe('postgres://triage:***@db:5432/x');
    expect(redactDatabaseUrl('postgres://triage@db/x')).toBe('postgres://triage@db/x');
  });
});
