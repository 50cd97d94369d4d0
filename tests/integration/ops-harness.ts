import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SimGitea } from '../../src/simgitea/sim.js';
import { captureIO } from '../helpers/capture-io.js';
import { SECRET, type TriageHarness } from './triage-harness.js';

/** The environment an operator tool would run with next to the harness's service (its DATA_DIR, its Gitea). */
export function toolEnv(h: TriageHarness, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITEA_URL: h.sim.url,
    GITEA_TOKEN: h.sim.token,
    WEBHOOK_SECRET: SECRET,
    DATA_DIR: path.dirname(h.service.journal.path),
    ...extra,
  };
}

/** The same for a bare simulated Gitea and a DATA_DIR of the test's choosing. */
export function simEnv(sim: SimGitea, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { GITEA_URL: sim.url, GITEA_TOKEN: sim.token, WEBHOOK_SECRET: SECRET, DATA_DIR: dataDir, ...extra };
}

export interface ToolRun {
  code: number;
  out: string;
  err: string;
  /** stdout lines, without empty ones. */
  lines: string[];
}

/** Runs a tool's `main` in process with captured output. */
export async function runMain(
  main: (argv: readonly string[], env: Readonly<Record<string, string | undefined>>, io: ReturnType<typeof captureIO>) => Promise<number>,
  argv: string[],
  env: Record<string, string>,
): Promise<ToolRun> {
  const io = captureIO();
  const code = await main(argv, env, io);
  const out = io.out();
  return { code, out, err: io.err(), lines: out.split('\n').filter((l) => l.trim() !== '') };
}

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'gt-'));
}
