import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../config/config.js';
import type { GiteaApi } from '../gitea/api.js';
import type { Logger } from '../log/logger.js';
import { openStore, type Store, type StoreConfig } from '../store/api.js';
import { errorText } from '../errors.js';
import { loadToolConfig, ToolError, type ToolVariable } from './cli.js';

/**
 * A whole {@link Config} for a tool that runs the service's evaluator (`createTriageEvaluator` takes
 * one): the `variables` the tool reads come from `env` through `loadToolConfig` (same validation and
 * messages as the service; an unrelated bad variable does not stop the tool), every other field
 * keeps the service's default.
 */
export function toolServiceConfig(env: Readonly<Record<string, string | undefined>>, variables: readonly ToolVariable[]): Config {
  // Placeholders only for loadConfig's required variables; the picked ones replace them.
  const defaults = loadConfig({ GITEA_URL: 'http://placeholder.invalid', GITEA_TOKEN: 'placeholder', WEBHOOK_SECRET: 'placeholder' });
  return { ...defaults, ...loadToolConfig(env, variables) };
}

/** Where the store is, as for the service: `DATABASE_URL` (PostgreSQL) or else the SQLite store in `DATA_DIR`. */
export const STORE_VARIABLES = ['DATA_DIR', 'DATABASE_URL', 'DATABASE_SCHEMA', 'DATABASE_POOL_SIZE'] as const;

/** The password of `DATABASE_URL`, to mask in a tool's failure line (empty when there is none). */
export function storeSecrets(config: Pick<Config, 'databaseUrl'>): string[] {
  if (config.databaseUrl === undefined) return [];
  try {
    const password = decodeURIComponent(new URL(config.databaseUrl).password);
    return password === '' ? [] : [password];
  } catch {
    return [];
  }
}

/**
 * Opens the store of `config` (`openStore`, as the service does) for a tool; an error opening it
 * becomes a one-line {@link ToolError}. `readOnly`: nothing is created, migrated or written (a
 * missing SQLite journal or PostgreSQL schema is an error). Writable on SQLite, the journal must
 * exist unless `create` (a backfill may come before the service, and creates it like the service).
 */
export async function openToolStore(config: StoreConfig, log: Logger, options: { readOnly: boolean; create?: boolean }): Promise<Store> {
  if (!options.readOnly && config.databaseUrl === undefined && options.create !== true) {
    const file = journalFile(config.dataDir);
    if (!fs.existsSync(file)) throw new ToolError(`no journal at ${file} (is DATA_DIR right?)`);
  }
  try {
    return await openStore(config, log, { readOnly: options.readOnly });
  } catch (error) {
    throw new ToolError(errorText(error, storeSecrets(config)));
  }
}

export function journalFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'journal.db');
}

/** The bot's login (`GET /user`): checks GITEA_URL and GITEA_TOKEN before any work starts. */
export async function botIdentity(gitea: GiteaApi, giteaUrl: string): Promise<string> {
  try {
    return (await gitea.getCurrentUser()).login;
  } catch (error) {
    throw new ToolError(`cannot identify the bot at ${giteaUrl}: ${errorText(error)}`);
  }
}
