import { Command } from 'commander';
import { parseArgs, parseUsage, runTool, ToolError, type ToolIO } from './cli.js';
import { storeDeliveries, writeExport } from './deliveries.js';
import { silentLogger } from '../log/logger.js';
import { type DeliveryFilter, parseDeliveryFilter } from './filter.js';
import { openToolStore, STORE_VARIABLES, storeSecrets, toolServiceConfig } from './runtime.js';

export const EXPORT_TOOL = 'export';

export interface ExportOptions {
  filter: DeliveryFilter;
  /** A file path, or `-` for stdout. */
  out: string;
}

function exportProgram(): Command {
  return new Command(EXPORT_TOOL)
    .description(
      'Write recorded deliveries from the store (DATABASE_URL, else the journal in DATA_DIR) as JSON lines ' +
        '{id, event, eventType, headers, body, receivedAt, state, lastError} (body: the JSON exactly as received), ' +
        'to attach a repro to a bug report and replay it elsewhere (`npm run replay -- --from FILE …`).',
    )
    .option('--delivery <id>', 'one delivery (its X-Gitea-Delivery id)')
    .option('--issue <owner/repo#n>', 'the deliveries of one issue or pull request')
    .option('--repo <owner/repo>', 'the deliveries of one repository')
    .option('--since <iso>', 'received at or after this time (ISO 8601)')
    .option('--until <iso>', 'received before this time (ISO 8601)')
    .option('--failed', 'only dead-lettered deliveries')
    .requiredOption('--out <file.jsonl>', 'where to write (- for stdout)');
}

export function parseExportArgs(argv: readonly string[], io: ToolIO): ExportOptions | 'help' {
  const opts = parseArgs(exportProgram(), argv, io);
  if (opts === 'help') return 'help';
  const out = String(opts.out);
  if (out.trim() === '') throw new ToolError('--out: a file path is required');
  return { filter: parseDeliveryFilter(opts), out };
}

/** The whole command. Resolves with the exit code; the count goes to stderr when the rows go to stdout. */
export async function exportMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  const secrets: string[] = [];
  return runTool(
    EXPORT_TOOL,
    io,
    async () => {
    const options = parseUsage(() => parseExportArgs(argv, io));
    if (options === 'help') return 0;
    const config = toolServiceConfig(env, STORE_VARIABLES);
    secrets.push(...storeSecrets(config));
    // Read-only: export writes nothing to the store (openStore's readOnly).
    const store = await openToolStore(config, silentLogger(), { readOnly: true });
    try {
      const rows = await storeDeliveries(store.deliveries, options.filter);
      if (rows.length === 0) throw new ToolError(`no recorded deliveries match in ${store.location}`);
      const text = writeExport(rows, options.out);
      const summary = `${rows.length} ${rows.length === 1 ? 'delivery' : 'deliveries'} written to ${options.out === '-' ? 'stdout' : options.out}\n`;
      if (options.out === '-') {
        io.stdout.write(text);
        io.stderr.write(summary);
      } else {
        io.stdout.write(summary);
      }
      return 0;
    } finally {
      await store.close();
    }
    },
    () => secrets,
  );
}
