/**
 * The real service with the REAL triage evaluator, as a child process for crash tests:
 * `node --import tsx tests/helpers/reliability/triage-child.ts` with the service's environment
 * (GITEA_URL pointing at a simulated Gitea in the test process). Configured like src/main.ts; prints
 * one JSON line `{"msg":"child ready","url":…}` on stdout once it listens and knows the bot, whatever
 * LOG_LEVEL says. SIGTERM/SIGINT: graceful stop, exit 0. SIGKILL: whatever the journal kept.
 */
import { createService } from '../../../src/app.js';
import { loadConfig } from '../../../src/config/config.js';
import { createLogger } from '../../../src/log/logger.js';
import { createTriageEvaluator } from '../../../src/service/triage.js';

const config = loadConfig(process.env);
const log = createLogger({ level: config.logLevel, format: 'json', redact: [config.giteaToken, ...config.webhookSecrets] });
const service = await createService({ config, log, evaluator: createTriageEvaluator, identityBackoff: { firstMs: 50, maxMs: 200 } });
const { url } = await service.listen();
await service.identified();
process.stdout.write(`${JSON.stringify({ msg: 'child ready', url, pid: process.pid })}\n`);

let signals = 0;
const onSignal = () => {
  if (++signals > 1) process.exit(1);
  void service.stop().then(() => {
    process.exitCode = 0;
    setTimeout(() => process.exit(0), 100).unref();
  });
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
