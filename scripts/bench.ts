/**
 * `npm run bench`: every figure of the Performance section in one run, against the simulated Gitea.
 *   1. sweep    — 1,000 open issues over 10 repos, the linear loop against the default configuration
 *   2. burst    — 5,000 deliveries over 500 issues in 20 repos from a 64-connection client
 *   3. scaling  — drain time of a fixed backlog at CONCURRENCY 1…32 beside the latency bound (SVG chart)
 *   4. ingest   — the receiver against a bare node:http server and a minimal Express app
 *   5. latency  — time from a delivery's 202 to its label write, at a steady 20 and 100 deliveries/s
 *   6. replicas — SQLite (one process) and PostgreSQL with 1, 2, 3 replicas: ingest, drain of a 5,000-delivery
 *                 burst, writes per delivery, adoption after a SIGKILL (not in the default set: needs PostgreSQL)
 * Prints tables; writes bench-results/bench-<time>.json, bench-results/latest.json and scaling.svg.
 * Figures come from here, never from timed assertions in tests. The machine is shared: compare ratios
 * within one run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { Command, Option } from 'commander';
import { runBurst, type BurstFigures } from './bench/burst.js';
import { lineChartSvg } from './bench/chart.js';
import { runLatency } from './bench/latency.js';
import { runReplicaBench, type ReplicaFigures } from './bench/replicas.js';
import { LINEAR_ENV, runSweep, type SweepFigures } from './bench/sweep.js';
import { runIngestBench } from './bench-ingest.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const program = new Command('bench')
  .description('Benchmark gitea-triage against the simulated Gitea (sweep, burst, scaling, ingest).')
  .addOption(new Option('--latency <ms>', 'simulated Gitea latency per request').default(20).argParser(Number))
  .addOption(new Option('--jitter <ms>', 'extra random latency, uniform in [0, jitter]').default(10).argParser(Number))
  .addOption(new Option('--only <parts>', 'comma list of sweep,burst,scaling,ingest,latency,replicas').default('sweep,burst,scaling,ingest,latency'))
  .addOption(new Option('--setups <list>', 'replicas: comma list of sqlite,pg1,pg2,pg3').default('sqlite,pg1,pg2,pg3'))
  .addOption(
    new Option('--database-url <url>', 'replicas: the PostgreSQL to use (a schema per run, dropped after)').default(
      process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    ),
  )
  .addOption(new Option('--rates <list>', 'latency: deliveries per second, comma list').default('20,100'))
  .addOption(new Option('--seconds <s>', 'latency: how long each rate is held').default(10).argParser(Number))
  .addOption(new Option('--concurrency <n>', "latency: the service's CONCURRENCY (default: the service's default)").argParser(Number))
  .addOption(new Option('--quick', 'a smaller run (for trying the script), not the published figures'))
  .addOption(new Option('--out <dir>', 'where the JSON and the chart go').default(path.join(root, 'bench-results')));
program.parse();
const opts = program.opts<{
  latency: number;
  jitter: number;
  only: string;
  rates: string;
  seconds: number;
  concurrency?: number;
  quick?: boolean;
  out: string;
  databaseUrl: string;
  setups: string;
}>();
const parts = new Set(opts.only.split(',').map((s) => s.trim()));
const q = opts.quick === true;

const results: Record<string, unknown> = {
  when: new Date().toISOString(),
  machine: { cpus: os.cpus().length, node: process.version },
  latencyMs: opts.latency,
  jitterMs: opts.jitter,
  quick: q,
};
const ms = (v: number) => `${(v / 1000).toFixed(2)} s`;
const n1 = (v: number) => v.toFixed(1);
const n2 = (v: number) => v.toFixed(2);

function printTable(title: string, head: string[], rows: (string | number)[][]) {
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const r of rows) t.push(r.map(String));
  console.log(`\n${title}\n${t.toString()}`);
}

async function sweep() {
  const repos = 10;
  const perRepo = q ? 10 : 100;
  const common = { repos, issuesPerRepo: perRepo, latencyMs: opts.latency, jitterMs: opts.jitter };
  const linear = await runSweep({ ...common, mode: 'linear', env: LINEAR_ENV });
  const pipeline = await runSweep({ ...common, mode: 'default', env: {} });
  const rows = [linear, pipeline].map((f: SweepFigures) => [
    f.mode,
    f.issues,
    f.concurrency,
    ms(f.wallMs),
    f.requests,
    f.labelWrites,
    n2(f.otherRequests / f.issues),
    n2(f.requestsPerIssue),
    n2(f.floor.perIssue),
    n2(f.floorRatio),
    ms(f.cpuMs),
    f.connections,
    f.failed,
  ]);
  printTable(
    `Sweep: ${linear.issues} open issues over ${repos} repos, Gitea latency ${opts.latency} ms + up to ${opts.jitter} ms`,
    ['mode', 'issues', 'concurrency', 'wall', 'requests', 'label writes', 'other req/issue', 'req/issue', 'floor/issue', '÷ floor', 'CPU', 'TCP conns', 'failed'],
    rows,
  );
  const f = pipeline.floor;
  console.log(
    `floor = listing pages ${f.listingPages} + context ${f.context} + label writes ${f.writes} + file pages ${f.filePages} = ${f.total} requests ` +
      `(${n2(f.perIssue)}/issue); default: ${n2(pipeline.floorRatio)}× the floor (target ≤ 1.10)`,
  );
  const speedup = linear.wallMs / pipeline.wallMs;
  console.log(
    `default is ${n1(speedup)}× faster than linear (target ≥ 25); ${n1(linear.connections / Math.max(1, pipeline.connections))}× fewer connections`,
  );
  console.log(`load average (1, 5, 15 min) at the end: ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')} on ${os.cpus().length} CPUs`);
  results.sweep = { linear, default: pipeline, speedup, loadAverage: os.loadavg() };
}

let built = false;
/** Builds dist/ once per run: the burst and latency parts run the service as `node dist/main.js`, as in production. */
function buildEntry(): string {
  const entry = path.join(root, 'dist', 'main.js');
  if (built) return entry;
  console.log('\nbuilding dist/ (the service runs as `node dist/main.js`, as in production)…');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  built = true;
  return entry;
}

async function burst() {
  const entry = buildEntry();
  const f: BurstFigures = await runBurst({
    deliveries: q ? 1000 : 5000,
    repos: 20,
    issuesPerRepo: q ? 10 : 25,
    latencyMs: opts.latency,
    jitterMs: opts.jitter,
    connections: 64,
    entry,
  });
  printTable(
    `Burst: ${f.deliveries} deliveries over ${f.issues} issues in ${f.repos} repos, 64 connections, as fast as acknowledged`,
    ['ack req/s', 'ack p50', 'ack p99', 'non-2xx', 'sent in', 'drained in', 'label writes', 'writes/delivery', 'Gitea requests', 'peak RSS'],
    [[n1(f.ackPerSec), `${f.ackP50Ms} ms`, `${f.ackP99Ms} ms`, f.non2xx, ms(f.sendMs), ms(f.drainMs), f.labelWrites, n2(f.labelWritesPerDelivery), f.giteaRequests, `${n1(f.peakRssMb)} MB`]],
  );
  results.burst = f;
}

async function scaling() {
  const levels = [1, 2, 4, 8, 16, 32];
  const figures: SweepFigures[] = [];
  for (const c of levels) {
    figures.push(
      await runSweep({
        mode: `c=${c}`,
        repos: 10,
        issuesPerRepo: q ? 10 : 30,
        latencyMs: opts.latency,
        jitterMs: opts.jitter,
        env: { CONCURRENCY: String(c), GITEA_MAX_SOCKETS: String(Math.max(16, c)) },
      }),
    );
  }
  printTable(
    `Scaling: drain time of ${figures[0]!.issues} issues by CONCURRENCY; bound = requests × mean latency ÷ concurrency`,
    ['concurrency', 'drain', 'bound', 'drain ÷ bound', 'requests', 'TCP conns'],
    figures.map((f) => [f.concurrency, ms(f.wallMs), ms(f.boundMs), f.boundMs > 0 ? n2(f.wallMs / f.boundMs) : '-', f.requests, f.connections]),
  );
  const svg = lineChartSvg(
    `Drain time of ${figures[0]!.issues} issues, Gitea latency ${opts.latency} ms (+≤${opts.jitter})`,
    'CONCURRENCY (evaluators at once)',
    'seconds',
    [
      { name: 'measured', color: '#c0392b', points: figures.map((f) => ({ x: f.concurrency, y: f.wallMs / 1000 })) },
      { name: 'latency bound', color: '#2c3e50', dashed: true, points: figures.map((f) => ({ x: f.concurrency, y: f.boundMs / 1000 })) },
    ],
  );
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'scaling.svg'), svg);
  console.log(`chart: ${path.relative(process.cwd(), path.join(opts.out, 'scaling.svg'))}`);
  results.scaling = figures;
}

async function latency() {
  const rates = opts.rates.split(',').map((r) => Number(r.trim()));
  if (rates.some((r) => !(r > 0))) throw new Error(`--rates: not a list of positive numbers: ${opts.rates}`);
  const figures = await runLatency({
    rates,
    seconds: q ? Math.min(3, opts.seconds) : opts.seconds,
    repos: 10,
    latencyMs: opts.latency,
    jitterMs: opts.jitter,
    entry: buildEntry(),
    ...(opts.concurrency !== undefined
      ? { env: { CONCURRENCY: String(opts.concurrency), GITEA_MAX_SOCKETS: String(Math.max(16, opts.concurrency)) } }
      : {}),
  });
  const f0 = figures[0]!;
  const load = os.loadavg().map((v) => v.toFixed(1)).join(' / ');
  printTable(
    `Time to label: from a delivery's 202 to its label write, steady rate, each delivery a new issue, CONCURRENCY ${f0.concurrency}; ` +
      `Gitea latency ${opts.latency} ms + up to ${opts.jitter} ms; ` +
      `target p99 ≤ BATCH_WINDOW_MS ${f0.windowMs} + 3 round trips of ${f0.roundTripMs} ms = ${f0.targetMs} ms`,
    ['deliveries/s', 'deliveries', 'labelled', 'p50', 'p99', 'max', 'target (p99)', 'met', 'send lag max', 'service CPU/delivery'],
    figures.map((f) => [
      f.rate,
      f.deliveries,
      f.labelled,
      `${Math.round(f.p50Ms)} ms`,
      `${Math.round(f.p99Ms)} ms`,
      `${Math.round(f.maxMs)} ms`,
      `${f.targetMs} ms`,
      f.p99Ms <= f.targetMs ? 'yes' : 'no',
      `${Math.round(f.sendLagMaxMs)} ms`,
      `${n1(f.serviceCpuMsPerDelivery)} ms`,
    ]),
  );
  console.log(`load average (1, 5, 15 min) at the end: ${load} on ${os.cpus().length} CPUs (the machine is shared: a load above the CPU count slows every process)`);
  results.latency = { figures, loadAverage: os.loadavg() };
}

async function ingest() {
  const figures = await runIngestBench({ durationSec: q ? 3 : 10, print: true });
  results.ingest = figures;
}

async function replicas() {
  const known = {
    sqlite: { label: 'SQLite, 1 process', backend: 'sqlite' as const, replicas: 1 },
    pg1: { label: 'PostgreSQL, 1 replica', backend: 'postgres' as const, replicas: 1 },
    pg2: { label: 'PostgreSQL, 2 replicas', backend: 'postgres' as const, replicas: 2 },
    pg3: { label: 'PostgreSQL, 3 replicas', backend: 'postgres' as const, replicas: 3 },
  };
  const setups = opts.setups.split(',').map((name) => {
    const setup = known[name.trim() as keyof typeof known];
    if (!setup) throw new Error(`--setups: unknown setup ${JSON.stringify(name)} (sqlite, pg1, pg2, pg3)`);
    return setup;
  });
  // The adoption target is against the lease expiry the replicas run with (the service's default).
  const { loadConfig } = await import('../src/config/config.js');
  const leaseTtlMs = loadConfig({ GITEA_URL: 'http://127.0.0.1:1', GITEA_TOKEN: 'x', WEBHOOK_SECRET: 'x' }).leaseTtlMs;
  const figures = await runReplicaBench({
    setups,
    deliveries: q ? 1000 : 5000,
    adoptionDeliveries: q ? 400 : 2000,
    repos: 20,
    issuesPerRepo: 25,
    latencyMs: opts.latency,
    jitterMs: opts.jitter,
    connections: 48,
    entry: buildEntry(),
    databaseUrl: opts.databaseUrl,
  });
  // Latency-bound: one delivery per issue (nothing to coalesce), CONCURRENCY 2 per replica, so that
  // Gitea's latency, not the two shared cores, sets the drain rate of one replica.
  const issues = 20 * 25;
  const bound = setups
    .filter((s) => s.backend === 'postgres' && s.replicas !== 2)
    .map((s) => ({ ...s, label: `${s.label}, CONCURRENCY 2`, concurrency: 2, deliveries: issues, withAdoption: false }));
  const boundFigures = await runReplicaBench({
    setups: bound,
    deliveries: issues,
    adoptionDeliveries: 0,
    repos: 20,
    issuesPerRepo: 25,
    latencyMs: opts.latency,
    jitterMs: opts.jitter,
    connections: 48,
    entry: buildEntry(),
    databaseUrl: opts.databaseUrl,
  });
  printReplicaTables(figures, leaseTtlMs, boundFigures);
  console.log(`load average (1, 5, 15 min) at the end: ${os.loadavg().map((v) => v.toFixed(1)).join(' / ')} on ${os.cpus().length} CPUs`);
  results.replicas = { figures, latencyBound: boundFigures, leaseTtlMs, loadAverage: os.loadavg() };
}

const drainRate = (f: ReplicaFigures) => f.deliveries / (f.drainMs / 1000);

function printReplicaTables(figures: ReplicaFigures[], leaseTtlMs: number, bound: ReplicaFigures[]) {
  const f0 = figures[0]!;
  const sqlite = figures.find((f) => f.backend === 'sqlite');
  const pg1 = figures.find((f) => f.backend === 'postgres' && f.replicas === 1);
  const pg3 = figures.find((f) => f.backend === 'postgres' && f.replicas === 3);
  printTable(
    `Replicas: ${f0.deliveries} deliveries over ${f0.issues} issues, round-robin over the replicas, 48 connections; Gitea ${opts.latency} ms + up to ${opts.jitter} ms`,
    ['setup', 'ack req/s', 'ack p50', 'ack p99', 'non-2xx', 'sent in', 'drained in', 'drain/s', 'writes/delivery', 'CPU: service / PostgreSQL / client', 'machine busy'],
    figures.map((f) => [
      f.label,
      n1(f.ackPerSec),
      `${f.ackP50Ms} ms`,
      `${f.ackP99Ms} ms`,
      f.non2xx,
      ms(f.sendMs),
      ms(f.drainMs),
      n1(drainRate(f)),
      n2(f.writesPerDelivery),
      `${ms(f.serviceCpuMs)} / ${ms(f.postgresCpuMs)} / ${ms(f.clientCpuMs)}`,
      `${Math.round(f.machineBusy * 100)} %`,
    ]),
  );
  const target = leaseTtlMs + 5000;
  printTable(
    `Adoption: ${f0.adoption?.sent ?? 0} more deliveries, the first replica SIGKILLed once half were acknowledged; target kill → last of its deliveries evaluated ≤ LEASE_TTL_MS ${leaseTtlMs / 1000} s + 5 s`,
    ['setup', 'finished by', 'acked by the killed one', 'of them pending at the kill', 'kill → last evaluated', 'target', 'met'],
    figures.flatMap((f) =>
      f.adoption
        ? [
            [
              f.label,
              f.adoption.by === 'others' ? 'the other replicas' : 'itself, restarted at once',
              f.adoption.ackedByVictim,
              f.adoption.pendingAtKill,
              ms(f.adoption.killToLastMs),
              ms(target),
              f.adoption.killToLastMs <= target ? 'yes' : 'no',
            ],
          ]
        : [],
    ),
  );
  printReplicaDrain(bound);
  if (sqlite && pg1) {
    const r = pg1.ackPerSec / sqlite.ackPerSec;
    console.log(`PostgreSQL 1 replica ingests at ${(r * 100).toFixed(0)} % of SQLite's rate (target ≥ 60 %): ${r >= 0.6 ? 'met' : 'NOT met'}`);
  }
  if (pg1 && pg3) {
    const r = drainRate(pg3) / drainRate(pg1);
    console.log(`the 5,000-delivery burst: 3 replicas drain at ${n2(r)}× one replica's rate (CPU-bound on this machine: see "machine busy")`);
  }
}

function printReplicaDrain(bound: ReplicaFigures[]) {
  if (bound.length === 0) return;
  printTable(
    `Latency-bound drain: ${bound[0]!.deliveries} deliveries, one per issue, CONCURRENCY 2 per replica, Gitea ${opts.latency} ms + up to ${opts.jitter} ms`,
    ['setup', 'drained in', 'drain/s', 'Gitea requests / delivery', 'CPU: service / PostgreSQL / client', 'machine busy'],
    bound.map((f) => [
      f.label,
      ms(f.drainMs),
      n1(drainRate(f)),
      n2(f.giteaRequests / f.deliveries),
      `${ms(f.serviceCpuMs)} / ${ms(f.postgresCpuMs)} / ${ms(f.clientCpuMs)}`,
      `${Math.round(f.machineBusy * 100)} %`,
    ]),
  );
  const one = bound.find((f) => f.replicas === 1);
  const three = bound.find((f) => f.replicas === 3);
  if (one && three) {
    const r = drainRate(three) / drainRate(one);
    console.log(`latency-bound: 3 replicas drain at ${n2(r)}× one replica's rate (target ≥ 2.5×): ${r >= 2.5 ? 'met' : 'NOT met'}`);
  }
}

const started = Date.now();
for (const [name, run] of [
  ['sweep', sweep],
  ['burst', burst],
  ['scaling', scaling],
  ['ingest', ingest],
  ['latency', latency],
  ['replicas', replicas],
] as const) {
  if (parts.has(name)) await run();
}
results.totalSeconds = (Date.now() - started) / 1000;
fs.mkdirSync(opts.out, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const json = JSON.stringify(results, null, 2);
fs.writeFileSync(path.join(opts.out, `bench-${stamp}.json`), json);
fs.writeFileSync(path.join(opts.out, 'latest.json'), json);
console.log(`\nwrote ${path.relative(process.cwd(), path.join(opts.out, 'latest.json'))} (${n1(results.totalSeconds as number)} s in all)`);
