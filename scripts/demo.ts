/**
 * `npm run demo`: the whole service against a simulated Gitea, on this machine, with nothing else
 * to install. Seeds an org with a triaged repository (config, a markdown template, a YAML issue form,
 * labels) and one without config, starts the service (real HTTP, real journal in a temp dir), lets
 * people act in the simulated Gitea — which sends signed webhooks like Gitea — and prints the labels
 * the service applied, with why.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Table from 'cli-table3';
import { Command } from 'commander';
import { createService, type Service } from '../src/app.js';
import type { LabelEvent } from '../src/applier/ownership.js';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/log/logger.js';
import { SimGitea } from '../src/simgitea/sim.js';
import { openStore, type Store } from '../src/store/api.js';
import { createTriageEvaluator } from '../src/service/triage.js';

const SECRET = 'demo-webhook-secret';
const ORG = 'acme';
const REPO = 'widgets';
const PLAIN = 'website';

const TRIAGE_YML = `# Triage rules for acme/widgets (read by gitea-triage from the default branch)
labels:
  kind/bug:
    title: ['\\bbug\\b', 'crash', 'exception']
    body: ['stack ?trace', 'panic:']
  area/docs:
    files: ['docs/**', '**/*.md']
  needs-info:
    missing_sections: template
size:
  labels:
    size/XS: 0
    size/S: 10
    size/M: 100
    size/L: 500
    size/XL: 1000
  exclude: ['**/*.lock', 'vendor/**']
commands:
  enabled: true
  min_permission: write
  reply: true
`;

const BUG_TEMPLATE = `---
name: Bug report
about: Something does not work as it should
labels: []
---
### What happened

### Steps to reproduce

### Version
`;

const FEATURE_FORM = `name: Feature request
description: Suggest an improvement
body:
  - type: textarea
    id: problem
    attributes:
      label: Problem
    validations:
      required: true
  - type: textarea
    id: proposal
    attributes:
      label: Proposal
`;

interface Step {
  what: string;
  repo: string;
  number: number;
  before: string[];
  events: number;
  comments: number;
}

function seed(sim: SimGitea): void {
  sim.addOrg(ORG, { fullName: 'Acme Corp' });
  for (const login of ['alice', 'bob', 'carol', 'dave']) sim.addUser(login);
  sim.addRepo(ORG, REPO, {
    files: {
      '.gitea/triage.yml': TRIAGE_YML,
      '.gitea/ISSUE_TEMPLATE/bug.md': BUG_TEMPLATE,
      '.gitea/ISSUE_TEMPLATE/feature.yaml': FEATURE_FORM,
      'README.md': '# Widgets\n',
    },
  });
  sim.addRepo(ORG, PLAIN, { files: { 'index.html': '<h1>Acme</h1>\n' } });
  const labels: [string, string, boolean][] = [
    ['kind/bug', 'ee0701', true],
    ['kind/feature', '0e8a16', true],
    ['area/docs', '1d76db', false],
    ['area/ui', '5319e7', false],
    ['needs-info', 'fbca04', false],
    ['size/XS', 'ededed', true],
    ['size/S', 'ededed', true],
    ['size/M', 'c2e0c6', true],
    ['size/L', 'fef2c0', true],
    ['size/XL', 'f9d0c4', true],
  ];
  for (const [name, color, exclusive] of labels) sim.addLabel(ORG, REPO, { name, color, exclusive });
  sim.addOrgLabel(ORG, { name: 'priority/high', color: 'd93f0b', exclusive: true });
  sim.addLabel(ORG, PLAIN, { name: 'kind/bug', color: 'ee0701', exclusive: true });
  sim.setPermission(ORG, REPO, 'carol', 'write');
  sim.setPermission(ORG, REPO, 'dave', 'read');
}

/** Waits until the simulated Gitea has nothing left to deliver and the service nothing left to do. */
async function settle(sim: SimGitea, service: Service, deadline: number): Promise<void> {
  for (;;) {
    const seen = sim.deliveries.length;
    await withDeadline(sim.awaitDeliveries(), deadline, 'webhook deliveries');
    await withDeadline(service.onIdle(), deadline, 'the service to go idle');
    // The bot's label writes come back as deliveries (recorded, never evaluated): wait for them too.
    if (sim.deliveries.length === seen) return;
  }
}

async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`demo: timed out waiting for ${what}`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function why(events: LabelEvent[], note: string | undefined): string {
  const lines = events.map((e) => {
    const sign = e.action === 'added' ? '+' : '-';
    if (e.kind === 'rule') return `${sign}${e.label}  ${e.rule ?? 'rule'}${e.evidence ? `: ${e.evidence}` : ''}`;
    if (e.kind === 'command') return `${sign}${e.label}  /label by ${e.user ?? '?'}`;
    return `${sign}${e.label}  by ${e.user ?? 'a person'}`;
  });
  if (note) lines.push(note);
  return lines.join('\n') || '(no change)';
}

async function main(): Promise<void> {
  const program = new Command()
    .name('demo')
    .description('the service against a simulated Gitea: a few realistic deliveries, and the labels applied')
    .option('--latency <ms>', 'simulated Gitea API latency per request', '5')
    .option('--timeout <ms>', 'give up after this long', '30000')
    .option('--keep <dir>', 'keep the journal and a JSON log (service.log) in this directory, to try the operator tools on')
    .parse();
  const opts = program.opts<{ latency: string; timeout: string; keep?: string }>();
  const deadline = Date.now() + Number(opts.timeout);

  const keep = opts.keep === undefined ? undefined : path.resolve(opts.keep);
  if (keep !== undefined && fs.existsSync(path.join(keep, 'journal.db'))) {
    throw new Error(`--keep ${keep}: a journal exists there already; give an empty or new directory`);
  }
  const dataDir = keep ?? fs.mkdtempSync(path.join(os.tmpdir(), 'gitea-triage-demo-'));
  if (keep !== undefined) fs.mkdirSync(keep, { recursive: true });
  const logFile = keep !== undefined ? fs.createWriteStream(path.join(keep, 'service.log')) : undefined;
  const sim = await SimGitea.start({ latencyMs: Number(opts.latency) });
  let service: Service | undefined;
  let store: Store | undefined;
  try {
    seed(sim);
    const config = loadConfig({
      GITEA_URL: sim.url,
      GITEA_TOKEN: sim.token,
      WEBHOOK_SECRET: SECRET,
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      // The store the service and this demo use: DATABASE_URL (and DATABASE_SCHEMA) as for the service, else SQLite in DATA_DIR.
      ...storeEnv(),
      BATCH_WINDOW_MS: '50',
      LOG_LEVEL: logFile ? 'info' : 'warn',
      LOG_FORMAT: logFile ? 'json' : 'pretty',
    });
    const log = createLogger({
      level: config.logLevel,
      format: config.logFormat,
      redact: [config.giteaToken, ...config.webhookSecrets],
      ...(logFile ? { stream: logFile } : {}),
    });
    service = await createService({ config, log, evaluator: createTriageEvaluator });
    const { url } = await service.listen();
    // Its own deliveries must be recognised before any arrive (they are recorded, never evaluated).
    await withDeadline(service.identified(), deadline, 'the bot identity');
    sim.setWebhook({ url: `${url}/webhook`, secret: SECRET });
    // The records the service writes, read the way the operator tools read them (read-only).
    const records = (store = await openStore(config, log, { readOnly: true })).ownership;

    const steps: Step[] = [];
    const begin = async (what: string, repo: string, number: number): Promise<Step> => {
      const step = {
        what,
        repo,
        number,
        before: sim.issueLabels(ORG, repo, number),
        events: (await records.events(`${ORG}/${repo}`, number)).length,
        comments: sim.comments(ORG, repo, number).length,
      };
      steps.push(step);
      return step;
    };
    const notes = new Map<Step, string>();

    // --- 1. People open issues and pull requests ---
    const bug = sim.openIssue(ORG, REPO, {
      user: 'alice',
      title: 'Editor crashes when saving a widget',
      body: '### What happened\nThe editor closes when I press Save.\n\n### Steps to reproduce\n1. Open a widget\n2. Press Save\n\n### Version\n1.4.2\n',
    });
    steps.push({ what: 'bug report (all template sections)', repo: REPO, number: bug, before: [], events: 0, comments: 0 });
    const vague = sim.openIssue(ORG, REPO, {
      user: 'bob',
      title: 'Colours look wrong on the dashboard',
      body: '### What happened\nThe chart colours are off.\n',
    });
    steps.push({ what: 'issue missing template sections', repo: REPO, number: vague, before: [], events: 0, comments: 0 });
    const feature = sim.openIssue(ORG, REPO, {
      user: 'carol',
      title: 'Export widgets as SVG',
      body: '### Problem\nOnly PNG export exists.\n\n### Proposal\nAdd an SVG option.\n',
      labels: ['kind/feature'],
    });
    steps.push({ what: 'feature request (YAML form), labelled by its author', repo: REPO, number: feature, before: ['kind/feature'], events: 0, comments: 0 });
    const docs = sim.openPull(ORG, REPO, {
      user: 'bob',
      title: 'Document the export options',
      files: [{ filename: 'docs/export.md', additions: 24, deletions: 3 }],
    });
    steps.push({ what: 'docs pull request', repo: REPO, number: docs, before: [], events: 0, comments: 0 });
    const big = sim.openPull(ORG, REPO, {
      user: 'alice',
      title: 'New rendering engine',
      files: [
        { filename: 'src/render/engine.ts', additions: 420, deletions: 35 },
        { filename: 'src/render/canvas.ts', additions: 160, deletions: 10 },
        { filename: 'package-lock.lock', additions: 3000, deletions: 1200 },
      ],
    });
    steps.push({ what: 'big pull request (lock file not counted)', repo: REPO, number: big, before: [], events: 0, comments: 0 });
    const plain = sim.openIssue(ORG, PLAIN, { user: 'alice', title: 'Crash on the home page', body: 'It crashes.' });
    steps.push({ what: 'issue in a repo without .gitea/triage.yml', repo: PLAIN, number: plain, before: [], events: 0, comments: 0 });
    notes.set(steps.at(-1)!, 'repo has no triage config: untouched');
    await settle(sim, service, deadline);

    // --- 2. Commands in comments ---
    await begin('/label priority/high by carol (write)', REPO, bug);
    sim.comment(ORG, REPO, bug, 'carol', 'Confirmed on 1.4.2.\n\n/label priority/high');
    await settle(sim, service, deadline);
    await begin('/label -kind/bug by dave (read)', REPO, bug);
    sim.comment(ORG, REPO, bug, 'dave', '/label -kind/bug');
    await settle(sim, service, deadline);

    // --- 3. The big pull request grows ---
    await begin('big pull request grows', REPO, big);
    sim.syncPull(ORG, REPO, big, 'alice', [
      { filename: 'src/render/engine.ts', additions: 820, deletions: 90 },
      { filename: 'src/render/canvas.ts', additions: 260, deletions: 10 },
    ]);
    await settle(sim, service, deadline);

    // The bot's replies to refused commands, in the comments each step added.
    for (const [i, step] of steps.entries()) {
      const next = steps.slice(i + 1).find((s) => s.repo === step.repo && s.number === step.number);
      const replies = sim
        .comments(ORG, step.repo, step.number)
        .slice(step.comments, next?.comments)
        .filter((c) => c.user === sim.botLogin)
        .map((c) => `reply: ${c.body}`);
      if (replies.length > 0) notes.set(step, replies.join('\n'));
    }

    const table = new Table({
      head: ['issue', 'what happened', 'labels before', 'labels after', 'why'],
      style: { head: [], border: [] },
      wordWrap: true,
      colWidths: [13, 30, 16, 18, 52],
    });
    // Steps on one issue share its event log: each shows the events recorded since it began.
    const ordered = [...steps];
    for (const [i, step] of ordered.entries()) {
      const all = await records.events(`${ORG}/${step.repo}`, step.number);
      const next = ordered.slice(i + 1).find((s) => s.repo === step.repo && s.number === step.number);
      const events = all.slice(step.events, next ? next.events : undefined);
      const after = next ? next.before : sim.issueLabels(ORG, step.repo, step.number);
      table.push([
        `${step.repo}#${step.number}`,
        step.what,
        step.before.join('\n') || '-',
        after.join('\n') || '-',
        why(events, notes.get(step)),
      ]);
    }
    console.log(table.toString());
    const stats = sim.stats();
    const deliveries = sim.deliveries.length;
    const echoes = sim.deliveries.filter((d) => d.sender === sim.botLogin).length;
    console.log(
      `Gitea: ${stats.requests} API requests over ${stats.connections} connection${stats.connections === 1 ? '' : 's'} ` +
        `(${stats.labelWrites} label writes); ${deliveries} webhook deliveries, ${echoes} of them the bot's own echoes (recorded, not evaluated).`,
    );
    if (keep !== undefined) {
      console.log(
        `\nKept in ${keep}: the journal and service.log. Try:\n` +
          `  DATA_DIR=${keep} npm run explain -- --issue ${ORG}/${REPO}#${bug}\n` +
          `  npm run logs -- --from ${path.join(keep, 'service.log')} --issue ${ORG}/${REPO}#${bug}\n` +
          `  DATA_DIR=${keep} npm run export -- --issue ${ORG}/${REPO}#${bug} --out -`,
      );
    }
  } finally {
    await store?.close();
    await service?.stop();
    await sim.close();
    if (logFile) await new Promise((resolve) => logFile.end(resolve));
    if (keep === undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** DATABASE_URL, DATABASE_SCHEMA from the environment, when set. */
function storeEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['DATABASE_URL', 'DATABASE_SCHEMA'] as const) {
    const value = process.env[name];
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
