/**
 * `npm run backfill -- …` (see `--help`). Logic: src/ops/backfill-cli.ts and the modules it uses.
 */
import { backfillMain } from '../src/ops/backfill-cli.js';

process.exitCode = await backfillMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
