/**
 * `npm run explain -- …` (see `--help`). Logic: src/tools/explain-cli.ts and the modules it uses.
 */
import { explainMain } from '../src/tools/explain-cli.js';

process.exitCode = await explainMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
