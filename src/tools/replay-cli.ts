import fs from 'node:fs';
import { Command, Option } from 'commander';
import { errorText } from '../errors.js';
import type { GiteaApi } from '../gitea/api.js';
import { ScratchOwnership } from '../store/scratch.js';
import type { Store } from '../store/api.js';
import type { StoredDelivery } from '../journal/types.js';
import { createLogger, type Logger } from '../log/logger.js';
import { GITEA_VARIABLES, parseArgs, parseUsage, runTool, ToolError, toolGiteaClient, type ToolIO } from './cli.js';
import { fileDeliveries, storeDeliveries } from './deliveries.js';
import { toolHolder } from './lease.js';
import { type DeliveryFilter, parseDeliveryFilter } from './filter.js';
import { createProgress, type Progress } from './progress.js';
import {
  candidateEvaluator,
  evaluateLocally,
  previewConfig,
  renderDecision,
  renderPreview,
  renderReprocessed,
  renderSent,
  replayToUrl,
  reprocessFailed,
  serviceEvaluator,
  summarizeDecisions,
  summarizeSent,
  webhookUrl,
} from './replay.js';
import { botIdentity, journalFile, openToolStore, STORE_VARIABLES, storeSecrets, toolServiceConfig } from './runtime.js';

export const REPLAY_TOOL = 'replay';

export interface ReplayOptions {
  filter: DeliveryFilter;
  /** An export file instead of the store. */
  from?: string;
  mode: { kind: 'url'; url: string; sameId: boolean } | { kind: 'local'; config?: string };
  verbose: boolean;
}

function replayProgram(): Command {
  return new Command(REPLAY_TOOL)
    .description(
      'Replay recorded webhook deliveries: re-send them to a receiver (--url), or run them through the ' +
        "service's own pipeline code here (--local): a dry run that prints each decision with its reasons.\n\n" +
        'Sources: the store (DATABASE_URL and DATABASE_SCHEMA, else the journal in DATA_DIR), or a JSON-lines file from `npm run export` (--from).\n\n' +
        '--url reads WEBHOOK_SECRET (the first secret signs); --local reads GITEA_URL, GITEA_TOKEN, TRIAGE_CONFIG, CONCURRENCY.',
    )
    .addOption(new Option('--delivery <id>', 'one delivery (its X-Gitea-Delivery id)').conflicts(['issue', 'repo']))
    .addOption(new Option('--issue <owner/repo#n>', 'the deliveries of one issue or pull request').conflicts(['repo']))
    .option('--repo <owner/repo>', 'the deliveries of one repository')
    .option('--since <iso>', 'received at or after this time (ISO 8601)')
    .option('--until <iso>', 'received before this time (ISO 8601)')
    .option(
      '--failed',
      'only dead-lettered deliveries; with --local and the journal: reprocess them for real (requeue, evaluate, mark done or failed again)',
    )
    .option('--from <file.jsonl>', 'read deliveries from an export file instead of the journal')
    .addOption(new Option('--url <url>', 'POST each delivery to this receiver (e.g. http://127.0.0.1:8080/webhook)').conflicts(['local']))
    .option('--same-id', 'with --url: keep the recorded delivery id (a receiver that has it answers "duplicate")')
    .option('--local', 'evaluate here, in dry run, with the service code against GITEA_URL; print the decisions')
    .option('--config <file>', 'with --local: preview a candidate triage config instead of each repo’s own; print the label difference per issue')
    .option('--verbose', 'show the service log lines (Gitea requests, evaluations) on stderr');
}

/** Parses and checks the arguments; `'help'` when `--help` was printed. */
export function parseReplayArgs(argv: readonly string[], io: ToolIO): ReplayOptions | 'help' {
  const opts = parseArgs(replayProgram(), argv, io);
  if (opts === 'help') return 'help';
  const filter = parseDeliveryFilter(opts);
  const from = opts.from as string | undefined;
  const url = opts.url as string | undefined;
  const local = opts.local === true;
  const config = opts.config as string | undefined;
  if (url === undefined && !local) throw new ToolError('give --url URL (re-send to a receiver) or --local (evaluate here)');
  if (opts.sameId === true && url === undefined) throw new ToolError('--same-id goes with --url');
  if (config !== undefined && !local) throw new ToolError('--config goes with --local');
  if (config !== undefined && filter.failed && from === undefined) {
    throw new ToolError('--config previews a config in dry run; --failed with the journal reprocesses for real: use one of them');
  }
  const mode: ReplayOptions['mode'] =
    url !== undefined ? { kind: 'url', url: webhookUrl(url), sameId: opts.sameId === true } : { kind: 'local', ...(config !== undefined ? { config } : {}) };
  return { filter, ...(from !== undefined ? { from } : {}), mode, verbose: opts.verbose === true };
}

/** Runs with a progress display on stderr when the run is long enough to need one (or on a terminal). */
function progressFor(io: ToolIO, label: string, total: number): Progress | undefined {
  const stream = io.stderr as NodeJS.WritableStream & { isTTY?: boolean };
  if (!stream.isTTY && total < 20) return undefined;
  return createProgress({ label, stream });
}

/** Runs `run` with a progress display fed by its `onProgress` (subjects evaluated of all). */
async function withProgress<T>(io: ToolIO, rows: readonly StoredDelivery[], run: (onProgress: (done: number, total: number) => void) => Promise<T>): Promise<T> {
  const subjects = new Set(rows.flatMap((r) => (r.subject !== null ? [r.subject] : []))).size;
  const progress = progressFor(io, REPLAY_TOOL, subjects);
  try {
    return await run((done, total) => progress?.update(done, total));
  } finally {
    progress?.stop();
  }
}

type ReplayConfig = ReturnType<typeof toolServiceConfig>;

/** Where the deliveries come from, and the store opened for them (if any). */
interface ReplaySource {
  rows: StoredDelivery[];
  /** Read-only unless `replay --failed --local` reprocesses the store's dead letters for real. */
  store?: Store;
  close(): Promise<void>;
}

/**
 * The rows to replay: from an export file, or from the store (`DATABASE_URL`, else the journal in
 * DATA_DIR; never created by a tool). Only `--failed --local` on the store opens it for writing;
 * every other mode opens it read-only (openStore's readOnly), so it is left as it was. With
 * `--from`, an existing store only lends its ownership records to a `--local` run.
 */
async function openSource(options: ReplayOptions, config: ReplayConfig, reprocess: boolean, log: Logger): Promise<ReplaySource> {
  const storeExists = config.databaseUrl !== undefined || fs.existsSync(journalFile(config.dataDir));
  const wantStore = options.from === undefined || (options.mode.kind === 'local' && storeExists);
  const store = wantStore ? await openToolStore(config, log, { readOnly: !reprocess }) : undefined;
  const close = async () => {
    await store?.close();
  };
  try {
    const rows = options.from !== undefined ? fileDeliveries(options.from, options.filter) : await storeDeliveries(store!.deliveries, options.filter);
    if (rows.length === 0) {
      throw new ToolError(`no recorded deliveries match in ${options.from ?? store!.location}`);
    }
    return { rows, ...(store ? { store } : {}), close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * A dry run's ownership records: a scratch copy (src/store/scratch.ts) seeded from the store, when
 * there is one, with the records of the subjects of `rows`; the store itself is only read.
 */
async function scratchFor(source: ReplaySource, rows: readonly StoredDelivery[]): Promise<ScratchOwnership> {
  const scratch = new ScratchOwnership(source.store?.ownership);
  try {
    await scratch.seed(rows.flatMap((r) => (r.subject !== null ? [r.subject] : [])));
  } catch (error) {
    scratch.close();
    throw new ToolError(`cannot read the ownership records from ${source.store?.location ?? 'the store'}: ${errorText(error)}`);
  }
  return scratch;
}

/** `--url`: POST each row to the receiver, report each answer and the count of each outcome. */
async function replayToReceiver(rows: StoredDelivery[], url: string, sameId: boolean, secret: string, io: ToolIO): Promise<number> {
  const progress = progressFor(io, REPLAY_TOOL, rows.length);
  let done = 0;
  const sent = await replayToUrl(rows, {
    url,
    secret,
    sameId,
    onSent: (s) => {
      progress?.update(++done, rows.length);
      if (!progress) io.stdout.write(`${renderSent(s)}\n`);
    },
  });
  progress?.stop();
  if (progress) for (const s of sent) io.stdout.write(`${renderSent(s)}\n`);
  io.stdout.write(`${summarizeSent(sent, url)}\n`);
  // A duplicate is not a failure (the receiver has the delivery), but it is not reported as accepted.
  const refused = sent.filter((s) => s.outcome === 'refused' || s.outcome === 'no answer');
  if (refused.length > 0) {
    const first = refused[0]!;
    throw new ToolError(`${refused.length} of ${sent.length} deliveries were not accepted (first: ${first.status ?? 'no answer'} ${first.answer})`);
  }
  return 0;
}

interface LocalRun {
  rows: StoredDelivery[];
  source: ReplaySource;
  config: ReplayConfig;
  log: Logger;
  gitea: GiteaApi;
  botLogin: () => string;
  io: ToolIO;
}

/**
 * `--failed --local` on the store: requeue, evaluate for real under each subject's lease (as the
 * service does: the two never evaluate one issue at once), mark done or failed again.
 */
async function reprocessJournal(run: LocalRun): Promise<number> {
  const { rows, config, log, gitea, botLogin, io } = run;
  const store = run.source.store!;
  const evaluator = serviceEvaluator({ gitea, store, log, config, botLogin, dryRun: false });
  const holder = toolHolder(REPLAY_TOOL);
  const results = await withProgress(io, rows, (onProgress) =>
    reprocessFailed(store, rows, { evaluator, log, concurrency: config.concurrency, holder, leaseTtlMs: config.leaseTtlMs, onProgress }),
  );
  for (const r of results) io.stdout.write(`${renderReprocessed(r)}\n`);
  const still = results.filter((r) => r.state === 'failed');
  const left = results.filter((r) => r.state === 'pending').length;
  io.stdout.write(
    `${results.length} failed ${results.length === 1 ? 'delivery' : 'deliveries'} reprocessed: ${results.filter((r) => r.state === 'done').length} done, ` +
      `${still.length} still failed${left > 0 ? `, ${left} left to the service (it holds their lease)` : ''}\n`,
  );
  if (still.length > 0) throw new ToolError(`${still.length} of ${results.length} deliveries still fail (first: ${still[0]!.lastError ?? 'unknown error'})`);
  return 0;
}

/** `--local --config FILE`: per subject, the label difference between the candidate and the current config. */
async function previewCandidate(run: LocalRun, file: string): Promise<number> {
  const { rows, config, log, gitea, botLogin, io } = run;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ToolError(`--config: cannot read ${file}: ${errorText(error)}`);
  }
  const [forCandidate, forCurrent] = [await scratchFor(run.source, rows), await scratchFor(run.source, rows)];
  let preview;
  try {
    const candidate = candidateEvaluator({ gitea, ownership: forCandidate.ownership, log, config, botLogin, text, file });
    const current = serviceEvaluator({ gitea, store: { ownership: forCurrent.ownership }, log, config, botLogin, dryRun: true });
    preview = await withProgress(io, rows, (onProgress) => previewConfig(rows, { log, concurrency: config.concurrency, current, candidate, onProgress }));
  } finally {
    forCandidate.close();
    forCurrent.close();
  }
  for (const row of preview) io.stdout.write(`${renderPreview(row)}\n`);
  const differing = preview.filter((p) => p.plus.length + p.minus.length > 0).length;
  io.stdout.write(`${preview.length} ${preview.length === 1 ? 'subject' : 'subjects'} previewed with ${file}: ${differing} with a different outcome\n`);
  return 0;
}

/** `--local`: the service's evaluator in dry run on a copy of the ownership records; print each decision. */
async function evaluateDryRun(run: LocalRun): Promise<number> {
  const { rows, config, log, gitea, botLogin, io } = run;
  const scratch = await scratchFor(run.source, rows);
  let decisions;
  try {
    const evaluator = serviceEvaluator({ gitea, store: { ownership: scratch.ownership }, log, config, botLogin, dryRun: true });
    decisions = await withProgress(io, rows, (onProgress) => evaluateLocally(rows, { log, concurrency: config.concurrency, evaluator, onProgress }));
  } finally {
    scratch.close();
  }
  for (const d of decisions) io.stdout.write(`${renderDecision(d)}\n`);
  io.stdout.write(`${summarizeDecisions(decisions, true)}\n`);
  return 0;
}

/** The whole command: arguments, environment, source, mode, report. Resolves with the exit code. */
export async function replayMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  const secrets: string[] = [];
  return runTool(
    REPLAY_TOOL,
    io,
    async () => {
      const options = parseUsage(() => parseReplayArgs(argv, io));
      if (options === 'help') return 0;
      const { mode } = options;
      const config = toolServiceConfig(env, [
        ...STORE_VARIABLES,
        ...(mode.kind === 'url' ? (['WEBHOOK_SECRET'] as const) : ([...GITEA_VARIABLES, 'LEASE_TTL_MS', 'CONCURRENCY', 'TRIAGE_CONFIG'] as const)),
      ]);
      secrets.push(...(mode.kind === 'url' ? config.webhookSecrets : [config.giteaToken]), ...storeSecrets(config));
      const log = createLogger({ tool: { verbose: options.verbose }, stream: io.stderr, redact: secrets });
      const reprocess = mode.kind === 'local' && options.filter.failed === true && options.from === undefined;
      const source = await openSource(options, config, reprocess, log);
      try {
        if (mode.kind === 'url') return await replayToReceiver(source.rows, mode.url, mode.sameId, config.webhookSecrets[0]!, io);
        const gitea = toolGiteaClient(config, log);
        try {
          const bot = await botIdentity(gitea, config.giteaUrl);
          const run: LocalRun = { rows: source.rows, source, config, log, gitea, botLogin: () => bot, io };
          if (reprocess) return await reprocessJournal(run);
          if (mode.config !== undefined) return await previewCandidate(run, mode.config);
          return await evaluateDryRun(run);
        } finally {
          gitea.close();
        }
      } finally {
        await source.close();
      }
    },
    () => secrets,
  );
}
