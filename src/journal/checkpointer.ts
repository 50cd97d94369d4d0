import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import { errorText } from '../errors.js';

export interface CheckpointerOptions {
  /** The journal's database file (WAL mode). */
  file: string;
  /** SQLite `synchronous` of the checkpointing connection: a checkpoint syncs the WAL before and the database after. */
  sync: 'full' | 'normal';
  /** How often to checkpoint (ms). */
  intervalMs: number;
  log: Logger;
  /** Called once if the thread stops on its own (error, crash): the journal checkpoints itself again. */
  onStopped(): void;
}

const CLOSE_TIMEOUT_MS = 10_000;

/**
 * The worker's code, a CommonJS script (`eval`): a second connection that runs
 * `PRAGMA wal_checkpoint(PASSIVE)` on a timer. PASSIVE never waits for readers or writers
 * (https://www.sqlite.org/c3ref/wal_checkpoint_v2.html), so the journal's writes are not held up;
 * it reports only errors, and stops when told to.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('synchronous = ' + workerData.sync);
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    // SQLITE_BUSY: another checkpoint is running (the journal's own safety net); try next time.
    if (error && error.code !== 'SQLITE_BUSY') parentPort.postMessage({ error: String(error.message || error) });
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Checkpoints the journal's WAL from a worker thread. A checkpoint copies the WAL into the database
 * file and fsyncs it: done by the journal's own connection (SQLite's automatic checkpoint, every
 * 1000 pages) it blocks the event loop for tens of milliseconds every few megabytes of webhooks,
 * and every request waiting for its 202 waits with it.
 */
export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private readonly log: Logger;
  private closing = false;
  private readonly exited: Promise<void>;

  private constructor(options: CheckpointerOptions) {
    this.log = options.log;
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, {
      eval: true,
      // Not the parent's flags (a TypeScript loader, test runner options): plain CommonJS here.
      execArgv: [],
      workerData: { driver, file: options.file, sync: options.sync === 'full' ? 'FULL' : 'NORMAL', intervalMs: options.intervalMs },
    });
    // A forgotten journal must not keep the process alive.
    this.worker.unref();
    this.worker.on('message', (message: { error?: string }) => {
      if (message.error) this.log.warn('journal checkpoint failed', { path: options.file, error: message.error });
    });
    let stoppedReported = false;
    const stopped = (error?: unknown) => {
      if (this.closing || stoppedReported) return;
      stoppedReported = true;
      this.log.error('journal checkpointer stopped: checkpointing on the main thread again', {
        path: options.file,
        ...(error !== undefined ? { error: errorText(error) } : {}),
      });
      options.onStopped();
    };
    this.worker.on('error', stopped);
    this.exited = new Promise((resolve) => {
      this.worker.once('exit', () => {
        stopped();
        resolve();
      });
    });
  }

  static start(options: CheckpointerOptions): BackgroundCheckpointer {
    return new BackgroundCheckpointer(options);
  }

  /** Stops the timer and closes the worker's connection; resolves when the thread has exited. */
  async close(): Promise<void> {
    this.closing = true;
    this.worker.postMessage('close');
    // A checkpoint in progress finishes first; a thread that does not answer at all is ended.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), CLOSE_TIMEOUT_MS);
      timer.unref();
    });
    if ((await Promise.race([this.exited, late])) === 'late') await this.worker.terminate();
    clearTimeout(timer);
    await this.exited;
  }
}
