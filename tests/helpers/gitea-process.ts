/**
 * The simulated Gitea in a process of its own for the replica tests (a real Gitea runs elsewhere: the
 * test process's event loop stays free for the sender and the front), seeded with the reliability
 * tests' world, with one port per replica so every Gitea request is attributed to the replica that
 * made it. Requests go over the IPC channel; each is answered by a reply with the same id.
 */
import { fileURLToPath } from 'node:url';
import { ChildRpc, type ChildReply, type WithoutId } from '../../src/simgitea/child-rpc.js';
import type { SimFaults, SimStats } from '../../src/simgitea/sim.js';
import { REPO_ROOT } from './process.js';
import type { GateRequest, LabelWrite } from './reliability/gate.js';
import type { Item } from './reliability/world.js';

/** What one replica asked Gitea, in arrival order, and the label writes with their effect. */
export interface GiteaTraffic {
  replica: string;
  requests: GateRequest[];
  labelWrites: LabelWrite[];
}

export type GiteaRequest =
  | { id: number; op: 'seed'; items: number }
  | { id: number; op: 'attach'; name: string }
  | { id: number; op: 'traffic' }
  | { id: number; op: 'labels'; numbers: number[] }
  | { id: number; op: 'setFile'; path: string; content: string }
  | { id: number; op: 'faults'; faults: SimFaults }
  | { id: number; op: 'stats' }
  | { id: number; op: 'close' };

export type GiteaReply = ChildReply<{ url: string }>;

export interface GiteaProcessOptions {
  /** Added to every API request, plus up to `jitterMs` (seeded). */
  latencyMs?: number;
  jitterMs?: number;
  seed?: number;
}

export class GiteaProcess {
  private constructor(private readonly rpc: ChildRpc<GiteaRequest, { url: string }>) {}

  /** The sim itself (no attribution): for the test's own look-ups. */
  get url(): string {
    return this.rpc.ready.url;
  }

  /** Forks tests/helpers/gitea-child.ts under `node --import tsx` and waits for its server to listen. */
  static async start(options: GiteaProcessOptions = {}): Promise<GiteaProcess> {
    const entry = fileURLToPath(new URL('./gitea-child.ts', import.meta.url));
    return new GiteaProcess(await ChildRpc.start(entry, options, { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'] }));
  }

  /** Creates the org repository (once) and `items` more issues and pull requests; returns them. */
  seed(items: number): Promise<Item[]> {
    return this.call({ op: 'seed', items }) as Promise<Item[]>;
  }

  /** A new port in front of the sim whose requests are recorded under `name`; the URL to give as GITEA_URL. */
  attach(name: string): Promise<string> {
    return this.call({ op: 'attach', name }) as Promise<string>;
  }

  /** Every attributed request so far, per replica. */
  traffic(): Promise<GiteaTraffic[]> {
    return this.call({ op: 'traffic' }) as Promise<GiteaTraffic[]>;
  }

  /** Label names of the org repository's issues, by number. */
  labels(numbers: number[]): Promise<Record<number, string[]>> {
    return this.call({ op: 'labels', numbers }) as Promise<Record<number, string[]>>;
  }

  /** Writes a file on the org repository's default branch, silently (the test sends the push delivery itself). */
  async setFile(path: string, content: string): Promise<void> {
    await this.call({ op: 'setFile', path, content });
  }

  async setFaults(faults: SimFaults): Promise<void> {
    await this.call({ op: 'faults', faults });
  }

  stats(): Promise<SimStats> {
    return this.call({ op: 'stats' }) as Promise<SimStats>;
  }

  close(): Promise<void> {
    return this.rpc.close();
  }

  private call(request: WithoutId<GiteaRequest>): Promise<unknown> {
    return this.rpc.call(request);
  }
}

/**
 * Pairs of label writes on one issue by two different replicas whose requests overlapped in time
 * (one arrived at Gitea before the other's answer left): what a shared lease must make impossible.
 */
export function overlappingLabelWrites(traffic: GiteaTraffic[]): { issue: string; a: string; b: string }[] {
  const LABELS = /^\/api\/v1\/repos\/([^/]+\/[^/]+)\/issues\/(\d+)\/labels/;
  const writes = traffic.flatMap((t) =>
    t.requests.flatMap((r) => {
      const m = r.method !== 'GET' ? LABELS.exec(r.url) : null;
      return m ? [{ replica: t.replica, issue: `${m[1]}#${m[2]}`, startMs: r.startMs, endMs: r.endMs }] : [];
    }),
  );
  writes.sort((x, y) => x.startMs - y.startMs);
  const out: { issue: string; a: string; b: string }[] = [];
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i]!;
    for (let j = i + 1; j < writes.length && writes[j]!.startMs < w.endMs; j++) {
      const v = writes[j]!;
      if (v.issue === w.issue && v.replica !== w.replica) out.push({ issue: w.issue, a: w.replica, b: v.replica });
    }
  }
  return out;
}
