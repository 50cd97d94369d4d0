import { Command } from 'commander';
import { parseArgs, parseUsage, runTool, ToolError, type ToolIO } from './cli.js';
import { issueStory, renderStory } from './explain.js';
import { parseIssueRef } from './filter.js';
import { silentLogger } from '../log/logger.js';
import { openToolStore, STORE_VARIABLES, storeSecrets, toolServiceConfig } from './runtime.js';

export const EXPLAIN_TOOL = 'explain';

export interface ExplainOptions {
  /** `owner/repo#n`. */
  subject: string;
  json: boolean;
}

function explainProgram(): Command {
  return new Command(EXPLAIN_TOOL)
    .description(
      "An issue's story from the store alone (no Gitea needed): the deliveries received, the labels the " +
        'service added and removed with the rule, evidence and config version, the changes people made, and ' +
        'what the service owns now.\n\nReads DATABASE_URL and DATABASE_SCHEMA (PostgreSQL), else DATA_DIR (SQLite); writes nothing.',
    )
    .option('--issue <owner/repo#n>', 'the issue or pull request')
    .argument('[owner/repo#n]', 'the same, without --issue')
    .option('--json', 'print the story as JSON');
}

export function parseExplainArgs(argv: readonly string[], io: ToolIO): ExplainOptions | 'help' {
  const program = explainProgram();
  const opts = parseArgs(program, argv, io);
  if (opts === 'help') return 'help';
  const positional = program.args[0];
  const issue = opts.issue as string | undefined;
  if (issue !== undefined && positional !== undefined) throw new ToolError('give the issue once: --issue owner/repo#n');
  const text = issue ?? positional;
  if (text === undefined) throw new ToolError('give --issue owner/repo#n');
  return { subject: parseIssueRef(text, '--issue'), json: opts.json === true };
}

export async function explainMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  const secrets: string[] = [];
  return runTool(
    EXPLAIN_TOOL,
    io,
    async () => {
      const options = parseUsage(() => parseExplainArgs(argv, io));
      if (options === 'help') return 0;
      const config = toolServiceConfig(env, STORE_VARIABLES);
      secrets.push(...storeSecrets(config));
      // Read-only: explain writes nothing to the store (openStore's readOnly).
      const store = await openToolStore(config, silentLogger(), { readOnly: true });
      try {
        const story = await issueStory(store, options.subject);
        io.stdout.write(options.json ? `${JSON.stringify(story, null, 2)}\n` : `${renderStory(story)}\n`);
        return 0;
      } finally {
        await store.close();
      }
    },
    () => secrets,
  );
}
