/** The simulated Gitea's in-memory state. Plain data; the rules live in state.ts and the resource modules (labels.ts, issues.ts, …). */

export type Level = 'none' | 'read' | 'write' | 'admin' | 'owner';

export interface SimUser {
  id: number;
  login: string;
  fullName: string;
  email: string;
  isOrg: boolean;
  /** Site administrator. */
  isAdmin: boolean;
  website: string;
  description: string;
  created: string;
  tokens: Set<string>;
}

export interface SimLabel {
  id: number;
  /** Set for repository labels. */
  repoId?: number;
  /** Set for organisation labels. */
  orgId?: number;
  name: string;
  /** `#rrggbb`, lower case, as Gitea stores it (the API strips the `#`). */
  color: string;
  exclusive: boolean;
  description: string;
  archived: boolean;
}

export interface SimChangedFile {
  filename: string;
  status: string;
  additions: number;
  deletions: number;
  previous_filename?: string;
}

export interface SimPull {
  id: number;
  headRef: string;
  headSha: string;
  baseRef: string;
  baseSha: string;
  files: SimChangedFile[];
  draft: boolean;
  /** The head repository (a fork) was deleted. */
  headRepoGone?: boolean;
}

export interface SimComment {
  id: number;
  user: SimUser;
  body: string;
  created: string;
  updated: string;
}

export interface SimIssue {
  id: number;
  number: number;
  title: string;
  body: string;
  user: SimUser;
  state: 'open' | 'closed';
  labelIds: Set<number>;
  created: string;
  updated: string;
  /** For `since` filtering: epoch ms of the last update. */
  updatedMs: number;
  createdMs: number;
  closed: string | null;
  comments: SimComment[];
  pull?: SimPull;
}

export interface SimHook {
  id: number;
  repoId?: number;
  orgId?: number;
  type: string;
  url: string;
  contentType: 'json' | 'form';
  /** Write-only through the API: never returned. */
  secret: string;
  /** The event types it was created with, as Gitea expands them (`issues` → issues, issue_label, …). */
  events: Set<string>;
  branchFilter: string;
  authorizationHeader: string;
  active: boolean;
  /** `POST` (the API's only choice) or `GET` (settable in the web UI only; services/webhook/deliver.go sends `?payload=`). */
  httpMethod: 'POST' | 'GET';
  created: string;
  updated: string;
}

export interface SimRepo {
  id: number;
  owner: SimUser;
  name: string;
  description: string;
  defaultBranch: string;
  /** Seen only by its owner, site admins and explicit collaborators (the bot's default access is for public repos). */
  private: boolean;
  /** branch → (path → content) */
  branches: Map<string, Map<string, string>>;
  /** branch → head commit sha */
  heads: Map<string, string>;
  issues: Map<number, SimIssue>;
  nextIndex: number;
  /** lower-case login → explicit collaborator level */
  permissions: Map<string, Level>;
  created: string;
  updated: string;
}

/** Go's `time.Time` JSON for a UTC instant, second precision: `2026-03-02T10:15:04Z`. */
export function goTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Label names sort as Gitea's `ORDER BY label.name` (byte order for ASCII names). */
export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Gitea's `Label.ExclusiveScope()`: for an exclusive label, the name up to the LAST `/`;
 * no scope when there is no `/`, or it is the first or the last character.
 */
export function exclusiveScope(label: SimLabel): string {
  if (!label.exclusive) return '';
  const i = label.name.lastIndexOf('/');
  if (i <= 0 || i === label.name.length - 1) return '';
  return label.name.slice(0, i);
}
