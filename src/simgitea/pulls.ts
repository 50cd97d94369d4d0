import { HttpError, listOptions, type Router } from './router.js';
import { changedFileJson } from './shapes.js';
import type { SimState } from './state.js';

/** The files of a pull request (routers/api/v1/repo/pull.go GetPullRequestFiles). */
export function registerPullRoutes(router: Router, state: SimState): void {
  router.add('GET', '/repos/{owner}/{repo}/pulls/{index}/files', (c) => {
    const { repo, issue } = state.issueOf(c);
    if (!issue.pull) throw new HttpError(404, 'pull request does not exist');
    const files = issue.pull.files.map((f) => changedFileJson(state.ctx, repo, issue, f));
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
}
