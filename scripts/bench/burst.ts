/**
 * Burst: thousands of signed webhook deliveries over a few hundred issues, sent by a 64-connection
 * client as fast as it acknowledges them, to the service running as its own process (`node dist/main.js`,
 * as in production) against the simulated Gitea. Measures the acknowledgements, the time until the
 * journal has drained, how many label writes the coalescing left per delivery, and the service's peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { SimGitea } from '../../src/simgitea/sim.js';
import { editedPayload, loadFixtureBody, seedWorld } from './world.js';

export interface BurstFigures {
  deliveries: number;
  issues: number;
  repos: number;
  ackPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  non2xx: number;
  sendMs: number;
  drainMs: number;
  labelWrites: number;
  labelWritesPerDelivery: number;
  giteaRequests: number;
  peakRssMb: number;
}

export interface BurstOptions {
  deliveries: number;
  repos: number;
  issuesPerRepo: number;
  latencyMs: number;
  jitterMs: number;
  connections: number;
  /** The built entry point (`dist/main.js`). */
  entry: string;
}

const SECRET = 'bench-burst-secret';

export async function runBurst(options: BurstOptions): Promise<BurstFigures> {
  const sim = await SimGitea.start({ latencyMs: options.latencyMs, jitterMs: options.jitterMs, seed: 11 });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-burst-'));
  let child: ChildProcess | undefined;
  try {
    const world = seedWorld(sim, options.repos, options.issuesPerRepo);
    const template = loadFixtureBody('issues-edited.json');
    // Every delivery is prepared (and signed) before the clock starts.
    const base = Date.parse('2026-03-02T10:00:00Z');
    const requests = Array.from({ length: options.deliveries }, (_, i) => {
      const target = world.issues[i % world.issues.length]!;
      const payload = editedPayload(template, target, new Date(base + i * 1000).toISOString().replace('.000', ''));
      const d = sim.makeDelivery('issues', 'issues', payload, { secret: SECRET });
      return { method: 'POST' as const, path: '/webhook', headers: d.headers, body: d.body };
    });

    const port = await freePort();
    const started = startService(options.entry, {
      GITEA_URL: sim.url,
      GITEA_TOKEN: sim.token,
      WEBHOOK_SECRET: SECRET,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    });
    child = started.child;
    const url = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 30_000, 'service ready');
    sim.resetStats();

    let i = 0;
    const nextRequest = (req: Record<string, unknown>) => {
      const r = requests[i++ % requests.length]!;
      return { ...req, headers: r.headers, body: r.body };
    };
    const t0 = performance.now();
    const result = await autocannon({
      url,
      connections: options.connections,
      amount: requests.length,
      requests: [{ method: 'POST', path: '/webhook', setupRequest: (req: any) => nextRequest(req) }],
    } as autocannon.Options);
    const sendMs = performance.now() - t0;
    await until(async () => (await pendingWork(url)) === 0, 300_000, 'journal drained');
    const drainMs = performance.now() - t0;
    const stats = sim.stats();
    const peakRssMb = readPeakRssMb(child.pid!);
    return {
      deliveries: options.deliveries,
      issues: world.issues.length,
      repos: options.repos,
      ackPerSec: result.requests.average,
      ackP50Ms: result.latency.p50,
      ackP99Ms: result.latency.p99,
      non2xx: result.non2xx,
      sendMs,
      drainMs,
      labelWrites: stats.labelWrites,
      labelWritesPerDelivery: stats.labelWrites / options.deliveries,
      giteaRequests: stats.requests,
      peakRssMb,
    };
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    await sim.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export function startService(entry: string, env: Record<string, string>): { child: ChildProcess } {
  const child = spawn(process.execPath, [entry], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[service] ${chunk.toString()}`));
  return { child };
}

/** Pending deliveries plus work in the scheduler, from the service's own /metrics. */
async function pendingWork(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const name of ['gitea_triage_journal_pending', 'gitea_triage_queue_size', 'gitea_triage_running']) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`metric ${name} missing from /metrics`);
    total += Number(m[1]);
  }
  return total;
}

/** VmHWM: the peak resident set size of a process, from Linux's /proc. */
function readPeakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
