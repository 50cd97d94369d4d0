/**
 * `npm run register-webhook -- --repo owner/repo | --org NAME --url <receiver URL> [--events …]
 *  [--ensure-labels] [--rotate-secret] [--dry-run]`: creates or repairs the webhook that feeds the
 * service. The logic is in src/tools/register-webhook.ts.
 */
import { registerWebhookMain } from '../src/tools/register-webhook.js';

process.exitCode = await registerWebhookMain(process.argv.slice(2), process.env, {
  stdout: process.stdout,
  stderr: process.stderr,
});
