/**
 * `npm run backfill -- …` (see `--help`). Logic: src/tools/backfill-cli.ts and the modules it uses.
 */
import { backfillMain } from '../src/tools/backfill-cli.js';

process.exitCode = await backfillMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
