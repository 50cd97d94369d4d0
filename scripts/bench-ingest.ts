/**
 * Ingest benchmark: how fast does the receiver take webhooks, next to what Node can do at all?
 *
 * Three targets, each a child process (so the load generator does not share its event loop), loaded
 * one after another by autocannon with the same signed, realistic deliveries (Gitea's issue and
 * comment payloads, 5-7 KB, a fresh delivery id per request):
 *   (a) bare    — node:http reads the body and answers 202;
 *   (b) express — a minimal Express app: raw body, signature verified, JSON parsed, 202; no journal;
 *   (c) service — the real service (createService): journal on disk (JOURNAL_SYNC default `full`),
 *                 coalescer and scheduler running, a no-op evaluator, info logs written to a file.
 * Then a fixed-rate run against a fresh (c) reports the latency at a steady 1,000 req/s: open-loop,
 * one request every millisecond, latency counted from when each was due (see {@link steadyLoad};
 * autocannon's own `overallRate` sends each second's share in one burst, which measures a burst).
 *
 *   npm run bench:ingest -- [--duration 10] [--connections 64] [--rate 1000] [--journal-sync full|normal]
 *                           [--rounds 1] [--cpu-prof <dir>] [--json]
 *
 * `--rounds N` runs the three closed-loop targets N times, interleaved, and reports each one's
 * median run: the ratios of a single round move by ±20 % with whatever else the machine does.
 *
 * `--cpu-prof <dir>` writes a V8 CPU profile of the service's measured run (not the fixed-rate one)
 * into `dir` (open it in Chrome DevTools or speedscope).
 *
 * Figures depend on the machine (and on what else runs on it): compare the ratios within one run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { verify } from '@octokit/webhooks-methods';
import autocannon from 'autocannon';
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import express from 'express';
import { createService } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/log/logger.js';
import type { Evaluator } from '../src/scheduler/types.js';
import { SimGitea } from '../src/simgitea/index.js';
import { BENCH_SECRET, benchDelivery } from './bench/deliveries.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..');
type Target = 'bare' | 'express' | 'service';

export interface IngestBenchOptions {
  /** Seconds per measured run (default 10). */
  durationSec?: number;
  /** Seconds of unmeasured load before each run (default 2). */
  warmupSec?: number;
  /** Concurrent connections (default 64). */
  connections?: number;
  /** Rate of the fixed-rate run against the service, req/s (default 1000; 0 skips it). */
  fixedRate?: number;
  /** JOURNAL_SYNC of the service (default `full`, the service's default). */
  journalSync?: 'full' | 'normal';
  /** Print a table on stdout (default false). */
  print?: boolean;
  /** Directory for a CPU profile of the service's measured run (default: none). */
  cpuProfDir?: string;
  /** Closed-loop runs per target, interleaved; figures are the median run (default 1). */
  rounds?: number;
}

export interface IngestRun {
  target: Target;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /**
   * Service only: journal commits (each one fsync with JOURNAL_SYNC=full) per request over the
   * target's life (warm-up included), appends and evaluation bookkeeping together.
   */
  commitsPerRequest?: number;
  /** Service only: its event loop's delay over its life (warm-up included), p99 and max, ms. */
  loopDelay?: { p99Ms: number; maxMs: number };
}

export interface IngestBenchFigures {
  connections: number;
  durationSec: number;
  /** Closed-loop runs per target; each target's figures are its median run (by req/s). */
  rounds: number;
  /** req/s of every closed-loop run, per target, in order. */
  samples: Record<Target, number[]>;
  bodyBytes: { min: number; max: number; mean: number };
  bare: IngestRun;
  express: IngestRun;
  service: IngestRun;
  /** Throughput ratios: service / express and service / bare. */
  ratios: { serviceToExpress: number; serviceToBare: number };
  /** The fixed-rate run against a fresh service (absent when `fixedRate` is 0). */
  fixedRate?: IngestRun & { targetRate: number };
  journalSync: 'full' | 'normal';
  node: string;
  cpus: number;
}

/** Signed deliveries to cycle through: four event kinds over 250 issues, so the coalescer sees many subjects. */
export function deliveryPool(): { headers: Record<string, string>; body: Buffer }[] {
  const kinds = ['issues-opened', 'issues-edited', 'issues-label_updated', 'issue_comment-created'];
  const pool: { headers: Record<string, string>; body: Buffer }[] = [];
  for (let i = 0; i < 1000; i++) {
    const number = 1 + (i % 250);
    pool.push(
      benchDelivery(kinds[i % kinds.length]!, (b) => {
        b.issue.number = number;
        if (b.number !== undefined) b.number = number;
      }),
    );
  }
  return pool;
}

export async function load(
  url: string,
  pool: { headers: Record<string, string>; body: Buffer }[],
  options: { durationSec: number; connections: number; overallRate?: number },
): Promise<autocannon.Result> {
  let next = 0;
  return autocannon({
    url: `${url}/webhook`,
    connections: options.connections,
    duration: options.durationSec,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
    requests: [
      {
        method: 'POST',
        setupRequest: (request) => {
          const d = pool[next++ % pool.length]!;
          const id = randomUUID();
          return {
            ...request,
            method: 'POST',
            path: '/webhook',
            headers: { ...d.headers, 'X-Gitea-Delivery': id, 'X-Gogs-Delivery': id, 'X-GitHub-Delivery': id },
            body: d.body,
          };
        },
      },
    ],
  });
}

/**
 * Open-loop load at a steady rate: request i is due at start + i/rate whatever happened to the ones
 * before, and its latency counts from that due time, so a stalled server or an exhausted pool shows
 * as latency instead of quietly lowering the rate (no coordinated omission). autocannon's
 * `overallRate` is not that: each connection sends its share of a second back to back, then waits
 * for the next second (lib/httpClient.js, `reqsMadeThisSecond`), so "1,000 req/s over 64
 * connections" arrives as one burst of 1,000 per second, queued 64 deep.
 */
export async function steadyLoad(
  url: string,
  pool: { headers: Record<string, string>; body: Buffer }[],
  options: { rate: number; durationSec: number; connections: number; timeoutMs?: number },
): Promise<Omit<IngestRun, 'target'>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const target = new URL('/webhook', url);
  const total = Math.max(1, Math.round(options.rate * options.durationSec));
  const latencies: number[] = [];
  let sent = 0;
  let settled = 0;
  let non2xx = 0;
  let errors = 0;
  let timeouts = 0;
  let lastAt = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const settle = () => {
      lastAt = performance.now();
      if (++settled === total) resolve();
    };
    const sendDue = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * options.rate) / 1000) + 1);
      while (sent < due) {
        const i = sent++;
        const dueAt = start + (i * 1000) / options.rate;
        const d = pool[i % pool.length]!;
        const id = randomUUID();
        let done = false;
        const req = http.request(
          target,
          {
            method: 'POST',
            agent,
            timeout: options.timeoutMs ?? 10_000,
            headers: { ...d.headers, 'Content-Length': String(d.body.length), 'X-Gitea-Delivery': id, 'X-Gogs-Delivery': id, 'X-GitHub-Delivery': id },
          },
          (res) => {
            res.resume();
            res.once('end', () => {
              if (done) return;
              done = true;
              latencies.push(performance.now() - dueAt);
              if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) non2xx++;
              settle();
            });
          },
        );
        req.once('timeout', () => {
          timeouts++;
          req.destroy(new Error('timeout'));
        });
        req.once('error', () => {
          if (done) return;
          done = true;
          errors++;
          settle();
        });
        req.end(d.body);
      }
      if (sent < total) setTimeout(sendDue, 1);
    };
    sendDue();
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => round1(latencies[Math.min(latencies.length - 1, Math.floor(q * (latencies.length - 1)))] ?? 0);
  return {
    requestsPerSec: Math.round((settled * 1000) / Math.max(1, lastAt - start)),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: round1(latencies[latencies.length - 1] ?? 0),
    requests: latencies.length,
    non2xx,
    errors,
    timeouts,
  };
}

function figures(target: Target, r: autocannon.Result): IngestRun {
  return {
    target,
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

/** Starts `--serve <target>` of this file as a child process; resolves with its URL. */
async function startTarget(
  target: Target,
  journalSync: 'full' | 'normal',
  cpuProfDir?: string,
): Promise<{ url: string; child: ChildProcess; stop(): Promise<{ commits?: number; loopDelayP99Ms?: number; loopDelayMaxMs?: number }> }> {
  const profile = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(cpuProfDir)] : [];
  const child = spawn(process.execPath, [...profile, '--import', 'tsx', SELF, '--serve', target, '--journal-sync', journalSync], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let buffer = '';
  const lineWith = (msg: string) => buffer.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const line = lineWith('bench ready');
      if (line) {
        child.stdout!.off('data', onData);
        // Keep reading (a full pipe would block the child); only the last lines matter.
        child.stdout!.on('data', (more: Buffer) => (buffer = (buffer + more.toString('utf8')).slice(-4096)));
        resolve(String((JSON.parse(line) as { url: string }).url));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`bench target ${target} exited with ${code} before it was ready`)));
  });
  return {
    url,
    child,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      const stats = lineWith('bench stats');
      return stats ? (JSON.parse(stats) as { commits?: number; loopDelayP99Ms?: number; loopDelayMaxMs?: number }) : {};
    },
  };
}

/** Runs the whole benchmark (about 60 s with the defaults) and returns the figures. */
export async function runIngestBench(options: IngestBenchOptions = {}): Promise<IngestBenchFigures> {
  const durationSec = options.durationSec ?? 10;
  const warmupSec = options.warmupSec ?? 2;
  const connections = options.connections ?? 64;
  const fixedRate = options.fixedRate ?? 1000;
  const journalSync = options.journalSync ?? 'full';
  const pool = deliveryPool();
  const sizes = pool.map((d) => d.body.length);
  const say = (text: string) => {
    if (options.print) process.stdout.write(`${text}\n`);
  };

  const rounds = Math.max(1, Math.floor(options.rounds ?? 1));
  const runs: Record<Target, IngestRun[]> = { bare: [], express: [], service: [] };
  // Rounds interleave the targets, so that a burst of other work on the machine hits all of them.
  for (let round = 1; round <= rounds; round++) {
    for (const target of ['bare', 'express', 'service'] as const) {
      say(`ingest: ${target}${rounds > 1 ? ` (round ${round}/${rounds})` : ''}: ${warmupSec} s warm-up, ${durationSec} s at ${connections} connections …`);
      const profile = target === 'service' && round === 1 ? options.cpuProfDir : undefined;
      const t = await startTarget(target, journalSync, profile);
      let sent = 0;
      let run: IngestRun | undefined;
      try {
        if (warmupSec > 0) sent += (await load(t.url, pool, { durationSec: warmupSec, connections })).requests.total;
        run = figures(target, await load(t.url, pool, { durationSec, connections }));
        sent += run.requests;
      } finally {
        const stats = await t.stop();
        if (run) withStats(run, stats, sent);
      }
      runs[target].push(run);
    }
  }
  const bare = median(runs.bare);
  const expressRun = median(runs.express);
  const service = median(runs.service);

  let fixed: IngestBenchFigures['fixedRate'];
  if (fixedRate > 0) {
    say(`ingest: service at a fixed ${fixedRate} req/s for ${durationSec} s …`);
    const t = await startTarget('service', journalSync);
    let sent = 0;
    try {
      if (warmupSec > 0) sent += (await steadyLoad(t.url, pool, { durationSec: warmupSec, connections, rate: fixedRate })).requests;
      fixed = { target: 'service', ...(await steadyLoad(t.url, pool, { durationSec, connections, rate: fixedRate })), targetRate: fixedRate };
      sent += fixed.requests;
    } finally {
      const stats = await t.stop();
      if (fixed) withStats(fixed, stats, sent);
    }
  }

  const result: IngestBenchFigures = {
    connections,
    durationSec,
    rounds,
    samples: {
      bare: runs.bare.map((r) => r.requestsPerSec),
      express: runs.express.map((r) => r.requestsPerSec),
      service: runs.service.map((r) => r.requestsPerSec),
    },
    bodyBytes: { min: Math.min(...sizes), max: Math.max(...sizes), mean: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) },
    bare,
    express: expressRun,
    service,
    ratios: {
      serviceToExpress: round2(service.requestsPerSec / expressRun.requestsPerSec),
      serviceToBare: round2(service.requestsPerSec / bare.requestsPerSec),
    },
    ...(fixed ? { fixedRate: fixed } : {}),
    journalSync,
    node: process.version,
    cpus: os.cpus().length,
  };
  if (options.print) printFigures(result);
  return result;
}

function printFigures(f: IngestBenchFigures): void {
  const table = new Table({
    head: ['target', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'requests', 'non-2xx', 'errors', 'commits/req', 'loop delay p99/max ms'],
    style: { head: [], border: [] },
  });
  const row = (label: string, r: IngestRun) => [
    label,
    r.requestsPerSec,
    r.p50Ms,
    r.p99Ms,
    r.maxMs,
    r.requests,
    r.non2xx,
    r.errors,
    r.commitsPerRequest ?? '',
    r.loopDelay ? `${r.loopDelay.p99Ms} / ${r.loopDelay.maxMs}` : '',
  ];
  table.push(row('(a) bare node:http', f.bare), row('(b) express + verify + parse', f.express), row(`(c) service (JOURNAL_SYNC=${f.journalSync})`, f.service));
  if (f.fixedRate) table.push(row(`(c) steady ${f.fixedRate.targetRate} req/s, open loop`, f.fixedRate));
  process.stdout.write(
    `\nIngest: ${f.connections} connections, ${f.durationSec} s per run, bodies ${f.bodyBytes.min}-${f.bodyBytes.max} bytes ` +
      `(mean ${f.bodyBytes.mean}), node ${f.node}, ${f.cpus} CPUs (load generator on the same machine)\n${table.toString()}\n` +
      `service / express: ${f.ratios.serviceToExpress}   service / bare: ${f.ratios.serviceToBare}` +
      (f.rounds > 1
        ? `   (medians of ${f.rounds} interleaved rounds; req/s bare ${f.samples.bare.join(', ')}; ` +
          `express ${f.samples.express.join(', ')}; service ${f.samples.service.join(', ')})`
        : '') +
      '\n',
  );
}

function withStats(run: IngestRun, stats: { commits?: number; loopDelayP99Ms?: number; loopDelayMaxMs?: number }, sent: number): void {
  if (stats.commits !== undefined && sent > 0) run.commitsPerRequest = round2(stats.commits / sent);
  if (stats.loopDelayP99Ms !== undefined && stats.loopDelayMaxMs !== undefined) {
    run.loopDelay = { p99Ms: stats.loopDelayP99Ms, maxMs: stats.loopDelayMaxMs };
  }
}

/** The run with the median req/s (the lower middle one for an even count). */
function median(list: IngestRun[]): IngestRun {
  const sorted = [...list].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

// ---------------------------------------------------------------------------------------------
// The targets (run in a child process by `--serve`).

async function serve(target: Target, journalSync: 'full' | 'normal'): Promise<void> {
  const ready = (url: string): void => {
    process.stdout.write(`${JSON.stringify({ msg: 'bench ready', target, url })}\n`);
  };
  const onStop = (stop: () => Promise<void>) => {
    const handler = () => {
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', handler);
    process.once('SIGINT', handler);
  };

  if (target === 'bare') {
    const server = http.createServer((req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        res.writeHead(202, { 'Content-Type': 'application/json' }).end('{"status":"accepted"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onStop(async () => {
      server.close();
    });
    return ready(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  if (target === 'express') {
    const app = express();
    app.disable('x-powered-by');
    app.post('/webhook', express.raw({ type: () => true, limit: 5_242_880 }), async (req, res) => {
      const body = (req.body as Buffer).toString('utf8');
      const signature = req.headers['x-hub-signature-256'];
      if (typeof signature !== 'string' || !(await verify(BENCH_SECRET, body, signature))) {
        res.status(401).json({ error: 'signature does not match' });
        return;
      }
      const payload = JSON.parse(body) as { repository?: unknown };
      res.status(202).json({ status: 'accepted', delivery: req.headers['x-gitea-delivery'], repo: payload.repository ? 1 : 0 });
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onStop(async () => {
      server.close();
    });
    return ready(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  // The real service, with defaults except the port and a temp DATA_DIR; logs go to a file.
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-'));
  const gitea = await SimGitea.start({ botLogin: 'triage-bot' });
  const config = loadConfig({
    GITEA_URL: gitea.url,
    GITEA_TOKEN: gitea.token,
    WEBHOOK_SECRET: BENCH_SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    JOURNAL_SYNC: journalSync,
  });
  const logFile = fs.createWriteStream(path.join(dataDir, 'service.log'));
  const log = createLogger({ level: config.logLevel, format: config.logFormat, stream: logFile, redact: [config.giteaToken, BENCH_SECRET] });
  const noop: Evaluator = { evaluate: async () => ({ added: [], removed: [], note: 'bench' }) };
  const service = await createService({ config, log, evaluator: noop });
  const { url } = await service.listen();
  await service.identified();
  // Where a latency tail comes from: the service's own event loop stalling, or the load generator.
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  onStop(async () => {
    await service.stop();
    loopDelay.disable();
    const ms = (ns: number) => Math.round(ns / 1e5) / 10;
    process.stdout.write(
      `${JSON.stringify({
        msg: 'bench stats',
        commits: service.journal.commitCount,
        loopDelayP99Ms: ms(loopDelay.percentile(99)),
        loopDelayMaxMs: ms(loopDelay.max),
      })}\n`,
    );
    await gitea.close();
    logFile.end();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  ready(url);
}

// ---------------------------------------------------------------------------------------------

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === SELF;
if (isMain) {
  const program = new Command('bench-ingest')
    .description('Ingest throughput and latency: bare node:http vs minimal Express vs the real service.')
    .addOption(new Option('--duration <sec>', 'seconds per measured run').default(10).argParser(Number))
    .addOption(new Option('--warmup <sec>', 'seconds of warm-up before each run').default(2).argParser(Number))
    .addOption(new Option('--connections <n>', 'concurrent connections').default(64).argParser(Number))
    .addOption(new Option('--rate <n>', 'req/s of the fixed-rate run against the service (0: skip)').default(1000).argParser(Number))
    .addOption(new Option('--journal-sync <mode>', "the service's JOURNAL_SYNC").choices(['full', 'normal']).default('full'))
    .addOption(new Option('--rounds <n>', 'closed-loop runs per target, interleaved; the median counts').default(1).argParser(Number))
    .addOption(new Option('--cpu-prof <dir>', "write a CPU profile of the service's measured run into dir"))
    .addOption(new Option('--json', 'print the figures as JSON'))
    .addOption(new Option('--serve <target>', 'internal: run one target').choices(['bare', 'express', 'service']).hideHelp());
  program.parse();
  const o = program.opts<{
    duration: number;
    warmup: number;
    connections: number;
    rate: number;
    journalSync: 'full' | 'normal';
    cpuProf?: string;
    rounds: number;
    json?: boolean;
    serve?: Target;
  }>();
  if (o.serve) {
    await serve(o.serve, o.journalSync);
  } else {
    const result = await runIngestBench({
      durationSec: o.duration,
      warmupSec: o.warmup,
      connections: o.connections,
      fixedRate: o.rate,
      journalSync: o.journalSync,
      print: !o.json,
      ...(o.cpuProf ? { cpuProfDir: o.cpuProf } : {}),
      rounds: o.rounds,
    });
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  }
}
