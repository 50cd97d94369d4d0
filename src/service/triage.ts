import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { LabelApplier } from '../applier/applier.js';
import { OwnershipStore } from '../applier/ownership.js';
import type { Config } from '../config/config.js';
import { ContextLoader } from '../context/context.js';
import { TriageEvaluator } from '../evaluation/evaluator.js';
import type { GiteaApi } from '../gitea/api.js';
import type { GroupedWriter } from '../journal/journal.js';
import type { Logger } from '../log/logger.js';
import { parseTriageConfig } from '../triage/config.js';

export interface TriageParts {
  /**
   * The journal: its better-sqlite3 database also holds the ownership tables, whose writes join its
   * group commit through `writer`. Without `writer` (a scratch copy for a dry run) each commits alone.
   */
  journal: { db: Database.Database; writer?: GroupedWriter };
  gitea: GiteaApi;
  log: Logger;
  config: Config;
  /** The bot's login once the service's `GET /user` answered (see `service/identity.ts`). */
  botLogin: () => string | undefined;
}

/**
 * Builds the triage evaluator from the service's parts: the context cache (`CONTEXT_TTL_MS`, and
 * `TRIAGE_CONFIG` read and checked here, so a bad default stops the start), the ownership store in
 * the journal's database, the applier, and the bot's identity as the service learned it.
 * @throws Error naming `TRIAGE_CONFIG` when its file cannot be read or does not parse.
 */
export function createTriageEvaluator(parts: TriageParts): TriageEvaluator {
  const { journal, gitea, log, config } = parts;
  const defaultConfig = config.triageConfigPath !== undefined ? readDefaultConfig(config.triageConfigPath) : undefined;
  const context = new ContextLoader({
    gitea,
    ttlMs: config.contextTtlMs,
    log,
    ...(defaultConfig ? { defaultConfig } : {}),
  });
  const store = new OwnershipStore(journal.db, { writer: journal.writer });
  return new TriageEvaluator({
    gitea,
    context,
    store,
    applier: new LabelApplier({ gitea, store }),
    botLogin: parts.botLogin,
    dryRun: config.dryRun,
    log,
  });
}

/** `TRIAGE_CONFIG`'s text, checked: the default config of repos without their own. */
function readDefaultConfig(file: string): { text: string; file: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`TRIAGE_CONFIG: cannot read ${file}: ${(error as Error).message}`);
  }
  const parsed = parseTriageConfig(text, file);
  if ('problem' in parsed) {
    const p = parsed.problem;
    throw new Error(`TRIAGE_CONFIG: ${p.file}${p.line !== undefined ? `:${p.line}` : ''}: ${p.message}`);
  }
  return { text, file };
}
