/**
 * `npm run explain -- …` (see `--help`). Logic: src/ops/explain-cli.ts and the modules it uses.
 */
import { explainMain } from '../src/ops/explain-cli.js';

process.exitCode = await explainMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
