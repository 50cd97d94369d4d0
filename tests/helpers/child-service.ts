/**
 * A test entry point run as a child process (`node --import tsx tests/helpers/child-service.ts`):
 * the real service, configured from the environment like src/main.ts, with an evaluator that appends
 * the ids it processed to `${DATA_DIR}/processed.log` (and the ids it started to `started.log`).
 * Options (argv): `--eval-delay-ms N` makes each evaluation take N ms. SIGTERM/SIGINT: stop, exit 0.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createService } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import type { Evaluator } from '../../src/scheduler/types.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const evalDelayMs = Number(flag('--eval-delay-ms') ?? 0);

const config = loadConfig(process.env);
const log = createLogger({ level: config.logLevel, format: 'json', redact: [config.giteaToken, ...config.webhookSecrets] });
const processed = path.join(config.dataDir, 'processed.log');
const started = path.join(config.dataDir, 'started.log');

const evaluator: Evaluator = {
  async evaluate(item) {
    const ids = item.deliveries.map((d) => d.id);
    fs.appendFileSync(started, ids.map((id) => `${id}\n`).join(''));
    if (evalDelayMs > 0) await sleep(evalDelayMs);
    fs.appendFileSync(processed, ids.map((id) => `${id}\n`).join(''));
    return { added: [], removed: [], note: 'child test evaluator' };
  },
};

const service = await createService({ config, log, evaluator, identityBackoff: { firstMs: 50, maxMs: 200 } });
const { url } = await service.listen();
await service.identified();
log.info('child ready', { url });

let signals = 0;
const onSignal = (signal: string) => {
  if (++signals > 1) process.exit(1);
  log.info('shutting down', { signal });
  void service.stop().then(() => {
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 100).unref();
  });
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
