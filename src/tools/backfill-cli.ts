import fs from 'node:fs';
import { Command } from 'commander';
import type { Config } from '../config/config.js';
import type { GiteaApi } from '../gitea/api.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { Evaluator } from '../scheduler/types.js';
import type { Store } from '../store/api.js';
import { ScratchOwnership } from '../store/scratch.js';
import { leasedEvaluator, toolHolder } from './lease.js';
import { GITEA_VARIABLES, parseArgs, parseUsage, runTool, ToolError, toolGiteaClient, type ToolIO } from './cli.js';
import { backfill, renderBackfillSummary, renderBackfillTable } from './backfill-tool.js';
import { parseOrgName, parseRepoRef } from './filter.js';
import { createProgress } from './progress.js';
import { serviceEvaluator } from './replay.js';
import { botIdentity, journalFile, openToolStore, STORE_VARIABLES, storeSecrets, toolServiceConfig } from './runtime.js';

export const BACKFILL_TOOL = 'backfill';

export interface BackfillCliOptions {
  repos: string[];
  orgs: string[];
  dryRun: boolean;
  /** Overrides CONCURRENCY. */
  concurrency?: number;
  verbose: boolean;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

function backfillProgram(): Command {
  return new Command(BACKFILL_TOOL)
    .description(
      "Triage the open issues and pull requests that exist already, with the service's own evaluator, " +
        'concurrently, each issue under its lease in the store (never at the same time as the service). Labels are ' +
        'written and ownership recorded in the store as for a webhook, unless --dry-run (the store is only read).\n\n' +
        'Reads GITEA_URL, GITEA_TOKEN, DATABASE_URL and DATABASE_SCHEMA (PostgreSQL) else DATA_DIR (SQLite), LEASE_TTL_MS, CONCURRENCY, TRIAGE_CONFIG.',
    )
    .option('--repo <owner/repo>', 'a repository to sweep (repeatable)', collect)
    .option('--org <name>', 'every repository of this organisation (repeatable)', collect)
    .option('--dry-run', 'decide and print a table (issue, title, would add, would remove); write nothing')
    .option('--concurrency <n>', 'evaluations at once (default: CONCURRENCY)')
    .option('--verbose', 'show the service log lines (Gitea requests, decisions) on stderr');
}

export function parseBackfillArgs(argv: readonly string[], io: ToolIO): BackfillCliOptions | 'help' {
  const opts = parseArgs(backfillProgram(), argv, io);
  if (opts === 'help') return 'help';
  const repos = ((opts.repo as string[] | undefined) ?? []).map((r) => parseRepoRef(r, '--repo'));
  const orgs = ((opts.org as string[] | undefined) ?? []).map((o) => parseOrgName(o, '--org'));
  if (repos.length === 0 && orgs.length === 0) throw new ToolError('give --repo owner/repo or --org NAME (repeatable)');
  const out: BackfillCliOptions = { repos, orgs, dryRun: opts.dryRun === true, verbose: opts.verbose === true };
  if (opts.concurrency !== undefined) {
    const text = String(opts.concurrency);
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 1024) throw new ToolError(`--concurrency: expected an integer from 1 to 1024, got ${JSON.stringify(text)}`);
    out.concurrency = n;
  }
  return out;
}

export async function backfillMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  const secrets: string[] = [];
  return runTool(
    BACKFILL_TOOL,
    io,
    async () => {
      const options = parseUsage(() => parseBackfillArgs(argv, io));
      if (options === 'help') return 0;
      const config = toolServiceConfig(env, [...GITEA_VARIABLES, ...STORE_VARIABLES, 'LEASE_TTL_MS', 'CONCURRENCY', 'TRIAGE_CONFIG']);
      secrets.push(config.giteaToken, ...storeSecrets(config));
      const log = createLogger({ tool: { verbose: options.verbose }, stream: io.stderr, redact: secrets });

      const store = await openBackfillStore(config, options.dryRun, log);
      const gitea = toolGiteaClient(config, log);
      const progress = createProgress({ label: BACKFILL_TOOL, stream: io.stderr });
      const scratch = options.dryRun ? new ScratchOwnership(store?.ownership) : undefined;
      try {
        const bot = await botIdentity(gitea, config.giteaUrl);
        const evaluator = backfillEvaluator({ store, scratch, gitea, log, config, botLogin: () => bot });
        const summary = await backfill({
          gitea,
          evaluator,
          repos: options.repos,
          orgs: options.orgs,
          concurrency: options.concurrency ?? config.concurrency,
          log,
          onProgress: (done, total) => progress.update(done, total),
        });
        progress.stop();
        io.stdout.write(`${renderBackfillTable(summary.rows, options.dryRun)}\n`);
        io.stdout.write(`${renderBackfillSummary(summary, options.dryRun)}\n`);
        if (summary.failed > 0) {
          const first = summary.rows.find((r) => r.error !== undefined)!;
          throw new ToolError(`${summary.failed} of ${summary.rows.length} issues failed (first: ${first.subject}: ${first.error})`);
        }
        return 0;
      } finally {
        progress.stop();
        gitea.close();
        scratch?.close();
        await store?.close();
      }
    },
    () => secrets,
  );
}

/**
 * A real run writes where the service keeps its records (and creates the SQLite store, like the
 * service, when the backfill comes first); a dry run opens the store read-only, when there is one,
 * to seed its scratch records from, and writes nothing to it.
 */
async function openBackfillStore(config: Config, dryRun: boolean, log: Logger): Promise<Store | undefined> {
  if (!dryRun) return openToolStore(config, log, { readOnly: false, create: true });
  const exists = config.databaseUrl !== undefined || fs.existsSync(journalFile(config.dataDir));
  return exists ? openToolStore(config, log, { readOnly: true }) : undefined;
}

/**
 * The service's evaluator for a backfill. Dry run: on scratch ownership records seeded, issue by
 * issue, from the store (src/store/scratch.ts). Real run: on the store's records, each issue
 * evaluated under its lease, the one the service's scheduler takes (src/tools/lease.ts).
 */
function backfillEvaluator(parts: {
  store: Store | undefined;
  scratch: ScratchOwnership | undefined;
  gitea: GiteaApi;
  log: Logger;
  config: Config;
  botLogin: () => string;
}): Evaluator {
  const { store, scratch, gitea, log, config, botLogin } = parts;
  if (scratch) return scratch.seeding(serviceEvaluator({ gitea, store: { ownership: scratch.ownership }, log, config, botLogin, dryRun: true }));
  if (!store) throw new Error('backfill: a real run needs the store'); // openBackfillStore always opens one
  const inner = serviceEvaluator({ gitea, store, log, config, botLogin, dryRun: false });
  return leasedEvaluator(inner, { leases: store.leases, holder: toolHolder(BACKFILL_TOOL), log, ttlMs: config.leaseTtlMs });
}
