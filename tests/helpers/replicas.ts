/**
 * N service processes for the replica tests, each talking to the simulated Gitea (its own process,
 * {@link GiteaProcess}) through a port of its own, so every Gitea request is attributed to a replica.
 * Each replica keeps its listen port and DATA_DIR across restarts (the front's upstream list stays
 * valid); it can be killed (SIGKILL), stopped (SIGTERM, exit awaited) and started again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv, TRIAGE_CHILD } from './reliability/crash.js';
import { freePort, spawnTs, type Spawned } from './process.js';
import type { GiteaProcess } from './gitea-process.js';
import { request } from './service.js';
import type { SignedDelivery } from './signing.js';
import { waitFor } from './wait.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ReplicaOptions {
  name: string;
  port: number;
  dataDir: string;
  /** This replica's attributed Gitea URL. */
  giteaUrl: string;
  /** The entry run with `node --import tsx` (default: the real service with the triage evaluator). */
  entry: string;
  args: string[];
  env: Record<string, string>;
}

export class Replica {
  /** Every process this replica ran, the current one last. */
  readonly runs: Spawned[] = [];
  /** How each earlier process ended, in order. */
  readonly exits: ExitStatus[] = [];

  constructor(private readonly options: ReplicaOptions) {}

  get name(): string {
    return this.options.name;
  }
  get port(): number {
    return this.options.port;
  }
  get dataDir(): string {
    return this.options.dataDir;
  }
  get url(): string {
    return `http://127.0.0.1:${this.options.port}`;
  }
  get giteaUrl(): string {
    return this.options.giteaUrl;
  }
  get running(): boolean {
    const child = this.current?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }
  private get current(): Spawned | undefined {
    return this.runs[this.runs.length - 1];
  }

  /** Starts the process and waits until it listens, knows the bot, and `/readyz` answers 200. */
  async start(timeoutMs = 90_000): Promise<void> {
    if (this.running) throw new Error(`replica ${this.name} is running already`);
    const { env, entry, args } = this.options;
    const proc = spawnTs(entry, { ...env, PORT: String(this.port) }, args);
    this.runs.push(proc);
    try {
      await proc.line({ msg: 'child ready' }, timeoutMs);
      await waitFor(async () => (await request(`${this.url}/readyz`)).status === 200, { timeoutMs, what: `${this.name}'s /readyz to answer 200` });
    } catch (error) {
      await this.kill();
      throw new Error(`replica ${this.name} did not start: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** SIGKILL: no chance to finish anything; resolves with the exit status. */
  kill(): Promise<ExitStatus> {
    return this.end('SIGKILL');
  }

  /** SIGTERM (graceful stop) and wait for the process to exit; resolves with its exit status. */
  stop(): Promise<ExitStatus> {
    return this.end('SIGTERM');
  }

  /** stop(), then start(); the exit status of the stop. */
  async restart(): Promise<ExitStatus> {
    const exit = await this.stop();
    await this.start();
    return exit;
  }

  /** stderr of the current (or last) process. */
  stderr(): string {
    return this.current?.stderr() ?? '';
  }

  private async end(signal: NodeJS.Signals): Promise<ExitStatus> {
    const proc = this.current;
    if (!proc) throw new Error(`replica ${this.name} was never started`);
    if (this.running) proc.child.kill(signal);
    const exit = await proc.exited;
    if (this.exits.length < this.runs.length) this.exits.push(exit);
    return exit;
  }
}

export interface ReplicaSetOptions {
  count: number;
  gitea: GiteaProcess;
  /** Default: tests/helpers/reliability/triage-child.ts (the real triage evaluator). */
  entry?: string;
  args?: string[];
  /** Extra environment for every replica (on top of the crash tests' `childEnv`). */
  env?: Record<string, string>;
  /** Extra environment for replica `index` (0-based), e.g. a DATABASE_URL through its own TCP proxy. */
  envFor?: (index: number) => Record<string, string>;
  /** Start them (default true); otherwise call `start()` on each. */
  start?: boolean;
}

export interface ReplicaSet {
  replicas: Replica[];
  /** Listen ports, in replica order: the front's upstreams. */
  ports: number[];
  /** SIGKILL whatever still runs and remove the data directories. */
  close(): Promise<void>;
}

/** Names `r1`…`rN`; each its own DATA_DIR (until the store is shared), port and attributed Gitea URL. */
export async function startReplicas(options: ReplicaSetOptions): Promise<ReplicaSet> {
  const replicas: Replica[] = [];
  for (let i = 0; i < options.count; i++) {
    const name = `r${i + 1}`;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `gt-${name}-`));
    const giteaUrl = await options.gitea.attach(name);
    const env = { ...childEnv(giteaUrl, dataDir, options.env), ...options.envFor?.(i) };
    replicas.push(
      new Replica({ name, port: await freePort(), dataDir, giteaUrl, entry: options.entry ?? TRIAGE_CHILD, args: options.args ?? [], env }),
    );
  }
  const set: ReplicaSet = {
    replicas,
    ports: replicas.map((r) => r.port),
    close: async () => {
      await Promise.all(replicas.map((r) => (r.runs.length > 0 ? r.kill() : undefined)));
      for (const r of replicas) fs.rmSync(r.dataDir, { recursive: true, force: true });
    },
  };
  if (options.start ?? true) {
    try {
      await Promise.all(replicas.map((r) => r.start()));
    } catch (error) {
      await set.close();
      throw error;
    }
  }
  return set;
}

/** One POST of a delivery through the front, and what the sender saw. */
export interface SendOutcome {
  id: string;
  /** 0 when the request failed without an answer (`error` says why). */
  status: number;
  /** `accepted`, `ignored`, `duplicate`… from the answer's JSON. */
  answer?: string;
  error?: string;
}

/** What Gitea counts as delivered: 202 (journaled) or 200 duplicate (journaled before). */
export function acknowledged(o: SendOutcome): boolean {
  return o.status === 202 || (o.status === 200 && o.answer === 'duplicate');
}

async function post(url: string, d: SignedDelivery): Promise<SendOutcome> {
  try {
    const a = await request(`${url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
    const answer = typeof a.json?.status === 'string' ? (a.json.status as string) : undefined;
    return { id: d.id, status: a.status, ...(answer ? { answer } : {}) };
  } catch (error) {
    return { id: d.id, status: 0, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Sends every delivery with at most `concurrency` in flight; outcomes in completion order. */
export async function sendAll(url: string, deliveries: SignedDelivery[], concurrency: number, outcomes: SendOutcome[] = []): Promise<SendOutcome[]> {
  let next = 0;
  const worker = async () => {
    while (next < deliveries.length) outcomes.push(await post(url, deliveries[next++]!));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, deliveries.length) }, worker));
  return outcomes;
}

export interface Stream {
  /** Outcomes so far, in completion order. */
  readonly outcomes: SendOutcome[];
  /** Stops sending, waits for the requests in flight; all outcomes. */
  stop(): Promise<SendOutcome[]>;
}

/**
 * A steady stream: `make(seq)` is posted every `intervalMs` (the pace of a busy Gitea, not a wait for
 * work), with at most `inFlight` requests open, until `stop()`.
 */
export function startStream(url: string, make: (seq: number) => SignedDelivery, options: { intervalMs: number; inFlight: number }): Stream {
  const outcomes: SendOutcome[] = [];
  const open = new Set<Promise<void>>();
  let stopped = false;
  const loop = (async () => {
    for (let seq = 0; !stopped; seq++) {
      if (open.size >= options.inFlight) await Promise.race(open);
      const p: Promise<void> = post(url, make(seq)).then((o) => {
        outcomes.push(o);
        open.delete(p);
      });
      open.add(p);
      await sleep(options.intervalMs);
    }
  })();
  return {
    outcomes,
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all(open);
      return outcomes;
    },
  };
}
