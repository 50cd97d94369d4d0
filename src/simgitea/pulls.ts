import type { SimChangedFile, SimIssue } from './model.js';
import { HttpError, listOptions, type Router } from './router.js';
import { changedFileJson } from './shapes.js';
import type { SimState } from './state.js';

/** The files of a pull request (routers/api/v1/repo/pull.go GetPullRequestFiles) and its diff. */
export function registerPullRoutes(router: Router, state: SimState): void {
  router.add('GET', '/repos/{owner}/{repo}/pulls/{index}/files', (c) => {
    const { repo, issue } = state.issueOf(c);
    if (!issue.pull) throw new HttpError(404, 'pull request does not exist');
    // services/convert ToChangedFile before 1.22.3 compared the status with "rename" (it is "renamed"):
    // no `previous_filename` ever (v1.21.0 … v1.22.2; fixed in v1.22.3).
    const oldNames = state.atLeastPatch([1, 22, 3]);
    const files = issue.pull.files.map((f) => {
      const json = changedFileJson(state.ctx, repo, issue, f);
      if (!oldNames) delete json.previous_filename;
      return json;
    });
    const { page, limit } = listOptions(c.query);
    const p = Math.max(page, 1);
    const pages = Math.ceil(files.length / limit);
    return {
      status: 200,
      body: files.slice((p - 1) * limit, p * limit),
      headers: {
        'X-Total-Count': String(files.length),
        'X-Page': String(p),
        'X-PerPage': String(limit),
        'X-PageCount': String(pages),
        'X-HasMore': String(p < pages),
      },
    };
  });
  // `GET …/pulls/{index}.diff` (routers/api/v1/repo/pull.go DownloadPullDiffOrPatch): `git diff -p` of the PR.
  router.add('GET', '/repos/{owner}/{repo}/pulls/{diff}', (c) => {
    const m = /^(\d+)\.diff$/.exec(c.params.diff ?? '');
    if (!m) throw new HttpError(404, 'not found');
    const { issue } = state.issueOf({ ...c, params: { ...c.params, index: m[1] as string } });
    if (!issue.pull) throw new HttpError(404, 'pull request does not exist');
    return { status: 200, body: pullDiff(issue), headers: { 'Content-Type': 'text/plain; charset=utf-8' } };
  });
}

/** A unified diff with the extended headers git writes (`new file mode`, `rename from`/`rename to`, …). */
function pullDiff(issue: SimIssue): string {
  return (issue.pull?.files ?? []).map(fileDiff).join('');
}

function fileDiff(f: SimChangedFile): string {
  const from = f.status === 'renamed' || f.status === 'copied' ? (f.previous_filename ?? f.filename) : f.filename;
  const a = quoteGitPath(`a/${from}`);
  const b = quoteGitPath(`b/${f.filename}`);
  const head = [`diff --git ${a} ${b}`];
  if (f.status === 'added') head.push('new file mode 100644');
  if (f.status === 'deleted') head.push('deleted file mode 100644');
  if (f.status === 'renamed' || f.status === 'copied') {
    const verb = f.status === 'renamed' ? 'rename' : 'copy';
    head.push('similarity index 90%', `${verb} from ${quoteGitPath(from)}`, `${verb} to ${quoteGitPath(f.filename)}`);
  }
  if (f.additions + f.deletions === 0) return head.join('\n') + '\n';
  head.push(`--- ${f.status === 'added' ? '/dev/null' : a}`, `+++ ${f.status === 'deleted' ? '/dev/null' : b}`);
  head.push(`@@ -1,${f.deletions} +1,${f.additions} @@`);
  for (let i = 0; i < f.deletions; i++) head.push(`-old line ${i + 1}`);
  for (let i = 0; i < f.additions; i++) head.push(`+new line ${i + 1}`);
  return head.join('\n') + '\n';
}

/** Git's core.quotePath: a path with `"`, `\`, control or non-ASCII bytes is C-quoted with octal escapes. */
function quoteGitPath(p: string): string {
  const bytes = Buffer.from(p, 'utf8');
  if (!bytes.some((x) => x < 0x20 || x >= 0x7f || x === 0x22 || x === 0x5c)) return p;
  let out = '"';
  for (const x of bytes) {
    if (x === 0x22) out += '\\"';
    else if (x === 0x5c) out += '\\\\';
    else if (x === 0x09) out += '\\t';
    else if (x === 0x0a) out += '\\n';
    else if (x < 0x20 || x >= 0x7f) out += '\\' + x.toString(8).padStart(3, '0');
    else out += String.fromCharCode(x);
  }
  return out + '"';
}
