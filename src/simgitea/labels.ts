import { byName, exclusiveScope, type SimIssue, type SimLabel, type SimRepo, type SimUser } from './model.js';
import { HttpError, paged, type Reply, type RequestContext, type Router } from './router.js';
import { issueLabels, issuePayload, labelJson, pullRequestPayload } from './shapes.js';
import { canWrite, type LabelInput, type SimState } from './state.js';

/** Repository and organisation labels, and the labels of an issue (models/issues/issue_label.go, routers/api/v1/repo/issue_label.go). */
export function registerLabelRoutes(router: Router, state: SimState): void {
  router.add('GET', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => {
    const { issue } = state.issueOf(c);
    return { status: 200, body: issueLabels(state.ctx, issue).map((l) => labelJson(state.ctx, l)) };
  });
  router.add('POST', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => writeIssueLabels(state, c, 'add'));
  router.add('PUT', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => writeIssueLabels(state, c, 'replace'));
  router.add('DELETE', '/repos/{owner}/{repo}/issues/{index}/labels/{id}', (c) => deleteIssueLabel(state, c));
  router.add('DELETE', '/repos/{owner}/{repo}/issues/{index}/labels', (c) => {
    const { repo, issue } = state.issueOf(c);
    // routers/api/v1/repo/issue_label.go ClearIssueLabels: a bare 403 without write access, else 204.
    if (!canWrite(state.levelOf(repo, c.doer))) return { status: 403 };
    clearLabels(state, repo, issue, c.doer);
    return { status: 204 };
  });

  router.add('GET', '/repos/{owner}/{repo}/labels', (c) => {
    const repo = state.repoOf(c);
    const all = [...state.labels.values()].filter((l) => l.repoId === repo.id).sort(byName);
    return paged(
      all.map((l) => labelJson(state.ctx, l)),
      c.query,
      true,
    );
  });
  router.add('POST', '/repos/{owner}/{repo}/labels', (c) => {
    const repo = state.repoOf(c);
    if (!canWrite(state.levelOf(repo, c.doer))) throw new HttpError(403, 'write permission is required');
    const l = state.createLabel({ ...labelOption(c.body), repoId: repo.id });
    return { status: 201, body: labelJson(state.ctx, l) };
  });
  router.add('GET', '/orgs/{org}/labels', (c) => {
    const org = state.orgOf(c);
    const all = [...state.labels.values()].filter((l) => l.orgId === org.id).sort(byName);
    return paged(
      all.map((l) => labelJson(state.ctx, l)),
      c.query,
      true,
    );
  });
  router.add('POST', '/orgs/{org}/labels', (c) => {
    const org = state.orgOf(c);
    if (!state.ownsOrg(c.doer)) throw new HttpError(403, 'Must be an organization owner');
    const l = state.createLabel({ ...labelOption(c.body), orgId: org.id });
    return { status: 201, body: labelJson(state.ctx, l) };
  });
}

/**
 * `POST …/issues/{index}/labels` (add) and `PUT` (replace), routers/api/v1/repo/issue_label.go: labels are
 * all ids (numbers) or all names (strings, since 1.22) — mixed is 400; unknown names and ids are ignored;
 * the answer is the issue's full label list; one `label_updated` delivery follows, even if nothing changed.
 */
function writeIssueLabels(state: SimState, c: RequestContext, mode: 'add' | 'replace'): Reply {
  const { repo, issue } = state.issueOf(c);
  if (!canWrite(state.levelOf(repo, c.doer))) throw new HttpError(403, 'write permission is required');
  const raw = (c.body as { labels?: unknown } | undefined)?.labels;
  const list = Array.isArray(raw) ? raw : [];
  const ids: number[] = [];
  const names: string[] = [];
  for (const v of list) {
    if (typeof v === 'number') ids.push(Math.trunc(v));
    else if (typeof v === 'string') names.push(v);
    else throw new HttpError(400, 'a label must be an integer or a string');
  }
  // Before 1.22 `labels` was []int64: a string fails JSON binding.
  if (names.length > 0 && !state.atLeast([1, 22])) throw new HttpError(422, '[Labels]: cannot unmarshal string into int64');
  if (ids.length > 0 && names.length > 0) throw new HttpError(400, 'labels should be an array of strings or integers');
  if (names.length > 0) {
    const wanted = new Set(names);
    for (const l of state.labels.values()) {
      if (!wanted.has(l.name)) continue;
      if (l.repoId === repo.id || (repo.owner.isOrg && l.orgId === repo.owner.id)) ids.push(l.id);
    }
  }
  // GetLabelsByIDs orders by name: of several exclusive labels of one scope, the alphabetically last wins.
  const labels = [...new Set(ids)]
    .map((id) => state.labels.get(id))
    .filter((l): l is SimLabel => l !== undefined)
    .sort(byName);
  if (mode === 'add') addLabels(state, repo, issue, labels);
  else replaceLabels(state, repo, issue, labels);
  emitLabelUpdated(state, repo, issue, c.doer);
  return { status: 200, body: issueLabels(state.ctx, issue).map((l) => labelJson(state.ctx, l)) };
}

/** `DELETE …/issues/{index}/labels/{id}`: unknown (or non-numeric) id → 422; a label not on the issue → 204, no change. */
function deleteIssueLabel(state: SimState, c: RequestContext): Reply {
  const { repo, issue } = state.issueOf(c);
  if (!canWrite(state.levelOf(repo, c.doer))) return { status: 403 };
  const text = c.params.id ?? '';
  const id = /^\d+$/.test(text) ? Number(text) : 0;
  const label = state.labels.get(id);
  if (!label) throw new HttpError(422, `label does not exist [label_id: ${id}]`);
  if (issue.labelIds.delete(label.id)) state.touch(repo, issue);
  emitLabelUpdated(state, repo, issue, c.doer);
  return { status: 204 };
}

/** models/issues/issue_label.go newIssueLabels: skip present and foreign labels; each exclusive label drops its siblings. */
export function addLabels(state: SimState, repo: SimRepo, issue: SimIssue, labels: SimLabel[]): void {
  let changed = false;
  for (const l of labels) {
    if (issue.labelIds.has(l.id)) continue;
    if (l.repoId !== repo.id && !(l.orgId !== undefined && l.orgId === repo.owner.id)) continue;
    const scope = exclusiveScope(l);
    if (scope) {
      for (const id of [...issue.labelIds]) {
        const other = state.labels.get(id);
        if (other && other.id !== l.id && exclusiveScope(other) === scope) issue.labelIds.delete(id);
      }
    }
    issue.labelIds.add(l.id);
    changed = true;
  }
  if (changed) state.touch(repo, issue);
}

/** ReplaceIssueLabels: of several exclusive labels of one scope the last (by name) is kept; foreign labels dropped. */
export function replaceLabels(state: SimState, repo: SimRepo, issue: SimIssue, labels: SimLabel[]): void {
  const valid = labels.filter((l) => l.repoId === repo.id || (l.orgId !== undefined && l.orgId === repo.owner.id));
  const kept = valid.filter((l, i) => {
    const scope = exclusiveScope(l);
    return !scope || !valid.slice(i + 1).some((o) => exclusiveScope(o) === scope);
  });
  issue.labelIds = new Set(kept.map((l) => l.id));
  state.touch(repo, issue);
}

/**
 * The issue sidebar's label picker, one request per label (routers/web/repo/issue_label.go
 * UpdateIssueLabel, `attach`/`detach`), each followed by its own `label_updated` carrying the set at that
 * moment — several within one second share `updated_at`. 1.22 (web_src/js/features/repo-legacy.js
 * initListSubmits) sends them in label-id order, attaching and detaching interleaved; 1.23+
 * (web_src/js/features/repo-issue-sidebar-combolist.ts updateToBackend) detaches first, then attaches.
 */
export function sidebarSetLabels(state: SimState, repo: SimRepo, issue: SimIssue, sender: SimUser, wanted: SimLabel[]): void {
  const want = new Set(wanted.map((l) => l.id));
  const detach = [...issue.labelIds].filter((id) => !want.has(id)).map((id) => ({ id, attach: false }));
  const attach = [...want].filter((id) => !issue.labelIds.has(id)).map((id) => ({ id, attach: true }));
  const steps = state.atLeast([1, 23]) ? [...detach, ...attach] : [...detach, ...attach].sort((a, b) => a.id - b.id);
  for (const step of steps) {
    const label = state.labels.get(step.id) as SimLabel;
    if (step.attach) addLabels(state, repo, issue, [label]);
    else if (issue.labelIds.delete(label.id)) state.touch(repo, issue);
    emitLabelUpdated(state, repo, issue, sender);
  }
}

/**
 * services/issue/label.go ClearLabels (the API's `DELETE …/issues/{index}/labels` and the issue list's
 * "clear labels"): models/issues/issue_label.go clearIssueLabels deletes the rows but leaves `issue.Labels`
 * loaded, so the `label_cleared` delivery (services/webhook/notifier.go IssueClearLabels) lists the labels
 * from BEFORE the clear (checked on v1.21.11 and v1.25.4). Sent even when there was nothing to clear.
 */
export function clearLabels(state: SimState, repo: SimRepo, issue: SimIssue, sender: SimUser): void {
  if (issue.labelIds.size > 0) state.touch(repo, issue);
  const payload = issue.pull
    ? pullRequestPayload(state.ctx, repo, issue, 'label_cleared', sender)
    : issuePayload(state.ctx, repo, issue, 'label_cleared', sender);
  issue.labelIds.clear();
  state.emit(repo, issue.pull ? 'pull_request_label' : 'issue_label', payload);
}

export function emitLabelUpdated(state: SimState, repo: SimRepo, issue: SimIssue, sender: SimUser): void {
  if (issue.pull) state.emit(repo, 'pull_request_label', pullRequestPayload(state.ctx, repo, issue, 'label_updated', sender));
  else state.emit(repo, 'issue_label', issuePayload(state.ctx, repo, issue, 'label_updated', sender));
}

function labelOption(body: unknown): LabelInput {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.color !== 'string') throw new HttpError(422, '[Color]: Required');
  return {
    name: typeof b.name === 'string' ? b.name : '',
    color: b.color,
    exclusive: b.exclusive === true,
    description: typeof b.description === 'string' ? b.description : '',
  };
}
