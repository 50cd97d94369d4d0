/**
 * `npm run export -- …` (see `--help`). Logic: src/tools/export-cli.ts and the modules it uses.
 */
import { exportMain } from '../src/tools/export-cli.js';

process.exitCode = await exportMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
