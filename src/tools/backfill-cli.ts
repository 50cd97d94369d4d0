import fs from 'node:fs';
import { Command } from 'commander';
import { errorText } from '../errors.js';
import { Journal } from '../journal/journal.js';
import { createLogger } from '../log/logger.js';
import type { JournalReader } from '../journal/reader.js';
import { GITEA_VARIABLES, parseArgs, parseUsage, runTool, ToolError, toolGiteaClient, type ToolIO } from './cli.js';
import { backfill, renderBackfillSummary, renderBackfillTable } from './backfill-tool.js';
import { parseOrgName, parseRepoRef } from './filter.js';
import { createProgress } from './progress.js';
import { serviceEvaluator } from './replay.js';
import { botIdentity, journalFile, openJournalForReading, scratchDatabase, toolServiceConfig } from './runtime.js';

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
        'concurrently. Labels are written and ownership recorded in DATA_DIR as for a webhook, unless --dry-run.\n\n' +
        'Reads GITEA_URL, GITEA_TOKEN, DATA_DIR, CONCURRENCY, TRIAGE_CONFIG.',
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
      const config = toolServiceConfig(env, [...GITEA_VARIABLES, 'DATA_DIR', 'CONCURRENCY', 'TRIAGE_CONFIG']);
      secrets.push(config.giteaToken);
      const log = createLogger({ tool: { verbose: options.verbose }, stream: io.stderr, redact: secrets });

      // A real run records ownership where the service keeps it (and creates the journal, like the
      // service, when the backfill comes first); a dry run reads the journal read-only
      // (src/journal/reader.ts), works on a copy and leaves DATA_DIR alone.
      let journal: Journal | undefined;
      let reader: JournalReader | undefined;
      try {
        if (!options.dryRun) journal = Journal.open({ dataDir: config.dataDir, sync: 'normal', log });
        else if (fs.existsSync(journalFile(config.dataDir))) reader = openJournalForReading(config.dataDir);
      } catch (error) {
        throw new ToolError(errorText(error));
      }
      const gitea = toolGiteaClient(config, log);
      const progress = createProgress({ label: BACKFILL_TOOL, stream: io.stderr });
      try {
        const bot = await botIdentity(gitea, config.giteaUrl);
        const store = options.dryRun ? { db: scratchDatabase(reader?.db) } : { db: journal!.db, writer: journal!.writer };
        const evaluator = serviceEvaluator({ gitea, ...store, log, config, botLogin: () => bot, dryRun: options.dryRun });
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
        reader?.close();
        await journal?.close();
      }
    },
    () => secrets,
  );
}
