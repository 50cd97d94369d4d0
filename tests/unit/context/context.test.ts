import { describe, expect, it } from '@jest/globals';
import { ContextLoader, singleFileTemplate } from '../../../src/context/context.js';
import type { GiteaApi } from '../../../src/gitea/api.js';
import { GiteaError } from '../../../src/gitea/errors.js';
import type { GiteaIssueTemplate, GiteaLabel } from '../../../src/gitea/types.js';
import { createLogger } from '../../../src/log/logger.js';
import { LogCapture } from '../../helpers/log-capture.js';

/**
 * A repository's side of Gitea for the context loader, in memory: the loader's caching (TTL, shared
 * loads, invalidation racing a load) needs control over when answers arrive, which a real server
 * cannot give. Counts calls per method. `gate` holds every answer until `release()`.
 */
class FakeRepoGitea {
  files: Record<string, string> = {};
  templates: GiteaIssueTemplate[] = [];
  repoLabels: GiteaLabel[] = [];
  orgLabels: GiteaLabel[] | null = null;
  calls: Record<string, number> = {};
  failNext: Error | undefined;
  private held: (() => void)[] = [];
  gate = false;

  release(): void {
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  get total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  private async answer<T>(method: string, value: () => T): Promise<T> {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    // The answer reflects the state when the request arrived, as a real server's would.
    const result = value();
    if (this.gate) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    return result;
  }

  api(): GiteaApi {
    const unexpected = (name: string) => () => {
      throw new Error(`context loader called ${name}`);
    };
    return {
      getFiles: (_o: string, _r: string, paths: string[]) =>
        this.answer('getFiles', () => paths.map((p) => (p in this.files ? { path: p, content: this.files[p]! } : null))),
      listIssueTemplates: () => this.answer('listIssueTemplates', () => this.templates),
      listRepoLabels: () => this.answer('listRepoLabels', () => this.repoLabels),
      listOrgLabels: () => this.answer('listOrgLabels', () => this.orgLabels),
      getVersion: unexpected('getVersion'),
      getCurrentUser: unexpected('getCurrentUser'),
      getRepo: unexpected('getRepo'),
      getIssue: unexpected('getIssue'),
      listIssues: unexpected('listIssues'),
      getIssueLabels: unexpected('getIssueLabels'),
      addIssueLabels: unexpected('addIssueLabels'),
      removeIssueLabel: unexpected('removeIssueLabel'),
      createRepoLabel: unexpected('createRepoLabel'),
      listPullFiles: unexpected('listPullFiles'),
      getPermission: unexpected('getPermission'),
      createComment: unexpected('createComment'),
      listHooks: unexpected('listHooks'),
      createHook: unexpected('createHook'),
      editHook: unexpected('editHook'),
      deleteHook: unexpected('deleteHook'),
    } as unknown as GiteaApi;
  }
}

const label = (id: number, name: string, exclusive = false): GiteaLabel => ({ id, name, exclusive, color: 'ee0701', description: '' });

const CONFIG = [
  'labels:',
  '  kind/bug:',
  "    title: ['\\bbug\\b', 'crash']",
  '  needs-info:',
  '    missing_sections: template',
  'size:',
  '  labels:',
  '    size/S: 0',
  '    size/L: 100',
  '',
].join('\n');

const BUG_TEMPLATE: GiteaIssueTemplate = {
  name: 'Bug report',
  about: 'Something is broken',
  file_name: 'bug.md',
  content: '### What happened\n\n### Steps to reproduce\n',
};

function setup(options: { ttlMs?: number; now?: () => number; defaultConfig?: { text: string; file: string } } = {}) {
  const gitea = new FakeRepoGitea();
  const capture = new LogCapture();
  const log = createLogger({ level: 'debug', format: 'json', stream: capture.stream });
  const loader = new ContextLoader({ gitea: gitea.api(), ttlMs: options.ttlMs ?? 60_000, log, ...(options.now ? { now: options.now } : {}), ...(options.defaultConfig ? { defaultConfig: options.defaultConfig } : {}) });
  return { gitea, capture, loader };
}

function configured(gitea: FakeRepoGitea): void {
  gitea.files['.gitea/triage.yml'] = CONFIG;
  gitea.templates = [BUG_TEMPLATE];
  gitea.repoLabels = [label(1, 'kind/bug', true), label(2, 'needs-info'), label(3, 'size/S', true)];
  gitea.orgLabels = [label(31, 'size/L', true), label(32, 'kind/bug')];
}

describe('ContextLoader', () => {
  it('asks one request of a repo without config, and nothing more while cached', async () => {
    const { gitea, loader } = setup();
    const context = await loader.get('acme', 'plain');
    expect(context.source).toBe('none');
    expect(context.config).toBeUndefined();
    await loader.get('acme', 'plain');
    expect(gitea.calls).toEqual({ getFiles: 1 });
  });

  it('loads config, templates, repo and org labels; repo labels win over org labels of the same name', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    const context = await loader.get('acme', 'widgets');
    expect(context.source).toBe('repo');
    expect(context.file).toBe('.gitea/triage.yml');
    expect(context.problem).toBeUndefined();
    expect([...context.config!.labels.keys()]).toEqual(['kind/bug', 'needs-info']);
    expect(context.templates).toEqual([expect.objectContaining({ name: 'Bug report', headings: ['What happened', 'Steps to reproduce'] })]);
    expect(context.labels.get('kind/bug')).toEqual({ id: 1, name: 'kind/bug', exclusive: true, org: false });
    expect(context.labels.get('size/L')).toEqual({ id: 31, name: 'size/L', exclusive: true, org: true });
    expect(gitea.calls).toEqual({ getFiles: 1, listIssueTemplates: 1, listRepoLabels: 1, listOrgLabels: 1 });
  });

  it('does not ask for templates when no rule uses missing_sections: template', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    gitea.files['.gitea/triage.yml'] = CONFIG.replace('    missing_sections: template', "    missing_sections: ['Version']");
    const context = await loader.get('acme', 'widgets');
    expect(context.config).toBeDefined();
    expect(context.templates).toEqual([]);
    expect(gitea.calls).toEqual({ getFiles: 1, listRepoLabels: 1, listOrgLabels: 1 });
  });

  it('accepts .gitea/triage.yaml too', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    gitea.files = { '.gitea/triage.yaml': CONFIG };
    expect((await loader.get('acme', 'widgets')).file).toBe('.gitea/triage.yaml');
  });

  it('shares one load between concurrent callers', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    const all = Promise.all([loader.get('acme', 'widgets'), loader.get('acme', 'widgets'), loader.get('Acme', 'Widgets')]);
    const [a, b, c] = await all;
    expect(a).toBe(b);
    expect(a).toBe(c);
    expect(gitea.calls.getFiles).toBe(1);
  });

  it('reloads after the TTL, and on every get with TTL 0', async () => {
    let now = 0;
    const { gitea, loader } = setup({ ttlMs: 1000, now: () => now });
    configured(gitea);
    await loader.get('acme', 'widgets');
    now = 999;
    await loader.get('acme', 'widgets');
    expect(gitea.calls.getFiles).toBe(1);
    now = 1000;
    await loader.get('acme', 'widgets');
    expect(gitea.calls.getFiles).toBe(2);

    const uncached = setup({ ttlMs: 0 });
    configured(uncached.gitea);
    await uncached.loader.get('acme', 'widgets');
    await uncached.loader.get('acme', 'widgets');
    expect(uncached.gitea.calls.getFiles).toBe(2);
    expect(uncached.gitea.calls.listRepoLabels).toBe(2);
  });

  it('reloads after invalidate, and never stores a load that an invalidate overtook', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    gitea.gate = true;
    const stale = loader.get('acme', 'widgets');
    await Promise.resolve();
    // A push to the default branch arrives while the first load is in flight.
    loader.invalidate('acme/widgets');
    gitea.files['.gitea/triage.yml'] = CONFIG.replace("'crash'", "'panic'");
    gitea.gate = false;
    gitea.release();
    expect((await stale).config!.labels.get('kind/bug')!.title!.map((p) => p.source)).toContain('crash');
    const fresh = await loader.get('acme', 'widgets');
    expect(fresh.config!.labels.get('kind/bug')!.title!.map((p) => p.source)).toContain('panic');
    expect(gitea.calls.getFiles).toBe(2);
    // And the fresh one is cached.
    await loader.get('acme', 'widgets');
    expect(gitea.calls.getFiles).toBe(2);
  });

  it('does not cache a failed load: the next get asks again', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    gitea.failNext = new GiteaError({ message: 'GET /repos/acme/widgets/labels: 503', method: 'GET', path: '/repos/acme/widgets/labels', status: 503, transient: true });
    await expect(loader.get('acme', 'widgets')).rejects.toThrow('503');
    const context = await loader.get('acme', 'widgets');
    expect(context.config).toBeDefined();
    expect(gitea.calls.getFiles).toBe(2);
  });

  it('reports a config naming a label that does not exist (label and line), once per load, and caches it', async () => {
    const { gitea, loader, capture } = setup();
    configured(gitea);
    gitea.repoLabels = gitea.repoLabels.filter((l) => l.name !== 'needs-info');
    const context = await loader.get('acme', 'widgets');
    expect(context.config).toBeUndefined();
    expect(context.problem).toMatchObject({ file: '.gitea/triage.yml', line: 4, path: 'labels.needs-info' });
    expect(context.problem!.message).toContain('needs-info');
    await loader.get('acme', 'widgets');
    const warnings = capture.find({ level: 'warn', repo: 'acme/widgets' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: '.gitea/triage.yml', line: 4 });
    expect(String(warnings[0]!.error)).toContain('needs-info');
    expect(gitea.calls.getFiles).toBe(1);
  });

  it('reports a config that does not parse without fetching anything else', async () => {
    const { gitea, loader, capture } = setup();
    gitea.files['.gitea/triage.yml'] = 'labels:\n  kind/bug:\n    title: [unclosed\n';
    const context = await loader.get('acme', 'broken');
    expect(context.source).toBe('repo');
    expect(context.problem).toBeDefined();
    expect(context.problem!.line).toBeGreaterThan(0);
    expect(gitea.calls).toEqual({ getFiles: 1 });
    expect(capture.find({ level: 'warn', repo: 'acme/broken' })).toHaveLength(1);
  });

  it('uses TRIAGE_CONFIG for a repo without its own file', async () => {
    const { gitea, loader } = setup({ defaultConfig: { text: CONFIG, file: '/etc/triage.yml' } });
    gitea.repoLabels = [label(1, 'kind/bug'), label(2, 'needs-info'), label(3, 'size/S'), label(4, 'size/L')];
    const context = await loader.get('bob', 'tools');
    expect(context.source).toBe('default');
    expect(context.file).toBe('/etc/triage.yml');
    expect(context.config).toBeDefined();
    // A user-owned repo: no org labels.
    expect([...context.labels.values()].every((l) => !l.org)).toBe(true);
  });

  it('falls back to a single-file template when the template folders hold none', async () => {
    const { gitea, loader } = setup();
    configured(gitea);
    gitea.templates = [];
    gitea.files['.github/issue_template.md'] = '---\nname: Report\nabout: x\n---\n## Expected\n\n## Actual\n';
    const context = await loader.get('acme', 'widgets');
    expect(context.templates).toEqual([expect.objectContaining({ name: 'Report', headings: ['Expected', 'Actual'] })]);
    expect(gitea.calls.getFiles).toBe(2);
  });
});

describe('singleFileTemplate', () => {
  it('reads a markdown template with and without front matter, and a YAML form', () => {
    expect(singleFileTemplate('issue_template.md', '## A\n')).toEqual({ name: 'issue_template.md', file_name: 'issue_template.md', content: '## A\n' });
    expect(singleFileTemplate('.github/issue_template.md', '## A\n')).toMatchObject({ name: 'issue_template.md', file_name: '.github/issue_template.md' });
    expect(singleFileTemplate('.gitea/ISSUE_TEMPLATE.md', '---\nname: Bug\n---\n### B\n')).toMatchObject({ name: 'Bug', content: '### B\n' });
    const form = singleFileTemplate('ISSUE_TEMPLATE.yaml', 'name: Form\nbody:\n  - type: textarea\n    attributes:\n      label: Logs\n');
    expect(form).toMatchObject({ name: 'Form', body: [{ type: 'textarea', attributes: { label: 'Logs' } }] });
    expect(singleFileTemplate('ISSUE_TEMPLATE.yml', 'just text')).toBeUndefined();
  });
});
