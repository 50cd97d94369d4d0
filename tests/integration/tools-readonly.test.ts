import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { backfillMain } from '../../src/tools/backfill-cli.js';
import { explainMain } from '../../src/tools/explain-cli.js';
import { exportMain } from '../../src/tools/export-cli.js';
import { replayMain } from '../../src/tools/replay-cli.js';
import { spawn, spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../helpers/process.js';
import { runMain, simEnv } from './ops-harness.js';
import { seedTriagedRepo, startTriage, type TriageHarness } from './triage-harness.js';

/**
 * The read-only tools (explain, export, replay --local, backfill --dry-run) on a stopped service's
 * DATA_DIR: they write nothing there (journal.db's bytes and mtime unchanged, no -wal/-shm created),
 * and they work where DATA_DIR cannot be written at all.
 */

const ORG = 'acme';
const REPO = 'widgets';

let h: TriageHarness;
let n: number;
let dataDir: string;
let readOnlyBase: string;

/** Every file of a directory with its size, mtime and SHA-256. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    out[name] = `${stat.size} ${stat.mtimeMs} ${crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
  }
  return out;
}

/**
 * Runs a script with `node --import tsx` and a clean environment. With `readOnly` (as root, whom
 * chmod does not stop), the script runs where `readOnly` cannot be written: in a mount namespace of
 * its own with `readOnly` bind-mounted read-only (writes fail with EROFS), or, where namespaces are
 * not allowed, as `nobody` (`setpriv`; the checkout must then be readable by others — a clone in a
 * 0700 `mktemp -d` is not, which is why the namespace comes first).
 */
async function runScript(script: string, args: string[], env: Record<string, string>, readOnly: string | undefined) {
  const node = [process.execPath, '--import', 'tsx', script, ...args];
  const [command, ...argv] =
    readOnly === undefined
      ? node
      : namespaces()
        ? ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"', readOnly, ...node]
        : ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...node];
  const child = spawn(command!, argv, { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** Whether this process may make a mount namespace (root with CAP_SYS_ADMIN, as on CI's machine). */
function namespaces(): boolean {
  return spawnSync('unshare', ['--mount', 'true']).status === 0;
}

beforeAll(async () => {
  h = await startTriage({
    seed: (sim) => {
      sim.addOrg(ORG);
      for (const u of ['alice', 'bob']) sim.addUser(u);
      seedTriagedRepo(sim, ORG, REPO);
    },
  });
  n = h.sim.openIssue(ORG, REPO, { user: 'alice', title: 'Editor crashes on save', body: 'It stops.' });
  await h.settle();
  expect(h.sim.issueLabels(ORG, REPO, n)).toContain('kind/bug');
  dataDir = path.dirname(h.service.journal.path);
  await h.service.stop(); // the simulated Gitea stays up for replay --local and backfill
  expect(fs.readdirSync(dataDir)).toEqual(['journal.db']);
});

afterAll(async () => {
  if (readOnlyBase) {
    fs.chmodSync(path.join(readOnlyBase, 'data'), 0o755);
    fs.rmSync(readOnlyBase, { recursive: true, force: true });
  }
  await h?.sim.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('read-only tools', () => {
  it('write nothing to DATA_DIR: journal.db byte for byte and its mtime unchanged, no file added', async () => {
    const before = fingerprint(dataDir);
    const env = simEnv(h.sim, dataDir);

    const explain = await runMain(explainMain, [`${ORG}/${REPO}#${n}`], { DATA_DIR: dataDir });
    expect(explain.err).toBe('');
    expect(explain.out).toMatch(/\+ kind\/bug  by rule labels\.kind\/bug\.title/);

    const exported = await runMain(exportMain, ['--issue', `${ORG}/${REPO}#${n}`, '--out', '-'], { DATA_DIR: dataDir });
    expect(exported.code).toBe(0);
    expect(exported.lines.length).toBeGreaterThan(0);

    const replay = await runMain(replayMain, ['--issue', `${ORG}/${REPO}#${n}`, '--local'], env);
    expect(replay.err).toBe('');
    expect(replay.lines[0]).toBe(`${ORG}/${REPO}#${n}  issues/opened (1 delivery)`);

    const backfill = await runMain(backfillMain, ['--repo', `${ORG}/${REPO}`, '--dry-run'], env);
    expect(backfill.code).toBe(0);

    expect(fingerprint(dataDir)).toEqual(before);
  });

  it('work in a DATA_DIR no one may write (directory 0555, journal.db 0444), run as scripts', async () => {
    readOnlyBase = fs.mkdtempSync(path.join(os.tmpdir(), 'gt-ro-'));
    fs.chmodSync(readOnlyBase, 0o755);
    const roDir = path.join(readOnlyBase, 'data');
    fs.mkdirSync(roDir);
    fs.copyFileSync(path.join(dataDir, 'journal.db'), path.join(roDir, 'journal.db'));
    fs.chmodSync(path.join(roDir, 'journal.db'), 0o444);
    fs.chmodSync(roDir, 0o555);
    const before = fingerprint(roDir);

    const run = (script: string, args: string[], env: Record<string, string>) => runScript(script, args, env, process.getuid?.() === 0 ? roDir : undefined);

    const explain = await run('scripts/explain.ts', [`${ORG}/${REPO}#${n}`], { DATA_DIR: roDir });
    expect(explain.stderr).toBe('');
    expect(explain.code).toBe(0);
    expect(explain.stdout).toMatch(/\+ kind\/bug  by rule labels\.kind\/bug\.title/);

    const replay = await run('scripts/replay.ts', ['--issue', `${ORG}/${REPO}#${n}`, '--local'], simEnv(h.sim, roDir));
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    expect(replay.stdout.split('\n')[0]).toBe(`${ORG}/${REPO}#${n}  issues/opened (1 delivery)`);

    expect(fingerprint(roDir)).toEqual(before);
  }, 60_000);
});
