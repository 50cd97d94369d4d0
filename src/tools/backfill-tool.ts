import Table from 'cli-table3';
import { type BackfillRow, type BackfillSummary, runBackfill } from '../backfill/backfill.js';
import type { GiteaApi } from '../gitea/api.js';
import type { Logger } from '../log/logger.js';
import type { Evaluator } from '../scheduler/types.js';
import { errorText } from '../errors.js';
import { ToolError } from './cli.js';

/**
 * The repositories to sweep: those named, then every repository of each organisation
 * (`GET /orgs/{org}/repos`), without duplicates (Gitea's names are case-insensitive).
 */
export async function backfillRepos(gitea: GiteaApi, repos: readonly string[], orgs: readonly string[]): Promise<string[]> {
  const out = new Map<string, string>();
  for (const r of repos) out.set(r.toLowerCase(), r);
  for (const org of orgs) {
    let listed;
    try {
      listed = await gitea.listOrgRepos(org);
    } catch (error) {
      throw new ToolError(`--org ${org}: ${errorText(error)}`);
    }
    for (const repo of listed) if (!out.has(repo.full_name.toLowerCase())) out.set(repo.full_name.toLowerCase(), repo.full_name);
  }
  if (out.size === 0) throw new ToolError('nothing to backfill: give --repo owner/repo or --org NAME');
  return [...out.values()];
}

/**
 * The backfill tool's run: `runBackfill` (the service's evaluator on every open issue and pull
 * request, concurrently) over the repositories named and those of the organisations named.
 */
export async function backfill(options: {
  gitea: GiteaApi;
  evaluator: Evaluator;
  repos: readonly string[];
  orgs: readonly string[];
  concurrency: number;
  log: Logger;
  onProgress?(done: number, total: number, row: BackfillRow): void;
}): Promise<BackfillSummary & { repos: string[] }> {
  const repos = await backfillRepos(options.gitea, options.repos, options.orgs);
  let summary: BackfillSummary;
  try {
    summary = await runBackfill({
      gitea: options.gitea,
      evaluator: options.evaluator,
      repos,
      concurrency: options.concurrency,
      log: options.log,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } catch (error) {
    // Listing a repository's issues failed (a typo in --repo: 404): nothing was evaluated.
    throw new ToolError(errorText(error));
  }
  return { ...summary, repos };
}

/**
 * One row per issue: issue, title, labels it would add (dry run) or added, labels removed, and a note
 * (the evaluator's note when nothing changes — no config, a config problem, closed — or the error).
 * A real run lists only the issues that changed or failed.
 */
export function renderBackfillTable(rows: readonly BackfillRow[], dryRun: boolean): string {
  const shown = dryRun ? rows : rows.filter((r) => r.error !== undefined || r.added.length + r.removed.length > 0);
  if (shown.length === 0) return dryRun ? 'no open issues or pull requests' : 'no labels changed';
  const table = new Table({
    head: ['issue', 'title', dryRun ? 'would add' : 'added', dryRun ? 'would remove' : 'removed', 'note'],
    style: { head: [], border: [], compact: true },
  });
  for (const r of shown) {
    const note = r.error !== undefined ? `failed: ${r.error}` : r.note !== undefined && r.note !== 'dry run' ? r.note : '';
    table.push([r.subject, truncate(r.title, 50), r.added.join(', '), r.removed.join(', '), truncate(note, 60)]);
  }
  return table.toString();
}

export function renderBackfillSummary(summary: BackfillSummary & { repos: string[] }, dryRun: boolean): string {
  const seconds = (summary.durationMs / 1000).toFixed(1);
  return (
    `${dryRun ? 'dry run: ' : ''}${summary.repos.length} ${summary.repos.length === 1 ? 'repository' : 'repositories'}, ` +
    `evaluated ${summary.evaluated}, ${dryRun ? 'would change' : 'changed'} ${summary.changed}, unchanged ${summary.unchanged}, failed ${summary.failed} (${seconds} s)`
  );
}

function truncate(text: string, max: number): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= max ? one : `${one.slice(0, max - 1)}…`;
}
