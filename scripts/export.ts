/**
 * `npm run export -- …` (see `--help`). Logic: src/ops/export-cli.ts and the modules it uses.
 */
import { exportMain } from '../src/ops/export-cli.js';

process.exitCode = await exportMain(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
