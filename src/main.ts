import fs from 'node:fs';
import path from 'node:path';
import { createService, type Service } from './app.js';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { createLogger, type Logger } from './log/logger.js';
import { createTriageEvaluator } from './service/triage.js';
import { errorText } from './errors.js';

/**
 * Entry point: `node dist/main.js` in production (`npm start` runs this file through tsx). Invalid
 * configuration or an unusable DATA_DIR stop the process with one line on stderr and exit code 1,
 * before any port is opened. SIGTERM/SIGINT drain (see `Service.stop`); a second signal exits at once.
 */
async function main(): Promise<void> {
  let config: Config;
  try {
    // The one read of the environment; everything else receives `config`.
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(`invalid configuration: ${error.message}`);
    throw error;
  }

  const problem = dataDirProblem(config.dataDir);
  if (problem) fail(`DATA_DIR ${JSON.stringify(config.dataDir)} is not writable: ${problem}`);

  const log = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    redact: [config.giteaToken, ...config.webhookSecrets],
  });
  installCrashLogging(log);

  let service: Service;
  try {
    service = await createService({ config, log, evaluator: createTriageEvaluator });
  } catch (error) {
    log.error('start failed', { error: errorText(error) });
    fail(`cannot start: ${errorText(error)}`);
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn('second signal: exiting now', { signal });
      exitSoon(1, 0);
      return;
    }
    log.info('shutting down', { signal });
    service.stop().then(
      () => exitSoon(0),
      (error: unknown) => {
        log.error('shutdown failed', { error: errorText(error) });
        exitSoon(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    const { url } = await service.listen();
    log.info('listening', { url, host: config.host, port: config.port, dataDir: path.resolve(config.dataDir) });
  } catch (error) {
    log.error('listen failed', { error: errorText(error) });
    await service.stop().catch(() => undefined);
    fail(`cannot listen on ${config.host}:${config.port}: ${errorText(error)}`);
  }
}

/** One line on stderr, exit 1. */
function fail(message: string): never {
  process.stderr.write(`gitea-triage: ${message}\n`);
  process.exit(1);
}

/**
 * Creates DATA_DIR if needed and proves it writable with a probe file (an access() check passes for
 * root even on a read-only mount). Returns the problem, or undefined.
 */
function dataDirProblem(dir: string): string | undefined {
  try {
    fs.mkdirSync(dir, { recursive: true });
    const probe = path.join(dir, `.write-probe-${process.pid}`);
    fs.writeFileSync(probe, 'ok');
    fs.unlinkSync(probe);
    return undefined;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return e.code ? `${e.code} (${e.syscall ?? 'access'} ${e.path ?? dir})` : errorText(error);
  }
}

/** Bugs are logged, never silent. A thrown exception leaves the process in an unknown state: exit 1. */
function installCrashLogging(log: Logger): void {
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', { error: errorText(reason), stack: reason instanceof Error ? reason.stack : undefined });
  });
  process.on('uncaughtException', (error) => {
    log.error('uncaught exception', { error: error.message, stack: error.stack });
    exitSoon(1);
  });
}

/** Lets the logger's stream flush, then exits (a lingering socket must not keep a stopped process alive). */
function exitSoon(code: number, afterMs = 100): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), afterMs).unref();
}

main().catch((error: unknown) => {
  process.stderr.write(`gitea-triage: ${errorText(error)}\n`);
  process.exit(1);
});
