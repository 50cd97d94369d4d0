/**
 * The simulated Gitea in a process of its own, for the sweep and scaling runs. A real Gitea runs
 * elsewhere: in the benchmark's process the simulator's HTTP server and routes would share the
 * evaluator's event loop, and the figures would charge Gitea's CPU to the service. The child
 * seeds the same world (`seedWorld`) and answers for its counters over the IPC channel.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimStats } from '../../src/simgitea/sim.js';

export interface SimProcessOptions {
  latencyMs: number;
  jitterMs: number;
  seed: number;
}

export interface SeededWorld {
  repos: string[];
  issues: { owner: string; repo: string; number: number; title: string }[];
}

/** Messages to the child, each answered by a reply with the same id. */
export type SimRequest =
  | { id: number; op: 'seed'; repos: number; issuesPerRepo: number }
  | { id: number; op: 'stats' }
  | { id: number; op: 'reset' }
  | { id: number; op: 'close' };

/** A request as the parent writes it: `call` adds the id. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export type SimReply =
  | { op: 'ready'; url: string; token: string; botLogin: string }
  | { id: number; ok: true; value?: unknown }
  | { id: number; ok: false; error: string };

export class SimProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private exited: Error | undefined;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly botLogin: string,
  ) {
    child.on('message', (m: SimReply) => {
      if (!('id' in m)) return;
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.value);
      else w?.reject(new Error(`simulated Gitea: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = new Error(`simulated Gitea exited (${signal ?? `code ${code}`})`);
      for (const w of this.waiting.values()) w.reject(this.exited);
      this.waiting.clear();
    });
  }

  /** Forks `sim-child.ts` (with this process's `--import tsx`) and waits for its server to listen. */
  static async start(options: SimProcessOptions): Promise<SimProcess> {
    const child = fork(fileURLToPath(new URL('./sim-child.ts', import.meta.url)), [JSON.stringify(options)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<Extract<SimReply, { op: 'ready' }>>((resolve, reject) => {
      child.once('message', (m: SimReply) => ('op' in m && m.op === 'ready' ? resolve(m) : reject(new Error('simulated Gitea: unexpected first message'))));
      child.once('exit', (code, signal) => reject(new Error(`simulated Gitea exited before listening (${signal ?? `code ${code}`})`)));
    });
    return new SimProcess(child, ready.url, ready.token, ready.botLogin);
  }

  seed(repos: number, issuesPerRepo: number): Promise<SeededWorld> {
    return this.call({ op: 'seed', repos, issuesPerRepo }) as Promise<SeededWorld>;
  }

  stats(): Promise<SimStats> {
    return this.call({ op: 'stats' }) as Promise<SimStats>;
  }

  async resetStats(): Promise<void> {
    await this.call({ op: 'reset' });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.call({ op: 'close' }).catch(() => undefined);
    await gone;
  }

  private call(request: WithoutId<SimRequest>): Promise<unknown> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ ...request, id });
    });
  }
}
