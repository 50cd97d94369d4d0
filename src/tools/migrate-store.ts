import { Command } from 'commander';
import { redactDatabaseUrl } from '../config/config.js';
import { silentLogger } from '../log/logger.js';
import { type CopyReport, copySqliteToPostgres, openSqliteSource } from '../store/migrate.js';
import { PostgresStore } from '../store/postgres/store.js';
import { loadToolConfig, parseArgs, runTool, ToolError, type ToolIO } from './cli.js';

export const MIGRATE_STORE_TOOL = 'migrate-store';

const LABELS: Record<keyof CopyReport, string> = {
  deliveries: 'deliveries',
  labelOwners: 'labels owned by the bot or a command',
  labelsRemoved: 'labels removed by people',
  knownLabels: 'known label sets',
  labelEvents: 'label events',
  writeIntents: 'write intents',
  commandReplies: 'command replies',
};

function migrateStoreProgram(): Command {
  return new Command(MIGRATE_STORE_TOOL)
    .description(
      'Copy the journal and the ownership records of an SQLite store (DATA_DIR/journal.db) into the PostgreSQL ' +
        'store of DATABASE_URL (schema DATABASE_SCHEMA, created if missing). Idempotent: a second run copies nothing ' +
        'new. Stop the service on SQLite first; start it with DATABASE_URL afterwards.',
    )
    .requiredOption('--from <dir>', 'the DATA_DIR of the SQLite store');
}

/** The whole command: exit code 0 (copied), 1 (failed: nothing copied), 2 (usage or configuration). */
export async function migrateStoreMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  let url: string | undefined;
  return runTool(
    MIGRATE_STORE_TOOL,
    io,
    async () => {
      const opts = usage(() => parseArgs(migrateStoreProgram(), argv, io));
      if (opts === 'help') return 0;
      const config = usage(() => loadToolConfig(env, ['DATABASE_URL', 'DATABASE_SCHEMA', 'DATABASE_POOL_SIZE']));
      url = config.databaseUrl;
      if (url === undefined) throw new ToolError('DATABASE_URL: required: the PostgreSQL store to copy into (postgres://…)', 2);
      const source = openSqliteSource(String(opts.from));
      try {
        const target = await PostgresStore.open({ url, schema: config.databaseSchema, poolSize: 2, log: silentLogger() });
        try {
          const report = await copySqliteToPostgres(source, target);
          io.stdout.write(render(report, source.name, `${redactDatabaseUrl(url)} (schema ${config.databaseSchema})`));
        } finally {
          await target.close();
        }
      } finally {
        source.close();
      }
      return 0;
    },
    () => (url ? [passwordOf(url)] : []),
  );
}

/** Errors of the arguments and the environment exit with 2. */
function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ToolError) throw new ToolError(error.message, 2);
    throw error;
  }
}

function render(report: CopyReport, from: string, to: string): string {
  const lines = [`copied ${from} into ${to}:`];
  for (const [key, label] of Object.entries(LABELS) as [keyof CopyReport, string][]) {
    const { read, copied } = report[key];
    lines.push(`  ${label}: ${copied} copied, ${read - copied} already there`);
  }
  return `${lines.join('\n')}\n`;
}

function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}
