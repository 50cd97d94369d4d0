import fs from 'node:fs';
import { mulberry32 } from '../../../src/simgitea/prng.js';
import { SimGitea } from '../../../src/simgitea/sim.js';
import { spawnTs, type Spawned } from '../process.js';
import { request } from '../service.js';
import type { SignedDelivery } from '../signing.js';
import { waitFor } from '../wait.js';
import { startGate, type Gate } from './gate.js';
import { openStoreView, type StoreLocation } from '../store-view.js';
import { BOT, burst, deliveryFor, ORG, REPO, SECRET, seedItems, seedRepo, tempDir, TOKEN, type Item } from './world.js';

export const TRIAGE_CHILD = 'tests/helpers/reliability/triage-child.ts';

/** The environment of a crash-test child: the real service, talking to `giteaUrl`, journal in `dataDir`. */
export function childEnv(giteaUrl: string, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITEA_URL: giteaUrl,
    GITEA_TOKEN: TOKEN,
    WEBHOOK_SECRET: SECRET,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    BATCH_WINDOW_MS: '20',
    CONCURRENCY: '8',
    GITEA_RETRIES: '2',
    GITEA_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export interface Child {
  proc: Spawned;
  url: string;
}

export async function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawnTs(TRIAGE_CHILD, env);
  try {
    const ready = await proc.line({ msg: 'child ready' }, 30_000);
    return { proc, url: String(ready.url) };
  } catch (error) {
    proc.child.kill('SIGKILL');
    await proc.exited;
    throw error;
  }
}

/** SIGKILL (no chance to flush or finish anything) and wait for the exit. */
export async function killHard(child: Child): Promise<void> {
  if (child.proc.child.exitCode === null && child.proc.child.signalCode === null) child.proc.child.kill('SIGKILL');
  await child.proc.exited;
}

export interface RoundReport {
  sent: number;
  /** Deliveries answered 202 before the kill. */
  acked: string[];
  /** Requests that got no answer (the kill cut them) or another status. */
  unanswered: number;
  /** After how many 202s the child was killed. */
  killedAfter: number;
}

/**
 * One crash round: starts the child, sends `deliveries` with `concurrency` requests in flight, and
 * SIGKILLs the child as soon as `killAfter` of them were answered 202 (a random moment of the burst:
 * ingest and evaluation both running). Requests cut by the kill count as unanswered.
 */
export async function crashRound(env: Record<string, string>, deliveries: SignedDelivery[], killAfter: number, concurrency = 32): Promise<RoundReport> {
  const child = await startChild(env);
  const acked: string[] = [];
  let unanswered = 0;
  let killed = false;
  let next = 0;
  const kill = () => {
    if (killed) return;
    killed = true;
    child.proc.child.kill('SIGKILL');
  };
  const worker = async () => {
    while (next < deliveries.length && !killed) {
      const d = deliveries[next++]!;
      try {
        const answer = await request(`${child.url}/webhook`, { method: 'POST', headers: d.headers, body: d.body });
        if (answer.status === 202) {
          acked.push(d.id);
          if (acked.length >= killAfter) kill();
        } else {
          unanswered++;
        }
      } catch {
        unanswered++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  kill();
  await child.proc.exited;
  return { sent: next, acked, unanswered, killedAfter: killAfter };
}

/**
 * A clean run on the same store: starts the child and waits (reading the journal from outside)
 * until nothing is pending, then stops it with SIGTERM. Returns the child's exit code.
 */
export async function drain(env: Record<string, string>, store: StoreLocation, timeoutMs = 60_000): Promise<number | null> {
  const child = await startChild(env);
  const journal = openStoreView(store);
  try {
    await waitFor(async () => (await journal.pending()) === 0, { timeoutMs, intervalMs: 100, what: 'the journal to have nothing pending' });
  } catch (error) {
    await killHard(child); // never leave a child behind a failed test
    throw error;
  } finally {
    await journal.close();
  }
  child.proc.child.kill('SIGTERM');
  const { code } = await child.proc.exited;
  return code;
}

export interface CrashScenarioOptions {
  rounds: number;
  /** Deliveries sent per round (the burst). */
  perRound: number;
  /** Issues and pull requests they are about. */
  items: number;
  seed: number;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /**
   * Gitea's latency per request (plus up to as much jitter): makes evaluation lag behind intake, so a
   * kill also lands among evaluations in flight (label written, journal not yet marked).
   */
  latencyMs?: number;
  /**
   * The store: PostgreSQL at `databaseUrl` in `schema` (created by the service, dropped by the
   * caller); default the SQLite journal in the scenario's DATA_DIR.
   */
  postgres?: { databaseUrl: string; schema: string };
}

export interface CrashScenario {
  sim: SimGitea;
  gate: Gate;
  items: Item[];
  dataDir: string;
  /** Where the journal is: the DATA_DIR, or the PostgreSQL schema. */
  store: StoreLocation;
  rounds: (RoundReport & { doneAtKill: number })[];
  /** Every delivery answered 202, over all rounds. */
  acked: Set<string>;
  /** Exit code of the final clean run (SIGTERM). */
  drainExit: number | null;
  /** Items retitled halfway (they gain `kind/bug`), and when (epoch ms). */
  edited: Set<number>;
  editedAt: number;
  close(): Promise<void>;
}

/**
 * Crash rounds on one DATA_DIR, then a clean run. Halfway through, some questions are retitled as
 * crashes in the sim: those issues gain `kind/bug`, and stale payloads with the old title keep
 * arriving, so "newest state wins" is part of the check. The
 * changes only ever add labels: a crash between a label POST and the ownership record leaves a label the
 * service no longer knows it owns (see reliability-crash.test.ts), which a later removal would expose;
 * that case has its own deterministic test.
 */
export async function crashScenario(options: CrashScenarioOptions): Promise<CrashScenario> {
  const sim = await SimGitea.start({ token: TOKEN, botLogin: BOT, seed: options.seed, latencyMs: options.latencyMs ?? 0, jitterMs: options.latencyMs ?? 0 });
  seedRepo(sim);
  const items = seedItems(sim, options.items);
  const gate = await startGate(sim);
  const dataDir = tempDir();
  const pgEnv: Record<string, string> = options.postgres ? { DATABASE_URL: options.postgres.databaseUrl, DATABASE_SCHEMA: options.postgres.schema } : {};
  const env = childEnv(gate.url, dataDir, { ...pgEnv, ...options.env });
  const store: StoreLocation = options.postgres ?? { dataDir };
  const random = mulberry32(options.seed);
  const acked = new Set<string>();
  const rounds: CrashScenario['rounds'] = [];
  const edited = new Set<number>();
  const oldTitles = new Map<number, string>();
  let editedAt = 0;
  const close = async () => {
    await gate.close();
    await sim.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    for (let r = 0; r < options.rounds; r++) {
      if (r === Math.floor(options.rounds / 2)) {
        editedAt = Date.now();
        for (const item of items) {
          if (item.kind !== 'issue' || item.expected.length > 0 || item.number % 2 !== 0) continue;
          oldTitles.set(item.number, item.title);
          item.title = `Crash: ${item.title}`;
          item.expected = ['kind/bug'];
          edited.add(item.number);
          sim.editIssue(ORG, REPO, item.number, { title: item.title }, 'alice'); // no hook set: no delivery
        }
      }
      // Each round brings new issues too: their first evaluation (and label write) happens in it.
      const active = items.slice(0, Math.ceil((items.length * (r + 1)) / options.rounds));
      const deliveries = burst(active, options.perRound, random, r * options.perRound);
      // Stale snapshots too: payloads of edited items still showing the old title, older than any
      // other, slipped in among the others (Gitea delivers out of order). The newest state must win.
      if (r >= Math.floor(options.rounds / 2)) {
        for (const [number, title] of oldTitles) {
          const item = items.find((i) => i.number === number)!;
          const stale = deliveryFor({ ...item, title, expected: [] }, 'edited', -1_000_000 + number);
          deliveries.splice(Math.floor(random() * deliveries.length), 0, stale);
        }
      }
      const killAfter = Math.max(1, Math.floor(options.perRound * (0.1 + 0.8 * random())));
      const report = await crashRound(env, deliveries, killAfter);
      for (const id of report.acked) acked.add(id);
      const journal = openStoreView(store);
      const doneAtKill = [...(await journal.stateOf(report.acked)).values()].filter((s) => s === 'done').length;
      await journal.close();
      rounds.push({ ...report, doneAtKill });
    }
    const drainExit = await drain(env, store);
    return { sim, gate, items, dataDir, store, rounds, acked, drainExit, edited, editedAt, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** What a crash scenario must end with, as data a test compares in one `toEqual` each. */
export async function crashOutcome(s: CrashScenario): Promise<{
  /**
   * The labels each item must end with. Gitea never redelivers, so an item the kills left without any
   * journaled delivery is never evaluated and keeps no label; an item retitled halfway gets the new
   * title's label only if a delivery about it was journaled after the change (the evaluation re-reads
   * the issue, so any later one decides on the newest state).
   */
  expected: Record<number, string[]>;
  notDone: [string, string][];
  integrity: string[];
  labels: Record<number, string[]>;
  /** Per item: the labels that each changing write added, flattened (a label twice = applied twice). */
  gained: Record<number, string[]>;
  /** Labels any write took away (none expected: the scenario only ever adds). */
  lost: Record<number, string[]>;
  figures: { acked: number; itemsCovered: number; labelWrites: number; changingWrites: number; states: Record<string, number> };
}> {
  const journal = openStoreView(s.store);
  try {
    const covered = new Set(await journal.numbers());
    const coveredAfterEdit = new Set(await journal.numbers(s.editedAt));
    const expected = Object.fromEntries(
      s.items.map((i) => {
        if (!covered.has(i.number)) return [i.number, []];
        if (s.edited.has(i.number) && !coveredAfterEdit.has(i.number)) return [i.number, []];
        return [i.number, [...i.expected].sort()];
      }),
    );
    const notDone = [...(await journal.stateOf(s.acked))].filter(([, state]) => state !== 'done');
    const writes = s.gate.changingWrites();
    const gained: Record<number, string[]> = {};
    const lost: Record<number, string[]> = {};
    for (const item of s.items) {
      const w = writes.get(`${ORG}/${REPO}#${item.number}`) ?? [];
      gained[item.number] = w.flatMap((x) => x.gained).sort();
      const l = w.flatMap((x) => x.lost);
      if (l.length > 0) lost[item.number] = l;
    }
    return {
      expected,
      notDone,
      integrity: await journal.integrity(),
      labels: Object.fromEntries(s.items.map((i) => [i.number, s.sim.issueLabels(ORG, REPO, i.number)])),
      gained,
      lost,
      figures: {
        acked: s.acked.size,
        itemsCovered: covered.size,
        labelWrites: s.gate.labelWrites.length,
        changingWrites: [...writes.values()].reduce((n, w) => n + w.length, 0),
        states: await journal.states(),
      },
    };
  } finally {
    await journal.close();
  }
}
