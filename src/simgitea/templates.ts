import { parse as parseYaml } from 'yaml';

/**
 * `GET /repos/{owner}/{repo}/issue_templates` as Gitea 1.25 computes it
 * (services/issue/template.go ParseTemplatesFromDefaultBranch, modules/issue/template/{unmarshal,template}.go):
 *
 * - only files directly inside these folders of the default branch, in this order, each folder in git tree
 *   (byte) order: `ISSUE_TEMPLATE`, `issue_template`, `.gitea/ISSUE_TEMPLATE`, `.gitea/issue_template`,
 *   `.github/…`, `.gitlab/…` — a single `issue_template.md` file is NOT listed by this endpoint;
 * - `*.md`: YAML front matter between two lines of 3+ dashes (name, title, about — or `description` —,
 *   labels, assignees, ref), the rest is `content`; without parsable front matter the whole file is the
 *   content, the file name the `name` and its first 80 characters the `about`;
 * - `*.yaml`/`*.yml` (not `config.y*ml`): issue forms; `body` fields get a default `id` (their index) and
 *   `visible`;
 * - invalid templates (no name/about, form without body, unknown field type, …) are left out and counted
 *   in an `X-Gitea-Warning` header;
 * - `ref` gets `refs/heads/` prepended unless it starts with `refs/`.
 */
export const TEMPLATE_DIRS = [
  'ISSUE_TEMPLATE',
  'issue_template',
  '.gitea/ISSUE_TEMPLATE',
  '.gitea/issue_template',
  '.github/ISSUE_TEMPLATE',
  '.github/issue_template',
  '.gitlab/ISSUE_TEMPLATE',
  '.gitlab/issue_template',
];

export interface ParsedTemplates {
  templates: Record<string, unknown>[];
  errors: Record<string, string>;
}

export function parseIssueTemplates(files: Map<string, string>): ParsedTemplates {
  const templates: Record<string, unknown>[] = [];
  const errors: Record<string, string> = {};
  for (const dir of TEMPLATE_DIRS) {
    const entries = [...files.keys()]
      .filter((p) => p.startsWith(dir + '/') && !p.slice(dir.length + 1).includes('/'))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const file of entries) {
      const kind = templateType(file);
      if (!kind) continue;
      try {
        const t = kind === 'md' ? parseMarkdown(file, files.get(file) ?? '') : parseForm(file, files.get(file) ?? '');
        validate(t, kind);
        const ref = typeof t.ref === 'string' ? t.ref : '';
        templates.push({
          name: t.name,
          title: t.title,
          about: t.about,
          labels: t.labels,
          assignees: t.assignees,
          ref: ref.startsWith('refs/') ? ref : `refs/heads/${ref}`,
          content: t.content,
          body: t.body,
          file_name: file,
        });
      } catch (err) {
        errors[file] = err instanceof Error ? err.message : String(err);
      }
    }
  }
  return { templates, errors };
}

function templateType(file: string): 'md' | 'yaml' | '' {
  const base = file.split('/').pop() ?? '';
  if (base === 'config.yaml' || base === 'config.yml') return '';
  if (base.endsWith('.md')) return 'md';
  if (base.endsWith('.yaml') || base.endsWith('.yml')) return 'yaml';
  return '';
}

interface Template {
  name: string;
  title: string;
  about: string;
  labels: string[] | null;
  assignees: string[] | null;
  ref: string;
  content: string;
  body: Field[] | null;
}

interface Field {
  type: string;
  id: string;
  attributes: Record<string, unknown> | null;
  validations: Record<string, unknown> | null;
  visible?: string[];
}

function isSeparator(line: string): boolean {
  const t = line.trim();
  return t.length > 2 && /^-+$/.test(t);
}

/** modules/markup/markdown ExtractMetadataBytes: front matter between the first line and the next separator. */
function frontMatter(content: string): { front: string; body: string } | null {
  const lines = content.split('\n');
  if (!isSeparator(lines[0] ?? '')) return null;
  let offset = (lines[0] ?? '').length + 1;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (isSeparator(line)) {
      const front = content.slice((lines[0] ?? '').length + 1, offset);
      const body = content.slice(offset + line.length + 1);
      return front.length > 0 ? { front, body } : null;
    }
    offset += line.length + 1;
  }
  return null;
}

function parseMarkdown(file: string, content: string): Template {
  const fm = frontMatter(content);
  let meta: Record<string, unknown> | null = null;
  if (fm) {
    try {
      const parsed: unknown = parseYaml(fm.front);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed as Record<string, unknown>;
    } catch {
      meta = null;
    }
  }
  if (!fm || !meta) {
    // "hard to tell if metadata doesn't exist or isn't valid": the file is the content.
    const chars = [...content];
    return {
      name: file.split('/').pop() ?? file,
      title: '',
      about: chars.length > 80 ? chars.slice(0, 79).join('') + '…' : content,
      labels: null,
      assignees: null,
      ref: '',
      content,
      body: null,
    };
  }
  return {
    name: str(meta.name),
    title: str(meta.title),
    about: str(meta.about) || str(meta.description),
    labels: stringSlice(meta.labels),
    assignees: stringSlice(meta.assignees),
    ref: str(meta.ref),
    content: fm.body,
    body: null,
  };
}

function parseForm(file: string, content: string): Template {
  let doc: unknown;
  try {
    doc = parseYaml(content);
  } catch (err) {
    throw new Error(`yaml unmarshal: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`yaml unmarshal: ${file} is not a mapping`);
  const meta = doc as Record<string, unknown>;
  const rawBody = meta.body;
  let body: Field[] | null = null;
  if (Array.isArray(rawBody)) {
    body = rawBody.map((raw, i) => {
      const f = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
      const type = str(f.type);
      return {
        type,
        id: str(f.id) || String(i),
        attributes: goMap(f.attributes),
        validations: goMap(f.validations),
        // Default visibility: markdown blocks only in the form; other fields also in the issue content.
        visible: Array.isArray(f.visible) ? f.visible.map(String) : type === 'markdown' ? ['form'] : ['form', 'content'],
      };
    });
  }
  return {
    name: str(meta.name),
    title: str(meta.title),
    about: str(meta.about) || str(meta.description),
    labels: stringSlice(meta.labels),
    assignees: stringSlice(meta.assignees),
    ref: str(meta.ref),
    content: '',
    body,
  };
}

const FIELD_TYPES = new Set(['markdown', 'textarea', 'input', 'dropdown', 'checkboxes']);

function validate(t: Template, kind: 'md' | 'yaml'): void {
  if (t.name.trim() === '') throw new Error("'name' is required");
  if (t.about.trim() === '') throw new Error("'about' is required");
  if (kind !== 'yaml') return;
  if (!t.body || t.body.length === 0) throw new Error("'body' is required");
  const ids = new Set<string>();
  t.body.forEach((f, i) => {
    const at = `body[${i}](${f.type})`;
    if (!FIELD_TYPES.has(f.type)) throw new Error(`${at}: unknown type`);
    const attrs = f.attributes ?? {};
    if (f.type === 'markdown') {
      if (typeof attrs.value !== 'string' || attrs.value.trim() === '') throw new Error(`${at}: 'value' is required`);
      return;
    }
    if (/[^\w-]/.test(f.id)) throw new Error(`${at}: 'id' should contain only alphanumeric, '-' and '_'`);
    if (ids.has(f.id)) throw new Error(`${at}: 'id' should be unique`);
    ids.add(f.id);
    if (typeof attrs.label !== 'string' || attrs.label.trim() === '') throw new Error(`${at}: 'label' is required`);
    if ((f.type === 'dropdown' || f.type === 'checkboxes') && (!Array.isArray(attrs.options) || attrs.options.length === 0)) {
      throw new Error(`${at}: 'options' is required and should be a array`);
    }
  });
}

function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return '';
}

/** `IssueTemplateStringSlice`: a YAML list, or one comma-separated string. */
function stringSlice(v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (Array.isArray(v)) return v.map((x) => str(x));
  if (typeof v === 'string') {
    const parts = v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    return parts.length > 0 ? parts : null;
  }
  return null;
}

/** A YAML mapping as Go's json encodes a `map[string]any`: keys sorted, recursively. */
function goMap(v: unknown): Record<string, unknown> | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  return sortKeys(v) as Record<string, unknown>;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
