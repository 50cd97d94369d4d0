import fs from 'node:fs';
import { LabelApplier } from '../applier/applier.js';
import type { Config } from '../config/config.js';
import { ContextLoader } from '../context/context.js';
import { TriageEvaluator } from '../evaluation/evaluator.js';
import type { GiteaApi } from '../gitea/api.js';
import type { Logger } from '../log/logger.js';
import { parseTriageConfig } from '../triage/config.js';
import type { Store } from '../store/api.js';

export interface TriageParts {
  /**
   * The store: its ownership records, and the repos' context generations when it has them (a
   * tool's scratch copy may not: then only this process's own push observations drop a context).
   */
  store: Pick<Store, 'ownership'> & Partial<Pick<Store, 'generations'>>;
  gitea: GiteaApi;
  log: Logger;
  config: Config;
  /** The bot's login once the service's `GET /user` answered (see `service/identity.ts`). */
  botLogin: () => string | undefined;
  /** Overrides `config.dryRun`. */
  dryRun?: boolean;
}

/**
 * Builds the triage evaluator from the service's parts: the context cache (`CONTEXT_TTL_MS`, and
 * `TRIAGE_CONFIG` read and checked here, so a bad default stops the start), the ownership store in
 * the journal's database, the applier, and the bot's identity as the service learned it.
 * @throws Error naming `TRIAGE_CONFIG` when its file cannot be read or does not parse.
 */
export function createTriageEvaluator(parts: TriageParts): TriageEvaluator {
  const { store, gitea, log, config } = parts;
  const generations = store.generations;
  const defaultConfig = config.triageConfigPath !== undefined ? readDefaultConfig(config.triageConfigPath) : undefined;
  const context = new ContextLoader({
    gitea,
    ttlMs: config.contextTtlMs,
    log,
    ...(defaultConfig ? { defaultConfig } : {}),
    ...(generations ? { generation: (repo: string) => generations.get(repo) } : {}),
  });
  return new TriageEvaluator({
    gitea,
    context,
    store: store.ownership,
    applier: new LabelApplier({ gitea, store: store.ownership }),
    botLogin: parts.botLogin,
    dryRun: parts.dryRun ?? config.dryRun,
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
