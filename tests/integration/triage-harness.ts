import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createService, type Service } from '../../src/app.js';
import { OwnershipStore } from '../../src/applier/ownership.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { LogCapture } from '../helpers/log-capture.js';
import { SimGitea, type SimGiteaOptions } from '../../src/simgitea/sim.js';
import { createTriageEvaluator } from '../../src/service/triage.js';

/**
 * The real service (createService + the triage evaluator, journal in a temp dir, port 0) wired to a
 * simulated Gitea over real HTTP: the sim's every-event hook delivers to the service's /webhook.
 */
export interface TriageHarness {
  sim: SimGitea;
  service: Service;
  logs: LogCapture;
  store: OwnershipStore;
  /** The service's base URL (`…/webhook` receives deliveries). */
  url: string;
  /** Sends a delivery made with `sim.makeDelivery` to the service, as Gitea would; resolves with the status. */
  deliver(delivery: { headers: Record<string, string>; body: string }): Promise<number>;
  /** Waits (with a deadline) until the sim has delivered everything and the service is idle, echoes included. */
  settle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const SECRET = 'triage-test-secret';

export const TRIAGE_YML = `labels:
  kind/bug:
    title: ['\\bbug\\b', 'crash']
    body: ['stack ?trace']
  area/docs:
    files: ['docs/**', '**/*.md']
  area/api-docs:
    match: all
    files: ['api/**']
    title: ['\\bdocs?\\b']
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

export const BUG_TEMPLATE = `---
name: Bug report
about: Something does not work
---
### What happened

### Steps to reproduce

### Version
`;

export const FEATURE_FORM = `name: Feature request
about: Suggest an improvement
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
    validations:
      required: true
  - type: textarea
    id: screenshots
    attributes:
      label: Screenshots
`;

export const REPO_LABELS: { name: string; exclusive: boolean }[] = [
  { name: 'kind/bug', exclusive: true },
  { name: 'kind/feature', exclusive: true },
  { name: 'area/docs', exclusive: false },
  { name: 'area/api-docs', exclusive: false },
  { name: 'area/ui', exclusive: false },
  { name: 'needs-info', exclusive: false },
  { name: 'size/XS', exclusive: true },
  { name: 'size/S', exclusive: true },
  { name: 'size/M', exclusive: true },
  { name: 'size/L', exclusive: true },
  { name: 'size/XL', exclusive: true },
];

/** An org repo with the config, a markdown template, a YAML form and the labels; an org label `priority/high`. */
export function seedTriagedRepo(sim: SimGitea, org: string, repo: string, config = TRIAGE_YML): void {
  sim.addRepo(org, repo, {
    files: {
      '.gitea/triage.yml': config,
      '.gitea/ISSUE_TEMPLATE/bug.md': BUG_TEMPLATE,
      '.gitea/ISSUE_TEMPLATE/feature.yaml': FEATURE_FORM,
    },
  });
  for (const l of REPO_LABELS) sim.addLabel(org, repo, { name: l.name, exclusive: l.exclusive, color: 'ededed' });
}

export async function startTriage(
  options: { env?: Record<string, string>; sim?: SimGiteaOptions; seed?: (sim: SimGitea) => void } = {},
): Promise<TriageHarness> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
  const sim = await SimGitea.start(options.sim ?? {});
  options.seed?.(sim);
  const config = loadConfig({
    GITEA_URL: sim.url,
    GITEA_TOKEN: sim.token,
    WEBHOOK_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    BATCH_WINDOW_MS: '20',
    LOG_LEVEL: 'debug',
    ...options.env,
  });
  const logs = new LogCapture();
  const log = createLogger({ level: config.logLevel, format: 'json', stream: logs.stream, redact: [config.giteaToken, SECRET] });
  const service = await createService({ config, log, evaluator: createTriageEvaluator, identityBackoff: { firstMs: 20, maxMs: 200 } });
  const { url } = await service.listen();
  await service.identified();
  sim.setWebhook({ url: `${url}/webhook`, secret: SECRET });
  const store = OwnershipStore.forJournal(service.journal);

  const settle = async (timeoutMs = 15_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = sim.deliveries.length;
      await withDeadline(sim.awaitDeliveries(), deadline, 'simulated deliveries');
      await withDeadline(service.onIdle(), deadline, 'the service to go idle');
      if (sim.deliveries.length === seen) return;
    }
  };

  return {
    sim,
    service,
    logs,
    store,
    url,
    deliver: async (delivery) => {
      const res = await fetch(`${url}/webhook`, { method: 'POST', headers: delivery.headers, body: delivery.body });
      await res.arrayBuffer();
      return res.status;
    },
    settle,
    close: async () => {
      await service.stop();
      await sim.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
