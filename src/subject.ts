/**
 * What an evaluation is about: one issue or pull request (`owner/repo#number`), or one
 * branch of a repository for pushes (`owner/repo@ref`). Deliveries are coalesced per subject.
 */
export type Subject =
  | { kind: 'issue'; key: string; owner: string; repo: string; number: number }
  | { kind: 'push'; key: string; owner: string; repo: string; ref: string };

export function issueSubject(owner: string, repo: string, number: number): Subject {
  return { kind: 'issue', key: `${owner}/${repo}#${number}`, owner, repo, number };
}

export function pushSubject(owner: string, repo: string, ref: string): Subject {
  return { kind: 'push', key: `${owner}/${repo}@${ref}`, owner, repo, ref };
}

/** Parses `owner/repo#12` or `owner/repo@refs/heads/main` back into a subject; undefined if neither. */
export function parseSubject(key: string): Subject | undefined {
  const issue = /^([^/\s#@]+)\/([^/\s#@]+)#(\d+)$/.exec(key);
  if (issue) return issueSubject(issue[1]!, issue[2]!, Number(issue[3]));
  const push = /^([^/\s#@]+)\/([^/\s#@]+)@(\S+)$/.exec(key);
  if (push) return pushSubject(push[1]!, push[2]!, push[3]!);
  return undefined;
}

/** `owner/repo` of a subject: the unit of repository context and configuration. */
export function repoOf(subject: Subject): string {
  return `${subject.owner}/${subject.repo}`;
}
