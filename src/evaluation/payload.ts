/** Reading the parts of a webhook payload the evaluation needs (payloads are untrusted JSON). */

export type Obj = Record<string, unknown>;
export const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

/** `issues`/`pull_request` actions whose payload carries the subject's whole label set. */
export const LABEL_ACTIONS: ReadonlySet<string> = new Set(['label_updated', 'label_cleared']);

/** True for a push to the repository's default branch (the only branch the context is read from). */
export function isDefaultBranchPush(payload: Obj): boolean {
  const repository = payload.repository;
  if (!isObject(repository)) return false;
  const branch = str(repository.default_branch);
  return branch !== undefined && payload.ref === `refs/heads/${branch}`;
}

/** Label names of an issue or pull request payload (`label_updated` carries the full set, no diff). */
export function payloadLabels(payload: Obj): string[] | undefined {
  const subject = isObject(payload.pull_request) ? payload.pull_request : isObject(payload.issue) ? payload.issue : undefined;
  if (!subject) return undefined;
  if (subject.labels === null) return []; // Gitea sends null for "no labels" in some shapes
  if (!Array.isArray(subject.labels)) return undefined;
  return subject.labels.flatMap((l) => (isObject(l) && typeof l.name === 'string' ? [l.name] : []));
}
