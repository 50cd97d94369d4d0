/**
 * Time to label: deliveries sent at a steady rate to the service (its own process, `node dist/main.js`,
 * default settings), each about an issue that earns a label; for each, the time from the service's `202`
 * to the simulated Gitea applying its label write. Reported as p50 / p99 beside the target
 * `BATCH_WINDOW_MS` + 3 round trips (a round trip: Gitea's latency plus its jitter, the slowest answer).
 * The simulated Gitea runs in this process, so both ends are timed on one clock (`performance.now`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import winston from 'winston';
import { loadConfig } from '../../src/config/config.js';
import { SimGitea } from '../../src/simgitea/sim.js';
import { freePort, startService, until } from './burst.js';
import { AUTHOR, editedPayload, loadFixtureBody, seedWorld } from './world.js';

export interface LatencyFigures {
  /** Deliveries per second, sent on a fixed schedule (not waiting for answers). */
  rate: number;
  deliveries: number;
  /** Deliveries answered 202 whose issue got its label write (all of them, or the run failed). */
  labelled: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How late the sender was behind its schedule at worst (a busy machine skews the rate). */
  sendLagMaxMs: number;
  /** CPU time the service process used per delivery during the phase (user + system, from /proc). */
  serviceCpuMsPerDelivery: number;
  windowMs: number;
  roundTripMs: number;
  /** windowMs + 3 × roundTripMs. */
  targetMs: number;
  /** The service's CONCURRENCY. */
  concurrency: number;
}

export interface LatencyOptions {
  rates: number[];
  /** How long each rate is held. */
  seconds: number;
  repos: number;
  latencyMs: number;
  jitterMs: number;
  /** The built entry point (`dist/main.js`). */
  entry: string;
  /** Environment of the service on top of the defaults (e.g. `CONCURRENCY`). */
  env?: Record<string, string>;
}

const SECRET = 'bench-latency-secret';
const FULL_BODY = '### What happened\nIt stops.\n\n### Steps to reproduce\n1. Open it\n\n### Version\n1.4.2\n';

type Target = { owner: string; repo: string; number: number; title: string };

export async function runLatency(options: LatencyOptions): Promise<LatencyFigures[]> {
  // Label writes as the simulated Gitea applies them: its debug line follows each answer it writes.
  const written = new Map<string, number>();
  const sim = await SimGitea.start({ latencyMs: options.latencyMs, jitterMs: options.jitterMs, seed: 13, log: labelWriteProbe(written) });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-latency-'));
  let child: ChildProcess | undefined;
  try {
    const world = seedWorld(sim, options.repos, 0);
    const template = loadFixtureBody('issues-opened.json');
    let counter = 0;
    // Each delivery is about an issue of its own (nothing to coalesce) whose title earns kind/bug.
    const newTargets = (n: number): { target: Target; delivery: { headers: Record<string, string>; body: string } }[] =>
      Array.from({ length: n }, () => {
        const full = world.repos[counter % world.repos.length]!;
        const [owner, repo] = full.split('/') as [string, string];
        const title = `Crash in widget ${++counter}`;
        const number = sim.addIssue(owner, repo, { title, body: FULL_BODY, user: AUTHOR });
        const target = { owner, repo, number, title };
        const payload = editedPayload(template, target, sim.issue(owner, repo, number).updated_at);
        return { target, delivery: sim.makeDelivery('issues', 'issues', payload, { secret: SECRET }) };
      });

    const port = await freePort();
    const env = { GITEA_URL: sim.url, GITEA_TOKEN: sim.token, WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...options.env };
    const { batchWindowMs: windowMs, concurrency } = loadConfig(env);
    child = startService(options.entry, env).child;
    const url = `http://127.0.0.1:${port}/webhook`;
    await until(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, 30_000, 'service ready');

    // Warm-up, not measured: one delivery per repository loads its context into the service's cache.
    const warm = newTargets(world.repos.length);
    await Promise.all(warm.map(({ delivery }) => post(url, delivery)));
    await until(async () => warm.every(({ target }) => written.has(key(target))), 60_000, 'the warm-up label writes');

    const roundTripMs = options.latencyMs + options.jitterMs;
    const figures: LatencyFigures[] = [];
    for (const rate of options.rates) {
      const batch = newTargets(Math.max(1, Math.round(rate * options.seconds)));
      const cpuBefore = cpuMs(child.pid!);
      const { acks, lagMaxMs } = await sendSteadily(url, batch, rate);
      await until(async () => [...acks.keys()].every((k) => written.has(k)), 120_000, `the label writes at ${rate}/s`);
      const cpu = cpuMs(child.pid!) - cpuBefore;
      const times = [...acks].map(([k, ack]) => written.get(k)! - ack).sort((a, b) => a - b);
      figures.push({
        rate,
        deliveries: batch.length,
        labelled: times.length,
        p50Ms: quantile(times, 0.5),
        p99Ms: quantile(times, 0.99),
        maxMs: times.at(-1) ?? NaN,
        sendLagMaxMs: lagMaxMs,
        serviceCpuMsPerDelivery: cpu / batch.length,
        windowMs,
        roundTripMs,
        targetMs: windowMs + 3 * roundTripMs,
        concurrency,
      });
    }
    return figures;
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => child!.once('exit', resolve));
    }
    await sim.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Sends delivery i at start + i / rate seconds, without waiting for earlier answers; the 202 times by issue. */
async function sendSteadily(
  url: string,
  batch: { target: Target; delivery: { headers: Record<string, string>; body: string } }[],
  rate: number,
): Promise<{ acks: Map<string, number>; lagMaxMs: number }> {
  const acks = new Map<string, number>();
  const sends: Promise<void>[] = [];
  const start = performance.now();
  let lagMaxMs = 0;
  for (const [i, { target, delivery }] of batch.entries()) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    lagMaxMs = Math.max(lagMaxMs, performance.now() - due);
    sends.push(
      post(url, delivery).then((status) => {
        if (status !== 202) throw new Error(`delivery for ${key(target)} answered ${status}, not 202`);
        acks.set(key(target), performance.now());
      }),
    );
  }
  await Promise.all(sends);
  return { acks, lagMaxMs };
}

async function post(url: string, delivery: { headers: Record<string, string>; body: string }): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: delivery.headers, body: delivery.body });
  await res.arrayBuffer();
  return res.status;
}

/**
 * A logger for the simulated Gitea that keeps, per issue, when its first successful label write
 * (`POST …/issues/{n}/labels`) was answered, and writes nothing.
 */
function labelWriteProbe(written: Map<string, number>): winston.Logger {
  const probe = winston.format((info) => {
    const { method, path: p, status } = info as { method?: unknown; path?: unknown; status?: unknown };
    if (method === 'POST' && status === 200 && typeof p === 'string') {
      const m = /\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/labels$/.exec(p);
      const k = m ? `${m[1]}/${m[2]}#${m[3]}` : undefined;
      if (k !== undefined && !written.has(k)) written.set(k, performance.now());
    }
    return false;
  });
  return winston.createLogger({
    level: 'debug',
    format: probe(),
    transports: [new winston.transports.Stream({ stream: new Writable({ write: (_chunk, _enc, done) => done() }) })],
  });
}

/** User + system CPU time of a process so far (ms), from Linux's /proc/<pid>/stat (in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function key(t: Target): string {
  return `${t.owner}/${t.repo}#${t.number}`;
}

/** The q-quantile of sorted values (nearest rank). */
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
