import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig, type Config } from '../config/config.js';
import type { GiteaApi } from '../gitea/api.js';
import { Journal } from '../journal/journal.js';
import { type JournalReader, memoryDatabase, openJournalReader } from '../journal/reader.js';
import type { Logger } from '../log/logger.js';
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

/**
 * Opens the journal in `dataDir` for a tool that changes it (`replay --failed --local`). Unlike the
 * service, a tool never creates one: a mistyped DATA_DIR must say so instead of showing an empty history.
 */
export function openJournalForWriting(dataDir: string, log: Logger): Journal {
  const file = journalFile(dataDir);
  if (!fs.existsSync(file)) throw new ToolError(`no journal at ${file} (is DATA_DIR right?)`);
  try {
    return Journal.open({ dataDir, sync: 'normal', log });
  } catch (error) {
    throw new ToolError(errorText(error));
  }
}

/**
 * Opens the journal in `dataDir` for reading only (src/journal/reader.ts): what explain, export,
 * replay and a backfill dry run use, so they write nothing to DATA_DIR and work where it is read-only.
 */
export function openJournalForReading(dataDir: string): JournalReader {
  try {
    return openJournalReader(dataDir);
  } catch (error) {
    throw new ToolError(errorText(error));
  }
}

export function journalFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'journal.db');
}

/**
 * An in-memory copy of a database (the journal's, with its ownership tables), or an empty one.
 * A dry run evaluates against it: the evaluator's bookkeeping (who removed which label, the known
 * label set) lands in the copy, and DATA_DIR is left exactly as it was.
 */
export function scratchDatabase(source?: Database.Database): Database.Database {
  if (!source) return new Database(':memory:');
  return memoryDatabase(source.serialize());
}

/** The bot's login (`GET /user`): checks GITEA_URL and GITEA_TOKEN before any work starts. */
export async function botIdentity(gitea: GiteaApi, giteaUrl: string): Promise<string> {
  try {
    return (await gitea.getCurrentUser()).login;
  } catch (error) {
    throw new ToolError(`cannot identify the bot at ${giteaUrl}: ${errorText(error)}`);
  }
}
