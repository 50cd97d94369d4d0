/**
 * The parts of Gitea's API objects the service reads (Gitea 1.25.4 swagger, `tests/fixtures/gitea/swagger.v1.json`).
 * Field names are Gitea's.
 */
export interface GiteaLabel {
  id: number;
  name: string;
  exclusive: boolean;
  is_archived?: boolean;
  color: string;
  description: string;
  url?: string;
}

export interface GiteaUser {
  id: number;
  login: string;
  username?: string;
}

export interface GiteaIssue {
  id: number;
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  labels: GiteaLabel[];
  user: GiteaUser;
  updated_at: string;
  /** Non-null for pull requests. */
  pull_request: { merged?: boolean; draft?: boolean } | null;
}

export interface GiteaRepo {
  id: number;
  name: string;
  full_name: string;
  default_branch: string;
  owner: GiteaUser;
}

/** One entry of `GET /repos/{owner}/{repo}/pulls/{index}/files`. */
export interface GiteaChangedFile {
  filename: string;
  previous_filename?: string;
  status: string;
  additions: number;
  deletions: number;
  changes: number;
}

/** `ContentsResponse`: a file's content is base64 in `content` when `encoding` is `base64`. */
export interface GiteaContents {
  name: string;
  path: string;
  sha: string;
  type: 'file' | 'dir' | 'symlink' | 'submodule';
  size: number;
  encoding?: string | null;
  content?: string | null;
}

/** `IssueFormField`: one field of a YAML issue form. */
export interface GiteaIssueFormField {
  /** `markdown`, `input`, `textarea`, `dropdown`, `checkboxes`. */
  type: string;
  id?: string;
  attributes?: Record<string, unknown>;
  validations?: Record<string, unknown>;
  /**
   * Where the field is shown: `form` (the new-issue page) and/or `content` (the issue body Gitea
   * writes); only content-visible fields are rendered into the body. Gitea fills in the default when
   * the file leaves it out — `[form]` for markdown fields, `[form, content]` for the others
   * (modules/issue/template/unmarshal.go) — and omits an empty list (`omitempty`), which
   * `VisibleInContent` reads as that default.
   */
  visible?: string[];
}

/** `GET /repos/{owner}/{repo}/issue_templates`: Gitea's own parse of the repo's issue templates (markdown and YAML forms). */
export interface GiteaIssueTemplate {
  name: string;
  title?: string;
  about?: string;
  labels?: string[];
  ref?: string;
  /** Markdown template: the text after the front matter. */
  content?: string;
  /** YAML issue form: its fields; `attributes.label` becomes a `### ` heading of the issue body. */
  body?: GiteaIssueFormField[] | null;
  file_name: string;
}

/** `permission` of `GET /repos/{owner}/{repo}/collaborators/{user}/permission`. */
export type GiteaPermission = 'none' | 'read' | 'write' | 'admin' | 'owner';

export interface GiteaHook {
  id: number;
  type: string;
  active: boolean;
  events: string[];
  config: Record<string, string>;
  branch_filter?: string;
  authorization_header?: string;
}
