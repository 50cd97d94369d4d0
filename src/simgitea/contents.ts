import type { SimRepo } from './model.js';
import { HttpError, type Reply, type RequestContext, type Router } from './router.js';
import { contentsJson, dirEntryJson } from './shapes.js';
import { ZERO_SHA, type SimState } from './state.js';
import { parseIssueTemplates } from './templates.js';

/** Repository files: `contents`, `file-contents` (≥ 1.24) and `issue_templates`. */
export function registerContentRoutes(router: Router, state: SimState): void {
  router.add('GET', '/repos/{owner}/{repo}/file-contents', (c) => fileContents(state, c), { since: [1, 24] });
  router.add('GET', '/repos/{owner}/{repo}/contents', (c) => contents(state, c, ''));
  router.add('GET', '/repos/{owner}/{repo}/contents/{filepath*}', (c) => contents(state, c, c.params.filepath ?? ''));
  router.add('GET', '/repos/{owner}/{repo}/issue_templates', (c) => {
    const repo = state.repoOf(c);
    const { templates, errors } = parseIssueTemplates(state.branchFiles(repo, repo.defaultBranch, false) ?? new Map());
    const count = Object.keys(errors).length;
    const headers: Record<string, string> = count > 0 ? { 'X-Gitea-Warning': `error occurs when parsing issue template: count=${count}` } : {};
    // A nil Go slice: `null` when there are no valid templates.
    return { status: 200, body: templates.length > 0 ? templates : null, headers };
  });
}

function resolveRef(repo: SimRepo, ref: string | null): { ref: string; tree: Map<string, string>; sha: string } {
  const name = (ref ?? '').replace(/^refs\/heads\//, '') || repo.defaultBranch;
  const tree = repo.branches.get(name);
  if (!tree) throw new HttpError(404, `no such ref: ${name}`);
  return { ref: name, tree, sha: repo.heads.get(name) ?? ZERO_SHA };
}

function fileContents(state: SimState, c: RequestContext): Reply {
  const repo = state.repoOf(c);
  let files: unknown;
  try {
    files = (JSON.parse(c.query.get('body') ?? '') as { files?: unknown }).files;
  } catch {
    throw new HttpError(400, 'invalid body parameter');
  }
  const { ref, tree, sha } = resolveRef(repo, c.query.get('ref'));
  const out: unknown[] = [];
  for (const p of Array.isArray(files) ? files : []) {
    const path = typeof p === 'string' ? p.replace(/^\/+|\/+$/g, '') : '';
    const content = tree.get(path);
    if (content !== undefined) out.push(contentsJson(state.ctx, repo, path, content, ref, sha));
    else if (path !== '' && [...tree.keys()].some((k) => k.startsWith(path + '/'))) out.push(dirEntryJson(state.ctx, repo, path, true, ref));
    else out.push(null); // "Files which could not be retrieved are null."
    if (out.length === 30) break; // [api] DEFAULT_PAGING_NUM
  }
  return { status: 200, body: out };
}

function contents(state: SimState, c: RequestContext, path: string): Reply {
  const repo = state.repoOf(c);
  const { ref, tree, sha } = resolveRef(repo, c.query.get('ref'));
  const content = tree.get(path);
  if (content !== undefined) return { status: 200, body: contentsJson(state.ctx, repo, path, content, ref, sha) };
  const prefix = path === '' ? '' : path + '/';
  const children = new Map<string, boolean>();
  for (const k of tree.keys()) {
    if (!k.startsWith(prefix)) continue;
    const rest = k.slice(prefix.length);
    const slash = rest.indexOf('/');
    children.set(prefix + (slash < 0 ? rest : rest.slice(0, slash)), slash >= 0);
  }
  if (children.size === 0 && path !== '') throw new HttpError(404, `object does not exist [id: , rel_path: ${path}]`);
  const list = [...children.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, dir]) => dirEntryJson(state.ctx, repo, p, dir, ref));
  return { status: 200, body: list };
}
