import { Command } from 'commander';
import { parseArgs, runTool, type ToolIO } from './cli.js';
import { issueStory, renderStory } from './explain.js';
import { parseIssueRef } from './filter.js';
import { openJournalForReading, toolServiceConfig } from './runtime.js';

export const EXPLAIN_TOOL = 'explain';

export interface ExplainOptions {
  /** `owner/repo#n`. */
  subject: string;
  json: boolean;
}

function explainProgram(): Command {
  return new Command(EXPLAIN_TOOL)
    .description(
      "An issue's story from DATA_DIR alone (no Gitea needed): the deliveries received, the labels the " +
        'service added and removed with the rule, evidence and config version, the changes people made, and ' +
        'what the service owns now.\n\nReads DATA_DIR.',
    )
    .argument('<owner/repo#n>', 'the issue or pull request')
    .option('--json', 'print the story as JSON');
}

export function parseExplainArgs(argv: readonly string[], io: ToolIO): ExplainOptions | 'help' {
  const program = explainProgram();
  const opts = parseArgs(program, argv, io);
  if (opts === 'help') return 'help';
  return { subject: parseIssueRef(String(program.args[0] ?? ''), 'issue'), json: opts.json === true };
}

export async function explainMain(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ToolIO): Promise<number> {
  return runTool(EXPLAIN_TOOL, io, async () => {
    const options = parseExplainArgs(argv, io);
    if (options === 'help') return 0;
    const config = toolServiceConfig(env, ['DATA_DIR']);
    // Read-only: explain writes nothing to DATA_DIR (src/journal/reader.ts).
    const journal = openJournalForReading(config.dataDir);
    try {
      const story = issueStory(journal, journal.db, options.subject);
      io.stdout.write(options.json ? `${JSON.stringify(story, null, 2)}\n` : `${renderStory(story)}\n`);
      return 0;
    } finally {
      journal.close();
    }
  });
}
