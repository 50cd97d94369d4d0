import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './wait.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Spawned {
  child: ChildProcess;
  /** stdout lines parsed as JSON (log lines); other lines as `{raw}`. */
  lines: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for a log line matching every given field. */
  line(fields: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * Runs a TypeScript entry with `node --import tsx` and a clean environment (only PATH and HOME from
 * ours, plus `env`): nothing from the developer's shell leaks into a configuration test.
 */
export function spawnTs(entry: string, env: Record<string, string>, args: string[] = []): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let stdoutBuffer = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdoutBuffer += chunk;
    let i: number;
    while ((i = stdoutBuffer.indexOf('\n')) >= 0) {
      const text = stdoutBuffer.slice(0, i);
      stdoutBuffer = stdoutBuffer.slice(i + 1);
      if (!text.trim()) continue;
      try {
        lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        lines.push({ raw: text });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const line = (fields: Record<string, unknown>, timeoutMs = 20_000) =>
    waitFor(() => lines.find((l) => Object.entries(fields).every(([k, v]) => l[k] === v)), {
      timeoutMs,
      what: `a log line ${JSON.stringify(fields)} (stderr: ${stderr.slice(0, 500)})`,
    });
  return { child, lines, stderr: () => stderr, exited, line };
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** True when something accepts TCP connections on the port. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
