/**
 * The simulated Gitea in a process of its own, for the sweep and scaling runs. A real Gitea runs
 * elsewhere: in the benchmark's process the simulator's HTTP server and routes would share the
 * evaluator's event loop, and the figures would charge Gitea's CPU to the service. The child
 * seeds the same world (`seedWorld`) and answers for its counters over the IPC channel.
 */
import { fileURLToPath } from 'node:url';
import { ChildRpc, type ChildReply, type WithoutId } from '../../src/simgitea/child-rpc.js';
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

export type SimReply = ChildReply<{ url: string; token: string; botLogin: string }>;

export class SimProcess {
  private constructor(private readonly rpc: ChildRpc<SimRequest, { url: string; token: string; botLogin: string }>) {}

  get url(): string {
    return this.rpc.ready.url;
  }
  get token(): string {
    return this.rpc.ready.token;
  }
  get botLogin(): string {
    return this.rpc.ready.botLogin;
  }

  /** Forks `sim-child.ts` (with this process's `--import tsx`) and waits for its server to listen. */
  static async start(options: SimProcessOptions): Promise<SimProcess> {
    return new SimProcess(await ChildRpc.start(fileURLToPath(new URL('./sim-child.ts', import.meta.url)), options));
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

  close(): Promise<void> {
    return this.rpc.close();
  }

  private call(request: WithoutId<SimRequest>): Promise<unknown> {
    return this.rpc.call(request);
  }
}
