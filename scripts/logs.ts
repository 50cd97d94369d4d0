/**
 * `npm run logs -- [--delivery ID] [--issue owner/repo#n] [--from FILE]`: a readable timeline of one
 * delivery or issue from the service's JSON log lines (a file or stdin). Logic: src/tools/logs.ts.
 */
import { logsMain } from '../src/tools/logs.js';

process.exitCode = await logsMain(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
