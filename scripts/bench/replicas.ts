/**
 * Replicas: the service on SQLite (one process) and on PostgreSQL with 1, 2 and 3 replicas, each run
 * as `node dist/main.js` against the simulated Gitea in its own process, the load split round-robin
 * over the replicas by the client itself (no front: its CPU would be charged to the figures).
 *   1. ingest + drain: a burst of `deliveries` signed deliveries sent as fast as acknowledged
 *      (autocannon, the URLs alternating per connection); ack req/s, p50/p99, and the time until the
 *      journal has nothing pending (Gitea at `latencyMs`: the drain is latency-bound); label writes
 *      per delivery.
 *   2. adoption: another burst, one replica SIGKILLed halfway through it; the time from the kill to
 *      the last delivery that replica had acknowledged being evaluated (by another replica, or, with
 *      one process, by the same one restarted at once).
 */
import { type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { makeDelivery } from '../../src/simgitea/webhooks.js';
import { freePort, startService, until } from './burst.js';
import { SimProcess } from './sim-process.js';
import { editedPayload, loadFixtureBody } from './world.js';

export interface ReplicaSetup {
  label: string;
  backend: 'sqlite' | 'postgres';
  replicas: number;
  /** The replicas' CONCURRENCY (default the service's). */
  concurrency?: number;
  /** Deliveries of the burst (default the bench's `deliveries`). */
  deliveries?: number;
  /** Run the SIGKILL part (default true). */
  withAdoption?: boolean;
}

export interface AdoptionFigures {
  /** How the victim's work was finished: by the others, or by the same process restarted. */
  by: 'others' | 'restart';
  sent: number;
  ackedByVictim: number;
  /** Of those, still not done when it was killed. */
  pendingAtKill: number;
  /** From the SIGKILL to the last of the victim's acknowledged deliveries done. */
  killToLastMs: number;
}

export interface ReplicaFigures extends ReplicaSetup {
  deliveries: number;
  issues: number;
  ackPerSec: number;
  ackP50Ms: number;
  ackP99Ms: number;
  non2xx: number;
  sendMs: number;
  drainMs: number;
  labelWrites: number;
  giteaRequests: number;
  writesPerDelivery: number;
  /** The service processes' CPU time (user + system) over the burst until drained, summed. */
  serviceCpuMs: number;
  /** PostgreSQL's server processes' CPU time over the same span (0 for SQLite). */
  postgresCpuMs: number;
  /** This process's CPU (the load generator and its probes) over the same span. */
  clientCpuMs: number;
  /** Share of the machine's CPU time busy over the span, all processes (other jobs included). */
  machineBusy: number;
  adoption?: AdoptionFigures;
}

export interface ReplicaBenchOptions {
  setups: ReplicaSetup[];
  deliveries: number;
  adoptionDeliveries: number;
  repos: number;
  issuesPerRepo: number;
  latencyMs: number;
  jitterMs: number;
  connections: number;
  entry: string;
  /** PostgreSQL for the runs that need it (each run its own schema, dropped after). */
  databaseUrl: string;
  /** Environment for every replica on top of the bench's (e.g. LEASE_TTL_MS). */
  env?: Record<string, string>;
}

const SECRET = 'bench-replicas-secret';

/** Reads the journal's pending count and finish times from outside, whichever backend holds it. */
interface JournalProbe {
  pending(): Promise<number>;
  finishedAt(ids: string[]): Promise<(number | null)[]>;
  close(): Promise<void>;
}

function sqliteProbe(dataDir: string): JournalProbe {
  let db: Database.Database | undefined;
  const open = () => (db ??= new Database(path.join(dataDir, 'journal.db'), { readonly: true, fileMustExist: true }));
  return {
    pending: async () => (open().prepare("SELECT count(*) AS n FROM deliveries WHERE state = 'pending'").get() as { n: number }).n,
    finishedAt: async (ids) => {
      const one = open().prepare<[string], { finished_at: number | null }>('SELECT finished_at FROM deliveries WHERE id = ?');
      return ids.map((id) => one.get(id)?.finished_at ?? null);
    },
    close: async () => {
      db?.close();
    },
  };
}

function postgresProbe(pool: pg.Pool, schema: string): JournalProbe {
  const t = `"${schema}".deliveries`;
  return {
    pending: async () => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE state = 'pending'`)).rows[0]!.n),
    finishedAt: async (ids) => {
      const { rows } = await pool.query<{ id: string; finished_at: string | null }>(`SELECT id, finished_at FROM ${t} WHERE id = ANY($1)`, [ids]);
      const m = new Map(rows.map((r) => [r.id, r.finished_at === null ? null : Number(r.finished_at)]));
      return ids.map((id) => m.get(id) ?? null);
    },
    close: async () => undefined,
  };
}

/** user + system CPU ms of a running process, from Linux's /proc (clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU ms of every `postgres` process (the server and its backends), ended backends included (the postmaster's cutime). */
function postgresCpuMs(): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const f = stat.split(') ')[1]!.split(' ');
      total += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/** Busy and total jiffies of the whole machine (/proc/stat's first line). */
function machineTicks(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

interface Node {
  port: number;
  url: string;
  env: Record<string, string>;
  child?: ChildProcess;
}

async function startNode(node: Node, entry: string): Promise<void> {
  node.child = startService(entry, node.env).child;
  await until(async () => (await fetch(`${node.url}/readyz`).catch(() => undefined))?.status === 200, 30_000, `replica on ${node.port} ready`);
}

async function stopNode(node: Node, signal: NodeJS.Signals): Promise<void> {
  const child = node.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await gone;
}

type Signed = { id: string; headers: Record<string, string>; body: string };

/** `count` signed `issues edited` deliveries round the issues, `updated_at` growing from `from`. */
function deliveriesFor(world: { issues: { owner: string; repo: string; number: number; title: string }[] }, count: number, from: number): Signed[] {
  const template = loadFixtureBody('issues-edited.json');
  const base = Date.parse('2026-03-02T10:00:00Z');
  return Array.from({ length: count }, (_, i) => {
    const target = world.issues[(from + i) % world.issues.length]!;
    const payload = editedPayload(template, target, new Date(base + (from + i) * 1000).toISOString().replace('.000', ''));
    const d = makeDelivery('issues', 'issues', payload, { secret: SECRET });
    return { id: d.headers['X-Gitea-Delivery']!, headers: d.headers, body: d.body };
  });
}

/**
 * Sends `deliveries` over the live nodes round-robin, 32 at a time; kills `victim` (SIGKILL) once half
 * were acknowledged; a try cut by the kill goes to the next live node. Returns what the victim acknowledged.
 */
async function killBurst(nodes: Node[], victim: Node, deliveries: Signed[]): Promise<{ ackedByVictim: string[]; killedAt: number }> {
  const ackedByVictim: string[] = [];
  let acked = 0;
  let killedAt = 0;
  let next = 0;
  let turn = 0;
  const live = () => nodes.filter((n) => n !== victim || killedAt === 0);
  const send = async (d: Signed) => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const pool = live();
      const node = pool[turn++ % pool.length]!;
      const res = await fetch(`${node.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body }).catch(() => undefined);
      await res?.arrayBuffer();
      if (res && (res.status === 202 || res.status === 200)) {
        if (node === victim && killedAt === 0) ackedByVictim.push(d.id);
        if (++acked === Math.floor(deliveries.length / 2)) {
          killedAt = Date.now();
          victim.child?.kill('SIGKILL');
        }
        return;
      }
    }
    throw new Error(`delivery ${d.id} refused by every replica ten times`);
  };
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < deliveries.length) await send(deliveries[next++]!);
    }),
  );
  return { ackedByVictim, killedAt };
}

async function runSetup(setup: ReplicaSetup, o: ReplicaBenchOptions, admin: pg.Pool | undefined): Promise<ReplicaFigures> {
  const sim = await SimProcess.start({ latencyMs: o.latencyMs, jitterMs: o.jitterMs, seed: 17 });
  const dirs: string[] = [];
  const schema = `bench_replicas_${process.pid}_${setup.replicas}_${Date.now().toString(36)}`;
  const nodes: Node[] = [];
  let probe: JournalProbe | undefined;
  try {
    const world = await sim.seed(o.repos, o.issuesPerRepo);
    for (let i = 0; i < setup.replicas; i++) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-bench-replicas-'));
      dirs.push(dataDir);
      const port = await freePort();
      const env: Record<string, string> = {
        GITEA_URL: sim.url,
        GITEA_TOKEN: sim.token,
        WEBHOOK_SECRET: SECRET,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: dataDir,
        LOG_LEVEL: 'warn',
        ...(setup.backend === 'postgres' ? { DATABASE_URL: o.databaseUrl, DATABASE_SCHEMA: schema } : {}),
        ...(setup.concurrency !== undefined ? { CONCURRENCY: String(setup.concurrency) } : {}),
        ...o.env,
      };
      nodes.push({ port, url: `http://127.0.0.1:${port}`, env });
    }
    await Promise.all(nodes.map((n) => startNode(n, o.entry)));
    probe = setup.backend === 'postgres' ? postgresProbe(admin!, schema) : sqliteProbe(dirs[0]!);
    const burst = deliveriesFor(world, setup.deliveries ?? o.deliveries, 0);
    await sim.resetStats();
    const cpu0 = nodes.reduce((n, x) => n + cpuMs(x.child?.pid), 0);
    const pg0 = setup.backend === 'postgres' ? postgresCpuMs() : 0;
    const client0 = process.cpuUsage();
    const m0 = machineTicks();
    let i = 0;
    const t0 = performance.now();
    const result = await autocannon({
      url: nodes.map((n) => n.url),
      connections: o.connections,
      amount: burst.length,
      requests: [
        {
          method: 'POST',
          path: '/webhook',
          setupRequest: (req: any) => {
            const d = burst[i++ % burst.length]!;
            return { ...req, headers: d.headers, body: d.body };
          },
        },
      ],
    } as unknown as autocannon.Options); // autocannon takes several URLs (connection i → url i mod n); its types say one
    const sendMs = performance.now() - t0;
    const p = probe;
    await until(async () => (await p.pending()) === 0, 600_000, `${setup.label}: journal drained`);
    const drainMs = performance.now() - t0;
    const serviceCpuMs = nodes.reduce((n, x) => n + cpuMs(x.child?.pid), 0) - cpu0;
    const postgresCpu = setup.backend === 'postgres' ? postgresCpuMs() - pg0 : 0;
    const client = process.cpuUsage(client0);
    const m1 = machineTicks();
    const stats = await sim.stats();
    const adoption = setup.withAdoption === false ? undefined : await adoptionRun(nodes, o, world, p);
    return {
      ...setup,
      deliveries: burst.length,
      issues: world.issues.length,
      // autocannon's own average is over whole seconds (a 6.1 s run averages 6 buckets): count instead.
      ackPerSec: (burst.length - result.non2xx) / (sendMs / 1000),
      ackP50Ms: result.latency.p50,
      ackP99Ms: result.latency.p99,
      non2xx: result.non2xx,
      sendMs,
      drainMs,
      labelWrites: stats.labelWrites,
      giteaRequests: stats.requests,
      writesPerDelivery: stats.labelWrites / burst.length,
      serviceCpuMs,
      postgresCpuMs: postgresCpu,
      clientCpuMs: (client.user + client.system) / 1000,
      machineBusy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
      ...(adoption ? { adoption } : {}),
    };
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGTERM')));
    await probe?.close();
    await sim.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    if (setup.backend === 'postgres') await admin!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
}

/** The adoption part of a setup: a burst, the first replica SIGKILLed halfway (restarted at once when alone). */
async function adoptionRun(nodes: Node[], o: ReplicaBenchOptions, world: Parameters<typeof deliveriesFor>[0], probe: JournalProbe): Promise<AdoptionFigures> {
  const victim = nodes[0]!;
  const alone = nodes.length === 1;
  const deliveries = deliveriesFor(world, o.adoptionDeliveries, o.deliveries);
  const { ackedByVictim, killedAt } = alone ? await killAlone(victim, deliveries) : await killBurst(nodes, victim, deliveries);
  const stillPending = (await probe.finishedAt(ackedByVictim)).filter((f) => f === null || f > killedAt).length;
  if (alone) await startNode(victim, o.entry);
  await until(async () => (await probe.pending()) === 0, 600_000, 'the adoption burst drained');
  const finished = (await probe.finishedAt(ackedByVictim)).map((f) => f ?? Infinity);
  if (!alone) await startNode(victim, o.entry); // back for a clean stop
  return {
    by: alone ? 'restart' : 'others',
    sent: deliveries.length,
    ackedByVictim: ackedByVictim.length,
    pendingAtKill: stillPending,
    killToLastMs: Math.max(0, ...finished) - killedAt,
  };
}

/** One process: send until half are acknowledged, SIGKILL it; the rest is not sent. */
async function killAlone(victim: Node, deliveries: Signed[]): Promise<{ ackedByVictim: string[]; killedAt: number }> {
  const half = deliveries.slice(0, Math.floor(deliveries.length / 2));
  const acked: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < half.length) {
        const d = half[next++]!;
        const res = await fetch(`${victim.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
        await res.arrayBuffer();
        if (res.status === 202) acked.push(d.id);
      }
    }),
  );
  const killedAt = Date.now();
  await stopNode(victim, 'SIGKILL');
  return { ackedByVictim: acked, killedAt };
}

export async function runReplicaBench(o: ReplicaBenchOptions): Promise<ReplicaFigures[]> {
  const needsPg = o.setups.some((s) => s.backend === 'postgres');
  const admin = needsPg ? new pg.Pool({ connectionString: o.databaseUrl, max: 2 }) : undefined;
  try {
    if (admin) await admin.query('SELECT 1').catch((e: Error) => Promise.reject(new Error(`replicas: PostgreSQL at DATABASE_URL unreachable: ${e.message}`)));
    const out: ReplicaFigures[] = [];
    for (const setup of o.setups) {
      console.log(`replicas: ${setup.label}…`);
      out.push(await runSetup(setup, o, admin));
    }
    return out;
  } finally {
    await admin?.end();
  }
}
