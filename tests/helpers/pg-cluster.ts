/**
 * Three (or N) service processes on one PostgreSQL schema behind the round-robin front, the simulated
 * Gitea in its own process with one attributed port per replica: the setting of the replica tests.
 * Also the skip rule every PostgreSQL test file follows (tests/helpers/postgres.ts).
 */
import { describe, it } from '@jest/globals';
import { GiteaProcess } from './gitea-process.js';
import { startFront, type Front } from './lb/index.js';
import { dropSchemas, POSTGRES_REQUIRED, postgresUnavailable, skipLine, TEST_DATABASE_URL, testSchemaName } from './postgres.js';
import type { Item } from './reliability/world.js';
import { startReplicas, type ReplicaSet } from './replicas.js';
import { openStoreView, type StoreView } from './store-view.js';

/**
 * Lease and sweep settings of the replica tests: short, so an adoption after a SIGKILL shows within
 * seconds (production defaults are in docs/architecture.md, "The store").
 */
export const TEST_LEASE_TTL_MS = 3_000;
export const TEST_ORPHAN_SWEEP_MS = 500;

/**
 * `describe(name, body)` when PostgreSQL answers; otherwise one printed line and a skipped block, or,
 * with GITEA_TRIAGE_REQUIRE_POSTGRES=1 (CI), a failing test naming the unreachable database.
 */
export async function describeWithPostgres(file: string, name: string, body: () => void): Promise<void> {
  const unavailable = await postgresUnavailable();
  if (unavailable === undefined) {
    describe(name, body);
  } else if (!POSTGRES_REQUIRED) {
    process.stderr.write(skipLine(file, unavailable));
    describe.skip(`${name} (no PostgreSQL)`, () => it('needs PostgreSQL', () => undefined));
  } else {
    describe(name, () =>
      it('needs PostgreSQL', () => {
        throw new Error(`PostgreSQL at ${TEST_DATABASE_URL} is unreachable: ${unavailable}`);
      }),
    );
  }
}

export interface PgCluster {
  gitea: GiteaProcess;
  set: ReplicaSet;
  front: Front;
  schema: string;
  /** The shared journal, read from outside. */
  view: StoreView;
  items: Item[];
  close(): Promise<void>;
}

export interface PgClusterOptions {
  count?: number;
  items: number;
  latencyMs?: number;
  jitterMs?: number;
  seed: number;
  /** The URL the replicas use (default TEST_DATABASE_URL; a TCP proxy's to cut it). */
  databaseUrl?: string;
  env?: Record<string, string>;
}

export async function startPgCluster(options: PgClusterOptions): Promise<PgCluster> {
  const schema = testSchemaName('replicas');
  const gitea = await GiteaProcess.start({ latencyMs: options.latencyMs ?? 2, jitterMs: options.jitterMs ?? 2, seed: options.seed });
  let set: ReplicaSet | undefined;
  try {
    const items = await gitea.seed(options.items);
    set = await startReplicas({
      count: options.count ?? 3,
      gitea,
      env: {
        DATABASE_URL: options.databaseUrl ?? TEST_DATABASE_URL,
        DATABASE_SCHEMA: schema,
        LEASE_TTL_MS: String(TEST_LEASE_TTL_MS),
        ORPHAN_SWEEP_MS: String(TEST_ORPHAN_SWEEP_MS),
        ...options.env,
      },
    });
    const front = await startFront({ upstreams: set.ports });
    const view = openStoreView({ databaseUrl: TEST_DATABASE_URL, schema });
    const s = set;
    return {
      gitea,
      set,
      front,
      schema,
      view,
      items,
      close: async () => {
        await front.close();
        await s.close();
        await gitea.close();
        await view.close();
        await dropSchemas([schema]);
      },
    };
  } catch (error) {
    await set?.close();
    await gitea.close();
    await dropSchemas([schema]);
    throw error;
  }
}
